//! The commands, one file each: its clap arguments and a `run` function
//! that calls the libraries' public API. `image` has its subcommands in
//! `image/`.

use anyhow::Result;
use berth_runtime::Runtime;
use clap::{Args, Command, Subcommand, ValueEnum};
use std::path::PathBuf;

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod image;
mod kill;
mod list;
mod network;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

/// runc's global flags (they go before the command).
#[derive(clap::Args)]
pub struct Global {
    /// Directory for the state of containers (default /run/berth;
    /// rootless: $XDG_RUNTIME_DIR/berth).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Append errors, warnings and --debug lines to FILE (one line each;
    /// created at start, as runc does).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log each step of create, start and exec with its time (to --log,
    /// else stderr).
    #[arg(long)]
    pub debug: bool,
    /// Use systemd for the container's cgroup (the system bus; rootless,
    /// the user's manager on the user's bus): cgroupsPath is
    /// SLICE:PREFIX:NAME.
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// Run without privilege: true, false or auto (default: when not root,
    /// or root of a user namespace).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `table` or `json` output (list, ps).
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

impl Global {
    /// The runtime on `--root`, for the commands that manage containers.
    pub fn runtime(&self) -> Result<Runtime> {
        let root = match &self.root {
            Some(r) => r.clone(),
            None if self.rootless()? => berth_runtime::rootless::default_root()?,
            None => PathBuf::from("/run/berth"),
        };
        Ok(Runtime::new(&root)?)
    }

    /// `--rootless`, resolved (auto: as runc decides it).
    pub fn rootless(&self) -> Result<bool> {
        let flag = match self.rootless.as_deref() {
            None | Some("auto") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(v) => anyhow::bail!("--rootless {v:?}: expected true, false or auto"),
        };
        Ok(berth_runtime::rootless::detect(flag))
    }
}

/// berth's own path, for the hooks it writes into a config: argv[0] made
/// absolute (as found in PATH when it has no slash). Not /proc/self/exe:
/// `image run` runs from a detached read-only view of the binary
/// (CVE-2019-5736), which has no path a hook could name.
pub fn self_exe() -> Result<PathBuf> {
    let arg0 = PathBuf::from(std::env::args_os().next().unwrap_or_default());
    let found = if arg0.components().count() > 1 {
        Some(arg0.clone())
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(&arg0))
                .find(|c| c.is_file())
        })
    };
    found
        .and_then(|p| p.canonicalize().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot find berth's own binary from {arg0:?}"))
}

#[derive(Subcommand)]
pub enum Cmd {
    #[command(about = about::CREATE)]
    Create(create::Args),
    #[command(about = about::START)]
    Start(start::Args),
    #[command(about = about::STATE)]
    State(state::Args),
    #[command(about = about::KILL)]
    Kill(kill::Args),
    #[command(about = about::DELETE)]
    Delete(delete::Args),
    #[command(about = about::RUN)]
    Run(run::Args),
    #[command(about = about::LIST)]
    List(list::Args),
    #[command(about = about::EXEC)]
    Exec(Box<exec::Args>),
    #[command(about = about::PS)]
    Ps(ps::Args),
    #[command(about = about::PAUSE)]
    Pause(pause::Args),
    #[command(about = about::RESUME)]
    Resume(resume::Args),
    #[command(about = about::EVENTS)]
    Events(events::Args),
    #[command(about = about::UPDATE)]
    Update(Box<update::Args>),
    #[command(about = about::FEATURES)]
    Features,
    #[command(about = about::IMAGE)]
    Image(image::Args),
    #[command(about = about::SPEC)]
    Spec(spec::Args),
    #[command(about = about::NETWORK)]
    Network(network::Args),
    #[command(about = about::CHECKPOINT)]
    Checkpoint(Box<checkpoint::Args>),
    #[command(about = about::RESTORE)]
    Restore(Box<checkpoint::RestoreArgs>),
}

/// Each command's one line of help, shared by `Cmd` (the full tree, for
/// `--help`) and [`command_for`] (one command's tree).
mod about {
    pub const CREATE: &str = "Create a container; it waits for `start` before running its program";
    pub const START: &str = "Run the program of a created container";
    pub const STATE: &str = "Print the state of a container as JSON";
    pub const KILL: &str = "Send a signal (default SIGTERM) to a container's init";
    pub const DELETE: &str = "Delete a stopped container (any container with --force)";
    pub const RUN: &str =
        "Create and start a container; in the foreground, wait and exit with its status";
    pub const LIST: &str = "List containers";
    pub const EXEC: &str = "Run a new process in a running container";
    pub const PS: &str = "List the processes of a container (table: `ps` output; json: pids)";
    pub const PAUSE: &str = "Freeze every process of a container";
    pub const RESUME: &str = "Thaw a paused container";
    pub const EVENTS: &str = "Print resource usage statistics (JSON lines, runc's format)";
    pub const UPDATE: &str = "Change a container's resource limits";
    pub const FEATURES: &str =
        "Print the features this runtime supports (runtime-spec features.md JSON)";
    pub const IMAGE: &str = "OCI images: import, list, unpack, mount, make bundles, run";
    pub const SPEC: &str = "Write a default config.json to the bundle directory";
    pub const NETWORK: &str = "Bridge networks for `image run`: create, ls, inspect, rm";
    pub const CHECKPOINT: &str = "Checkpoint a running container to disk (CRIU)";
    pub const RESTORE: &str = "Restore a container from a checkpoint (CRIU)";
}

