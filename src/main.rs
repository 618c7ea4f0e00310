//! `berth`: the command line. Parses runc-compatible arguments with clap and
//! calls into the `berth-runtime` (and later `berth-image`) crates.

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
    /// Append log messages (errors, and debug with --debug) to FILE.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of --log lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Also log debug messages.
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
    #[command(alias = "ps-all")]
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only the IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json to the bundle directory.
    Spec {
        /// A spec for rootless containers (user namespace).
        #[arg(long)]
        rootless: bool,
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
    },
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

fn main() {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            log_error(&cli, &msg);
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }
}

/// Appends the error to --log as runc does: one JSON object per line with
/// `--log-format json`, a logfmt line otherwise.
fn log_error(cli: &Cli, msg: &str) {
    let Some(path) = &cli.log else { return };
    let time = berth_runtime::util::rfc3339_secs(berth_runtime::util::now().0);
    let line = match cli.log_format {
        LogFormat::Json => {
            let mut m = serde_json::Map::new();
            m.insert("level".into(), "error".into());
            m.insert("msg".into(), msg.into());
            m.insert("time".into(), time.into());
            serde_json::Value::from(m).to_string()
        }
        LogFormat::Text => format!("time={time:?} level=error msg={msg:?}"),
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
    if cli.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet");
    }
    let rt = Runtime::new(&cli.root)?;
    match &cli.cmd {
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
        Cmd::Spec { .. } => unreachable!(),
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
