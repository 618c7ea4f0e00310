//! `berth`: the command line. Parses runc-compatible arguments with clap and
//! calls into the `berth-runtime` (and later `berth-image`) crates.

// berth starts as a process on every call (and twice for create, run and
// exec, see `exe.rs`): it provides the C `main` itself and skips Rust's
// runtime set-up (reading /proc/self/maps for the stack guard, the
// stack-overflow signal handlers), doing only the two parts it relies on
// in `startup`.
#![cfg_attr(not(test), no_main)]
// (The unit-test build has the harness's main, so nothing calls ours.)
#![cfg_attr(test, allow(dead_code))]

use anyhow::{Context, Result};
use berth_runtime::container::{CreateOpts, Runtime};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0");

/// A runc-compatible OCI container runtime.
#[derive(Parser)]
#[command(name = "berth", version, long_version = LONG_VERSION, about, disable_help_subcommand = true)]
struct Cli {
    /// Directory for the state of containers.
    #[arg(long, default_value = "/run/berth", value_name = "DIR")]
    root: PathBuf,
    /// Append error messages to FILE (one line each).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of --log lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Accepted for runc compatibility (berth logs only errors).
    #[arg(long)]
    debug: bool,
    /// Accepted for runc compatibility; the systemd cgroup driver is not implemented yet.
    #[arg(long)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (true, false or auto).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// Path to the bundle directory (holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Write the container init's pid to FILE.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master of a terminal container to.
    #[arg(long, value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring (accepted; berth creates none).
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N file descriptors after stdio (3..3+N) to the container.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    /// Container ID.
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container; it waits for `start` before running its program.
    Create(CreateArgs),
    /// Run the program of a created container.
    Start { id: String },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init.
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// Signal name (KILL, SIGKILL) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped container (any container with --force).
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; in the foreground, wait and exit with its status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after starting instead of waiting for the container.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (foreground only).
        #[arg(long)]
        keep: bool,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only the IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process in a running container.
    Exec(Box<ExecArgs>),
    /// List the processes of a container (table: `ps` output; json: pids).
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print resource usage statistics (JSON lines, runc's format).
    Events {
        /// Print one stats record and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between records, e.g. 5s, 500ms.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Change a container's resource limits.
    Update(Box<UpdateArgs>),
    /// Print the features this runtime supports (runtime-spec features.md JSON).
    Features,
    /// OCI images: import, list, unpack, mount, make bundles, run.
    Image(ImageArgs),
    /// Write a default config.json to the bundle directory.
    Spec {
        /// A spec for rootless containers (user namespace).
        #[arg(long)]
        rootless: bool,
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
    },
}

#[derive(clap::Args)]
struct ExecArgs {
    /// A runtime-spec process JSON file (- for stdin) instead of CMD and flags.
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Start the process and return.
    #[arg(short, long)]
    detach: bool,
    /// Allocate a pty.
    #[arg(short, long)]
    tty: bool,
    #[arg(long, value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Add an environment variable K=V.
    #[arg(short, long, value_name = "K=V")]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// An additional group id.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability (CAP_NET_ADMIN or NET_ADMIN).
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    /// AppArmor profile for the process (refused if the host has no AppArmor).
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux label for the process (refused if the host has no SELinux).
    #[arg(long)]
    process_label: Option<String>,
    /// Sub-cgroup to run in (only empty is accepted).
    #[arg(long)]
    cgroup: Vec<String>,
    /// Accepted for runc compatibility.
    #[arg(long)]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

#[derive(clap::Args)]
struct UpdateArgs {
    /// A runtime-spec linux.resources JSON file (- for stdin).
    #[arg(short, long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or 64m, 1g).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    #[arg(long, value_name = "SIZE")]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Accepted for runc compatibility; ignored (cgroup v2 has no kernel memory limit).
    #[arg(long, value_name = "SIZE")]
    kernel_memory: Option<String>,
    #[arg(long, value_name = "N")]
    cpu_shares: Option<u64>,
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long, value_name = "US")]
    cpu_period: Option<u64>,
    #[arg(long, value_name = "US")]
    cpu_rt_period: Option<u64>,
    #[arg(long, value_name = "US")]
    cpu_rt_runtime: Option<i64>,
    #[arg(long, value_name = "CPUS")]
    cpuset_cpus: Option<String>,
    #[arg(long, value_name = "MEMS")]
    cpuset_mems: Option<String>,
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[arg(long, value_name = "N")]
    blkio_weight: Option<u16>,
    id: String,
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The image store.
    #[arg(
        long,
        env = "BERTH_STORE",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    store: PathBuf,
    #[command(subcommand)]
    cmd: ImageCmd,
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Import an OCI image layout directory, an oci-archive or a docker-archive tarball.
    Import {
        path: PathBuf,
        /// Name the image NAME:TAG (default: the name found in the image).
        #[arg(long, value_name = "NAME:TAG")]
        name: Option<String>,
    },
    /// List images.
    Ls,
    /// Print an image's digest, config and layers as JSON.
    Inspect { name: String },
    /// Remove an image (its layers stay until `prune`).
    Rm { name: String },
    /// Remove layers and blobs no image or mount uses.
    Prune,
    /// Write the image's flattened rootfs to DIR (whiteouts applied).
    Unpack { name: String, dir: PathBuf },
    /// Overlay-mount the image at DIR with a private upper dir.
    Mount { name: String, dir: PathBuf },
    /// Unmount DIR (a mount or a bundle) and remove its upper dir.
    Umount { dir: PathBuf },
    /// Make an OCI bundle at DIR: config.json from the image, rootfs an overlay mount.
    Bundle { name: String, dir: PathBuf },
    /// Run a command in a new container of the image.
    Run(Box<ImageRunArgs>),
}

#[derive(clap::Args)]
struct ImageRunArgs {
    /// Container ID (default: a generated one).
    #[arg(long)]
    name: Option<String>,
    /// Remove the container, its upper dir and bundle when it exits.
    #[arg(long)]
    rm: bool,
    /// Start it and return.
    #[arg(short, long)]
    detach: bool,
    /// Allocate a terminal and relay it (in the foreground).
    #[arg(short, long)]
    tty: bool,
    /// Keep stdin attached (otherwise the container reads /dev/null).
    #[arg(short, long)]
    interactive: bool,
    /// Set an environment variable K=V.
    #[arg(short, long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Working directory in the container.
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// USER, UID, USER:GROUP or UID:GID (resolved in the image).
    #[arg(short, long)]
    user: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit (64m, 1g, bytes).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU limit in CPUs (0.5 = half a CPU).
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
    /// none (only lo, the default) or host.
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Bind mount SRC:DST[:ro].
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    volumes: Vec<String>,
    /// Mount the rootfs read-only.
    #[arg(long)]
    read_only: bool,
    /// Image name.
    image: String,
    /// Command and arguments (default: the image's Entrypoint and Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

impl CreateArgs {
    fn opts(&self, foreground: bool) -> CreateOpts {
        CreateOpts {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            foreground,
        }
    }
}

/// The process entry point (glibc calls it; std::env::args still works, as
/// std captures argv from glibc's init_array).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    startup();
    berth_main()
}

/// What berth keeps of std's runtime set-up: fds 0-2 are opened on
/// /dev/null if closed (so no file berth opens can land on them and be
/// printed into), and SIGPIPE is ignored (a hook that exits without
/// reading its state, or a closed pipe, is an error, not a kill).
fn startup() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a local array of three pollfds.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } > 0 {
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            // SAFETY: opens /dev/null (a NUL-terminated literal); the
            // lowest free fd is the closed stdio fd being filled.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != p.fd {
                // SAFETY: exit without unwinding; nothing has started.
                unsafe { libc::_exit(1) };
            }
        }
    }
    // SAFETY: sets SIGPIPE's disposition to ignore; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

