//! `berth`: the command line. `main` parses runc's global flags and the
//! command with clap and dispatches to `cli/<command>.rs`; errors become one
//! line on stderr and in `--log`, as runc writes them.

// berth starts as a process on every call (create, run, exec and image run re-execute
// it first, from its entry point: see `pre_start`): it provides the C
// `main` itself and skips Rust's runtime set-up (reading /proc/self/maps
// for the stack guard, the stack-overflow signal handlers), doing only the
// two parts it relies on in `startup`.
#![cfg_attr(not(test), no_main)]
// (The unit-test build has the harness's main, so nothing calls ours.)
#![cfg_attr(test, allow(dead_code))]

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser};
use cli::{Cmd, Global, LogFormat};
use std::io::Write;
use std::path::PathBuf;

/// `berth --version` in runc's layout (`runc version X`, `commit: ...`,
/// `spec: ...`, `libseccomp: ...`), which dockerd parses for `docker info`.
fn version_text() -> String {
    format!(
        "version {}\ncommit: {}\nspec: {}\nlibseccomp: {}",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_COMMIT"),
        berth_runtime::SPEC_VERSION,
        berth_runtime::libseccomp_version()
    )
}

/// A runc-compatible OCI container runtime: the command line above the
/// command (runc's global flags, --version); the commands are added to it
/// by [`command_line`].
#[derive(Parser)]
#[command(
    name = "berth",
    about,
    disable_help_subcommand = true,
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Top {
    /// Print the version.
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(flatten)]
    global: Global,
}

struct Cli {
    global: Global,
    cmd: Cmd,
}

/// The name of the command in `args` (after runc's global flags), if any.
/// ([`pre_start`] finds it the same way in the raw arguments.)
fn command_name(args: &[String]) -> Option<&str> {
    let mut it = args.iter().skip(1).peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" | "--log" | "--log-format" => {
                it.next();
            }
            "--rootless" => {
                if it
                    .peek()
                    .is_some_and(|v| ["true", "false", "auto"].contains(&v.as_str()))
                {
                    it.next();
                }
            }
            a if a.starts_with('-') => {}
            a => return Some(a),
        }
    }
    None
}

// The ELF entry point (`-e berth_start`, set in build.rs): calls
// `pre_start` with the initial stack (argc, argv, envp), then hands
// over to glibc's `_start` with the stack and rdx as the kernel left them.
// (The unit-test build has it too: build.rs sets the entry point for it.)
std::arch::global_asm!(
    ".globl berth_start",
    ".type berth_start,@function",
    "berth_start:",
    "mov rdi, rsp",
    "push rdx",
    "sub rsp, 8",
    "call {pre}",
    "add rsp, 8",
    "pop rdx",
    "jmp _start",
    pre = sym pre_start,
);

/// What [`pre_start`] found: [`NOT_TRIED`], [`PROTECTED`] (berth runs from
/// a read-only view of its binary) or [`VIEW_FAILED`] (the re-exec from one
/// failed: `berth_main` goes straight to the fallback). A plain static in
/// .bss: no relocation; written and read through raw pointers, as nothing
/// else runs then.
static mut ENTRY: u8 = NOT_TRIED;
const NOT_TRIED: u8 = 0;
const PROTECTED: u8 = 1;
const VIEW_FAILED: u8 = 2;

/// A NUL-terminated literal as a pointer (a cast, no call).
macro_rules! lit {
    ($s:literal) => {
        concat!($s, "\0") as *const str as *const u8
    };
}

