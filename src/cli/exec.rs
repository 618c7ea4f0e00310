//! `berth exec`: a new process in a running container.

use super::Global;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
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
    /// Run in an existing sub-cgroup of the container's:
    /// [CONTROLLER[,CONTROLLER]:]SUB (repeatable; without a prefix, every
    /// hierarchy)
    #[arg(long, value_name = "[CTRL:]SUB")]
    cgroup: Vec<String>,
    /// Exec into a paused container (the process stays frozen until resume)
    #[arg(long)]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<i32> {
    let o = berth_runtime::ExecOpts {
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
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
    };
    Ok(g.runtime()?.exec(&o)?)
}