fn berth_main() -> ! {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => usage_error(&e),
    };
    // Commands that leave a berth process inside a container first make
    // sure the container cannot write berth's binary (CVE-2019-5736).
    let enters = match &cli.cmd {
        Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec(_) => true,
        Cmd::Image(a) => matches!(a.cmd, ImageCmd::Run(_)),
        _ => false,
    };
    if enters && std::env::var_os("BERTH_UNSAFE_EXE").is_none() {
        if let Err(e) = berth_runtime::exe::ensure_protected() {
            fail(&cli, &e.to_string());
        }
    }
    match run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&cli, &format!("{e:#}")),
    }
}

/// An error: one line on stderr and in --log, exit 1 (255 for exec: runc's
/// exec leaves 1..254 to the process).
fn fail(cli: &Cli, msg: &str) -> ! {
    log_error(cli, msg);
    eprintln!("{msg}");
    std::process::exit(if matches!(cli.cmd, Cmd::Exec(_)) {
        255
    } else {
        1
    });
}

/// A command line berth cannot parse: like every error, exit status 1, one
/// line on stderr and in --log (found in the raw arguments, if given).
fn usage_error(e: &clap::Error) -> ! {
    let text = e.to_string();
    // clap's first paragraph, on one line ("... not provided: <ID>").
    let msg: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let msg = msg.join(" ").trim_start_matches("error: ").to_string();
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(&format!("{flag}="))
                .map(str::to_string)
                .or_else(|| (a == flag).then(|| args.get(i + 1).cloned()).flatten())
        })
    };
    if let Some(log) = value("--log") {
        let json = value("--log-format").as_deref() == Some("json");
        append_log(&PathBuf::from(log), json, &msg);
    }
    eprintln!("{msg} (see berth --help)");
    std::process::exit(1);
}