/// Adds a command's arguments to its `Command`.
type AddArgs = fn(Command) -> Command;

/// Each command's name, one line of help and arguments, for
/// [`command_for`].
const COMMANDS: [(&str, &str, AddArgs); 19] = [
    (
        "create",
        about::CREATE,
        <create::Args as Args>::augment_args,
    ),
    ("start", about::START, <start::Args as Args>::augment_args),
    ("state", about::STATE, <state::Args as Args>::augment_args),
    ("kill", about::KILL, <kill::Args as Args>::augment_args),
    (
        "delete",
        about::DELETE,
        <delete::Args as Args>::augment_args,
    ),
    ("run", about::RUN, <run::Args as Args>::augment_args),
    ("list", about::LIST, <list::Args as Args>::augment_args),
    ("exec", about::EXEC, <exec::Args as Args>::augment_args),
    ("ps", about::PS, <ps::Args as Args>::augment_args),
    ("pause", about::PAUSE, <pause::Args as Args>::augment_args),
    (
        "resume",
        about::RESUME,
        <resume::Args as Args>::augment_args,
    ),
    (
        "events",
        about::EVENTS,
        <events::Args as Args>::augment_args,
    ),
    (
        "update",
        about::UPDATE,
        <update::Args as Args>::augment_args,
    ),
    ("features", about::FEATURES, features_args),
    ("image", about::IMAGE, <image::Args as Args>::augment_args),
    ("spec", about::SPEC, <spec::Args as Args>::augment_args),
    (
        "network",
        about::NETWORK,
        <network::Args as Args>::augment_args,
    ),
    (
        "checkpoint",
        about::CHECKPOINT,
        <checkpoint::Args as Args>::augment_args,
    ),
    (
        "restore",
        about::RESTORE,
        <checkpoint::RestoreArgs as Args>::augment_args,
    ),
];

/// `features` takes no arguments.
fn features_args(c: Command) -> Command {
    c
}

/// The command `name` alone, when berth has one of that name: every call
/// pays for building one command's arguments, not all of them (clap builds
/// what it is given, and the whole tree cost each start about 400 KiB of
/// RSS). `Cmd::from_arg_matches` reads it as it reads the full tree.
pub fn command_for(name: &str) -> Option<Command> {
    let (name, about, args) = COMMANDS.iter().find(|c| c.0 == name)?;
    Some(args(Command::new(*name)).about(*about))
}

impl Cmd {
    /// Runs the command; returns the exit status. Each command's `run` is
    /// `#[inline(never)]`: inlined here, all of them shared one stack frame
    /// of about 12 KiB, and the stack probes touch every page of it in
    /// every command (peak RSS).
    pub fn run(&self, g: &Global) -> Result<i32> {
        let done = |r: Result<()>| r.map(|()| 0);
        match self {
            Cmd::Create(a) => done(create::run(g, a)),
            Cmd::Start(a) => done(start::run(g, a)),
            Cmd::State(a) => done(state::run(g, a)),
            Cmd::Kill(a) => done(kill::run(g, a)),
            Cmd::Delete(a) => done(delete::run(g, a)),
            Cmd::Run(a) => run::run(g, a),
            Cmd::List(a) => done(list::run(g, a)),
            Cmd::Exec(a) => exec::run(g, a),
            Cmd::Ps(a) => done(ps::run(g, a)),
            Cmd::Pause(a) => done(pause::run(g, a)),
            Cmd::Resume(a) => done(resume::run(g, a)),
            Cmd::Events(a) => done(events::run(g, a)),
            Cmd::Update(a) => done(update::run(g, a)),
            Cmd::Features => done(features::run(g)),
            Cmd::Image(a) => image::run(g, a),
            Cmd::Spec(a) => done(spec::run(a)),
            Cmd::Network(a) => done(network::run(g, a)),
            Cmd::Checkpoint(a) => done(checkpoint::run(g, a)),
            Cmd::Restore(a) => checkpoint::restore(g, a),
        }
    }

    /// Commands that leave a berth process inside a container: they first
    /// make sure the container cannot write berth's binary (CVE-2019-5736).
    pub fn enters_container(&self) -> bool {
        match self {
            Cmd::Create(_) | Cmd::Run(_) | Cmd::Exec(_) => true,
            Cmd::Image(a) => a.enters_container(),
            _ => false,
        }
    }

    /// runc's exec fails with 255, leaving 1..254 to the process.
    pub fn failure_status(&self) -> i32 {
        if matches!(self, Cmd::Exec(_)) {
            255
        } else {
            1
        }
    }
}
