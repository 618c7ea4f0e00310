//! `berth create`.

use super::Global;
use anyhow::Result;
use berth_runtime::CreateOpts;
use std::path::PathBuf;

/// The flags of `create`, shared with `run` (which flattens them: hence a
/// name of their own, as clap names argument groups after the struct).
#[derive(clap::Args)]
pub struct CreateArgs {
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

pub type Args = CreateArgs;

impl CreateArgs {
    pub fn opts(&self, g: &Global, foreground: bool) -> Result<CreateOpts> {
        Ok(CreateOpts {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            foreground,
            systemd_cgroup: g.systemd_cgroup,
            rootless: g.rootless()?,
        })
    }
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    g.runtime()?.create(&a.opts(g, false)?)?;
    Ok(())
}