/// Appends the error to --log as runc does: one JSON object per line with
/// `--log-format json`, a logfmt line otherwise.
fn log_error(cli: &Cli, msg: &str) {
    if let Some(path) = &cli.log {
        append_log(path, cli.log_format == LogFormat::Json, msg);
    }
}

fn append_log(path: &std::path::Path, json: bool, msg: &str) {
    let time = berth_runtime::util::rfc3339_secs(berth_runtime::util::now().0);
    let line = if json {
        let mut m = serde_json::Map::new();
        m.insert("level".into(), "error".into());
        m.insert("msg".into(), msg.into());
        m.insert("time".into(), time.into());
        serde_json::Value::from(m).to_string()
    } else {
        format!("time={time:?} level=error msg={msg:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn run(cli: &Cli) -> Result<i32> {
    if let Cmd::Spec { rootless, bundle } = &cli.cmd {
        let path = bundle.join("config.json");
        if path.exists() {
            anyhow::bail!("File {} exists. Remove it first", path.display());
        }
        let spec = berth_runtime::spec::default_spec(*rootless);
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        serde::Serialize::serialize(
            &spec,
            &mut serde_json::Serializer::with_formatter(&mut out, fmt),
        )?;
        std::fs::write(&path, out).with_context(|| format!("write {}", path.display()))?;
        return Ok(0);
    }
    if let Cmd::Image(a) = &cli.cmd {
        return image(cli, a);
    }
    if cli.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet");
    }
    if let Cmd::Features = &cli.cmd {
        println!(
            "{}",
            serde_json::to_string_pretty(&berth_runtime::ops::features())?
        );
        return Ok(0);
    }
    let rt = Runtime::new(&cli.root)?;
    match &cli.cmd {
        Cmd::Exec(a) => return exec(&rt, a),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt, *format, id, ps_args)?,
        Cmd::Pause { id } => rt.pause(id)?,
        Cmd::Resume { id } => rt.resume(id)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => events(&rt, *stats, interval, id)?,
        Cmd::Update(a) => update(&rt, a)?,
        Cmd::Create(a) => {
            rt.create(&a.opts(false))?;
        }
        Cmd::Start { id } => rt.start(id)?,
        Cmd::State { id } => {
            println!("{}", serde_json::to_string_pretty(&rt.state(id)?)?);
        }
        Cmd::Kill { all, id, signal } => {
            let sig = berth_runtime::signal::parse(signal)?;
            rt.kill(id, sig, *all)?;
        }
        Cmd::Delete { force, id } => rt.delete(id, *force)?,
        Cmd::Run {
            create,
            detach,
            keep,
        } => {
            let o = create.opts(!detach);
            let code = rt.run(&o, *keep)?;
            return Ok(code);
        }
        Cmd::List { format, quiet } => list(&rt, *format, *quiet)?,
        Cmd::Spec { .. } | Cmd::Image(_) | Cmd::Features => unreachable!(),
    }
    Ok(0)
}