/// Runs before the C library starts: `create`, `run`, `exec` and `image
/// run` re-execute berth from a read-only view of its binary here
/// (CVE-2019-5736, see `exe.rs`), so the first process pays for nothing
/// else (no glibc start-up, no relocations, no parsing). Until glibc has
/// relocated the binary, no function of another crate can be called (the
/// address would come from an unrelocated GOT) nor any C library one
/// (memcmp, strlen are resolved at start-up): this uses only raw pointer
/// reads, casts and functions inlined into it (`exec_from_ro_view`), and
/// finds the command as [`command_name`] does. On failure it returns, and
/// `berth_main` tries again and reports it.
///
/// # Safety
/// `sp` is the initial stack pointer the kernel set: argc, then argv and
/// envp, each NULL-terminated.
unsafe extern "C" fn pre_start(sp: *const usize) {
    /// Whether the C string `a` equals the NUL-terminated `b` (or, with
    /// `prefix`, starts with it).
    ///
    /// # Safety
    /// Both are NUL-terminated.
    #[inline(always)]
    unsafe fn eq(a: *const u8, b: *const u8, prefix: bool) -> bool {
        let mut i = 0;
        loop {
            // SAFETY: reads up to the first NUL of either string.
            let (x, y) = unsafe { (*a.wrapping_add(i), *b.wrapping_add(i)) };
            if y == 0 {
                return prefix || x == 0;
            }
            if x != y {
                return false;
            }
            i += 1;
        }
    }
    // SAFETY: the kernel's initial stack: argc, argv[argc], NULL, envp...,
    // NULL; every string NUL-terminated, alive for the process.
    unsafe {
        let argc = *sp;
        let argv = sp.wrapping_add(1) as *const *const u8;
        let envp = argv.wrapping_add(argc + 1);
        let mut e = envp;
        // (Addresses compared as integers: `is_null` is a call unoptimised.)
        while *e as usize != 0 {
            if eq(*e, lit!("BERTH_UNSAFE_EXE="), true) {
                return;
            }
            e = e.wrapping_add(1);
        }
        let mut i = 1;
        while i < argc {
            let a = *argv.wrapping_add(i);
            let next = *argv.wrapping_add(i + 1); // NULL after the last
            if eq(a, lit!("--root"), false)
                || eq(a, lit!("--log"), false)
                || eq(a, lit!("--log-format"), false)
            {
                i += 1;
            } else if eq(a, lit!("--rootless"), false) {
                if next as usize != 0
                    && (eq(next, lit!("true"), false)
                        || eq(next, lit!("false"), false)
                        || eq(next, lit!("auto"), false))
                {
                    i += 1;
                }
            } else if *a != b'-' {
                let mut protect = eq(a, lit!("create"), false)
                    || eq(a, lit!("run"), false)
                    || eq(a, lit!("exec"), false);
                if eq(a, lit!("image"), false) {
                    // `image [--store DIR] run`.
                    let mut j = i + 1;
                    while j < argc {
                        let b = *argv.wrapping_add(j);
                        if eq(b, lit!("--store"), false) {
                            j += 1;
                        } else if *b != b'-' {
                            protect = eq(b, lit!("run"), false);
                            break;
                        }
                        j += 1;
                    }
                }
                if protect {
                    let argv = argv as *const *const libc::c_char;
                    let envp = envp as *const *const libc::c_char;
                    *std::ptr::addr_of_mut!(ENTRY) =
                        if berth_runtime::exe::exec_from_ro_view(argv, envp) {
                            PROTECTED
                        } else {
                            VIEW_FAILED
                        };
                }
                return;
            }
            i += 1;
        }
    }
}

/// The command line, with only the command being run when berth knows it
/// (see [`cli::command_for`]), else every command (for --help and
/// clap's own errors).
fn command_line(args: &[String], whole: bool) -> clap::Command {
    // The version text asks libseccomp for its version: only for -v.
    let v: &'static str = if args.iter().skip(1).any(|a| a == "-v" || a == "--version") {
        // Built once per process (clap keeps a &'static str).
        Box::leak(version_text().into_boxed_str())
    } else {
        env!("CARGO_PKG_VERSION")
    };
    let top = Top::command().version(v).long_version(v);
    match command_name(args)
        .filter(|_| !whole)
        .and_then(cli::command_for)
    {
        Some(sub) => top.subcommand(sub),
        None => whole_tree(top),
    }
}

/// Every command added to `top` (for --help and clap's errors). Not inlined:
/// clap's builders for all commands take a stack frame of tens of KiB,
/// which the stack probes would touch on every call.
#[inline(never)]
fn whole_tree(top: clap::Command) -> clap::Command {
    <Cmd as clap::Subcommand>::augment_subcommands(top)
}

