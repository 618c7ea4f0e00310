//! The commands, one file each: its clap arguments and a `run` function
//! that calls the libraries' public API. `image` has its subcommands in
//! `image/`.

use anyhow::Result;
use berth_runtime::Runtime;
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod image;
mod kill;
mod list;
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

#[derive(Subcommand)]
pub enum Cmd {
    /// Create a container; it waits for `start` before running its program.
    Create(create::Args),
    /// Run the program of a created container.
    Start(start::Args),
    /// Print the state of a container as JSON.
    State(state::Args),
    /// Send a signal (default SIGTERM) to a container's init.
    Kill(kill::Args),
    /// Delete a stopped container (any container with --force).
    Delete(delete::Args),
    /// Create and start a container; in the foreground, wait and exit with its status.
    Run(run::Args),
    /// List containers.
    List(list::Args),
    /// Run a new process in a running container.
    Exec(Box<exec::Args>),
    /// List the processes of a container (table: `ps` output; json: pids).
    Ps(ps::Args),
    /// Freeze every process of a container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(resume::Args),
    /// Print resource usage statistics (JSON lines, runc's format).
    Events(events::Args),
    /// Change a container's resource limits.
    Update(Box<update::Args>),
    /// Print the features this runtime supports (runtime-spec features.md JSON).
    Features,
    /// OCI images: import, list, unpack, mount, make bundles, run.
    Image(image::Args),
    /// Write a default config.json to the bundle directory.
    Spec(spec::Args),
}

impl Cmd {
    /// Runs the command; returns the exit status.
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