fn list(rt: &Runtime, format: ListFormat, quiet: bool) -> Result<()> {
    let states = rt.list()?;
    let s = |v: &serde_json::Value, k: &str| match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if quiet {
        for v in &states {
            println!("{}", s(v, "id"));
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(());
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for v in &states {
        rows.push(
            ["id", "pid", "status", "bundle", "created", "owner"]
                .iter()
                .map(|k| s(v, k))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

/// A progress bar on a terminal, nothing otherwise.
fn progress() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(0);
    if let Ok(st) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        pb.set_style(st);
    }
    pb
}

fn image(cli: &Cli, a: &ImageArgs) -> Result<i32> {
    use berth_image::{bundle, flatten, import, overlay, store};
    let st = store::Store::open(&a.store)?;
    match &a.cmd {
        ImageCmd::Import { path, name } => {
            let pb = progress();
            pb.set_message("unpacking");
            let r = import::import(&st, path, name.as_deref(), &pb)?;
            pb.finish_and_clear();
            println!(
                "{} {} ({} layers, {} unpacked)",
                r.image.name,
                r.image.digest,
                r.image.layers.len(),
                r.unpacked
            );
        }
        ImageCmd::Ls => {
            println!(
                "{:<40} {:<20} {:>6} {:>12}",
                "NAME", "DIGEST", "LAYERS", "SIZE"
            );
            for i in st.images()? {
                let size: u64 = i.layers.iter().map(|l| l.size).sum();
                println!(
                    "{:<40} {:<20} {:>6} {:>12}",
                    i.name,
                    &i.digest[..19.min(i.digest.len())],
                    i.layers.len(),
                    size
                );
            }
        }
        ImageCmd::Inspect { name } => {
            let i = st.image(name)?;
            let config: serde_json::Value = serde_json::from_slice(
                &st.read_blob(&berth_image::digest::Digest::parse(&i.config)?)?,
            )?;
            let v = serde_json::json!({"name": i.name, "digest": i.digest, "config": config, "layers": i.layers});
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ImageCmd::Rm { name } => {
            let i = st.remove_image(name)?;
            println!("removed {}", i.name);
        }
        ImageCmd::Prune => {
            let (l, b) = store::prune(&st)?;
            println!("removed {l} layers, {b} blobs");
        }
        ImageCmd::Unpack { name, dir } => flatten::unpack(&st, &st.image(name)?, dir)?,
        ImageCmd::Mount { name, dir } => overlay::mount(&st, &st.image(name)?, dir)?,
        ImageCmd::Umount { dir } => {
            overlay::umount(&st, dir)?;
        }
        ImageCmd::Bundle { name, dir } => {
            let base = berth_runtime::spec::default_spec(false);
            let o = bundle::Opts {
                hostname: Some("berth".into()),
                ..Default::default()
            };
            bundle::bundle(&st, &st.image(name)?, dir, &base, &o)?;
        }
        ImageCmd::Run(r) => return image_run(cli, &st, r),
    }
    Ok(0)
}

/// `berth image run`: bundle + create + start (+ wait), composed here from
/// the image and runtime crates.
fn image_run(cli: &Cli, st: &berth_image::store::Store, r: &ImageRunArgs) -> Result<i32> {
    use berth_image::{bundle, overlay};
    if r.tty && r.detach {
        anyhow::bail!("-t cannot be combined with -d: nobody would hold the terminal");
    }
    if r.rm && r.detach {
        anyhow::bail!("--rm cannot be combined with -d: nothing would be left to remove the container when it exits");
    }
    let img = st.image(&r.image)?;
    let id = match &r.name {
        Some(n) => n.clone(),
        None => {
            let (s, n) = berth_runtime::util::now();
            format!(
                "berth-{:x}{:05x}",
                s as u64 ^ (std::process::id() as u64) << 20,
                n >> 12
            )
        }
    };
    berth_runtime::state::validate_id(&id)?;
    let rt = Runtime::new(&cli.root)?;
    if rt.store.dir(&id).exists() {
        return Err(berth_runtime::Error::Exists.into());
    }
    let dir = st.root.join("bundles").join(&id);
    if dir.exists() {
        anyhow::bail!("{}: a bundle for {id} exists already", dir.display());
    }
    let o = bundle::Opts {
        cmd: r.cmd.clone(),
        env: r.env.clone(),
        workdir: r.workdir.clone(),
        user: r.user.clone(),
        hostname: Some(
            r.hostname
                .clone()
                .unwrap_or_else(|| id.chars().take(12).collect()),
        ),
        memory: r.memory.as_deref().map(bundle::parse_size).transpose()?,
        cpus: r.cpus,
        pids_limit: r.pids_limit,
        network: r.network.clone(),
        volumes: r.volumes.clone(),
        read_only: r.read_only,
        terminal: r.tty,
    };
    let base = berth_runtime::spec::default_spec(false);
    let cleanup = || {
        let _ = overlay::umount(st, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    };
    if let Err(e) = bundle::bundle(st, &img, &dir, &base, &o) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    if !r.interactive && !r.detach {
        // Without -i the container reads nothing.
        if let Ok(null) = std::fs::File::open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 onto fd 0, which this process owns; /dev/null stays open.
            unsafe { libc::dup2(null.as_raw_fd(), 0) };
        }
    }
    let opts = CreateOpts {
        id: id.clone(),
        bundle: dir.clone(),
        foreground: !r.detach,
        ..Default::default()
    };
    let res = rt.run(&opts, !r.rm);
    if r.rm || res.is_err() {
        let _ = rt.delete(&id, true);
        cleanup();
    }
    Ok(res?)
}

fn exec(rt: &Runtime, a: &ExecArgs) -> Result<i32> {
    if a.cgroup.iter().any(|c| !c.is_empty()) {
        anyhow::bail!("--cgroup: sub-cgroups for exec are not supported yet");
    }
    let o = berth_runtime::exec::ExecOpts {
        id: a.id.clone(),
        process: a.process.clone(),
        args: a.cmd.clone(),
        detach: a.detach,
        tty: a.tty,
        console_socket: a.console_socket.clone(),
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
    };
    Ok(rt.exec(&o)?)
}

/// `ps`: json is the pid list; table is ps(1)'s output for those pids.
fn ps(rt: &Runtime, format: ListFormat, id: &str, args: &[String]) -> Result<()> {
    let pids = rt.pids(id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(())
}

/// Parses `5s`, `500ms`, `1m`.
fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("--interval {s:?}"))?;
    Ok(match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" | "" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(60 * n),
        _ => anyhow::bail!("--interval {s:?}: use e.g. 5s or 500ms"),
    })
}

/// `events`: with --stats one record; otherwise one every interval until
/// the container stops.
fn events(rt: &Runtime, stats: bool, interval: &str, id: &str) -> Result<()> {
    let every = parse_interval(interval)?;
    loop {
        match rt.stats(id) {
            Ok(v) => println!("{v}"),
            Err(berth_runtime::Error::NotRunning) if !stats => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if stats {
            return Ok(());
        }
        std::thread::sleep(every);
    }
}

/// `update`: --resources JSON and the flags on top, applied to the cgroup.
fn update(rt: &Runtime, a: &UpdateArgs) -> Result<()> {
    use serde_json::json;
    let mut r: serde_json::Value = match &a.resources {
        Some(p) => {
            let data = if p.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                v
            } else {
                std::fs::read(p).with_context(|| format!("read {}", p.display()))?
            };
            serde_json::from_slice(&data)
                .with_context(|| format!("{}: invalid resources JSON", p.display()))?
        }
        None => json!({}),
    };
    let size = |s: &str| -> Result<i64> {
        if s == "-1" {
            return Ok(-1);
        }
        Ok(berth_image::bundle::parse_size(s)?)
    };
    let mut set = |section: &str, key: &str, v: serde_json::Value| {
        if !r.get(section).is_some_and(|x| x.is_object()) {
            r[section] = json!({});
        }
        r[section][key] = v;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(size(m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set("memory", "reservation", json!(size(m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(size(m)?));
    }
    if let Some(v) = a.cpu_shares {
        set("cpu", "shares", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("cpu", "quota", json!(v));
    }
    if let Some(v) = a.cpu_period {
        set("cpu", "period", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    if let Some(v) = a.pids_limit {
        set("pids", "limit", json!(v));
    }
    if let Some(v) = a.blkio_weight {
        set("blockIO", "weight", json!(v));
    }
    let res: berth_runtime::oci::LinuxResources =
        serde_json::from_value(r).context("invalid resources")?;
    rt.update(&a.id, &res)?;
    Ok(())
}