/// Parses the command line: one command's tree first, the whole tree when
/// that fails (so clap's error and its suggestions are the same). Not
/// inlined: its stack frame (clap's builders) is gone before the command
/// runs.
#[inline(never)]
fn parse() -> Cli {
    let args: Vec<String> = std::env::args().collect();
    let parsed = |whole: bool| {
        command_line(&args, whole)
            .try_get_matches_from(&args)
            .and_then(|m| {
                Ok(Cli {
                    global: Global::from_arg_matches(&m)?,
                    cmd: Cmd::from_arg_matches(&m)?,
                })
            })
    };
    match parsed(false).or_else(|e| if e.use_stderr() { parsed(true) } else { Err(e) }) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => usage_error(&e),
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
    // berth's errors print no backtrace, but anyhow captures one for each
    // when RUST_BACKTRACE is set (a developer's shell, some CI): walking
    // the stack maps the unwind tables, about 400 KiB. Only an explicit
    // RUST_LIB_BACKTRACE asks for it.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}

fn berth_main() -> ! {
    let cli = parse();
    let _ = LOG.set((
        cli.global.log.clone(),
        cli.global.log_format == LogFormat::Json,
    ));
    berth_runtime::set_warning_handler(warning);
    // Commands that leave a berth process inside a container first make
    // sure the container cannot write berth's binary (CVE-2019-5736).
    // create, run, exec and image run did in `pre_start` unless it failed; then the
    // fallback runs here, and its error is reported.
    // SAFETY: written only by pre_start, before anything else ran.
    let entry = unsafe { *std::ptr::addr_of!(ENTRY) };
    if cli.cmd.enters_container()
        && entry != PROTECTED
        && std::env::var_os("BERTH_UNSAFE_EXE").is_none()
    {
        if let Err(e) = berth_runtime::exe::ensure_protected(entry == NOT_TRIED) {
            fail(&cli, &e.to_string());
        }
    }
    // runc creates --log at start, so a caller finds it even when all went
    // well.
    if let Some(path) = &cli.global.log {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
    }
    // --debug logs each step with the time since berth started (after the
    // re-exec, so that a line is written once).
    if cli.global.debug {
        let _ = STARTED.set(std::time::Instant::now());
        berth_runtime::set_debug_handler(debug);
        debug(&format!(
            "berth {} {}",
            env!("CARGO_PKG_VERSION"),
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ));
    }
    match cli.cmd.run(&cli.global) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&cli, &format!("{e:#}")),
    }
}

/// `--log` and whether it is JSON, for the warning handler.
static LOG: std::sync::OnceLock<(Option<PathBuf>, bool)> = std::sync::OnceLock::new();

/// A warning of the runtime library: as runc logs it, to --log when given
/// (level "warning"), else to stderr.
fn warning(msg: &str) {
    match LOG.get() {
        Some((Some(path), json)) => append_log(path, *json, "warning", msg),
        _ => eprintln!("warning: {msg}"),
    }
}

/// When berth started, for the times of `--debug` lines.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// A `--debug` line (level "debug", runc's format): what berth just did and
/// when, in ms since it started; to --log when given, else to stderr.
fn debug(msg: &str) {
    let ms = STARTED
        .get()
        .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
    let msg = format!("{msg} (+{ms:.1}ms)");
    match LOG.get() {
        Some((Some(path), json)) => append_log(path, *json, "debug", &msg),
        Some((None, json)) => eprintln!("{}", log_line(*json, "debug", &msg)),
        None => {}
    }
}

/// An error: one line on stderr and in --log, exit 1 (255 for exec: runc's
/// exec leaves 1..254 to the process).
#[cold]
#[inline(never)]
fn fail(cli: &Cli, msg: &str) -> ! {
    if let Some(path) = &cli.global.log {
        append_log(path, cli.global.log_format == LogFormat::Json, "error", msg);
    }
    eprintln!("{msg}");
    std::process::exit(cli.cmd.failure_status());
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
        append_log(&PathBuf::from(log), json, "error", &msg);
    }
    eprintln!("{msg} (see berth --help)");
    std::process::exit(1);
}

/// One log line as runc (logrus) writes it.
fn log_line(json: bool, level: &str, msg: &str) -> String {
    let time = berth_runtime::util::rfc3339_secs(berth_runtime::util::now().0);
    if json {
        let mut m = serde_json::Map::new();
        m.insert("level".into(), level.into());
        m.insert("msg".into(), msg.into());
        m.insert("time".into(), time.into());
        serde_json::Value::from(m).to_string()
    } else {
        format!("time={time:?} level={level} msg={msg:?}")
    }
}

/// Appends the error to --log as runc does: one JSON object per line with
/// `--log-format json`, a logfmt line otherwise.
fn append_log(path: &std::path::Path, json: bool, level: &str, msg: &str) {
    let line = log_line(json, level, msg);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
