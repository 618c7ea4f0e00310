//! `berth checkpoint` and `berth restore`: runc's flags, through CRIU.

use super::Global;
use anyhow::Result;
use berth_runtime::{CheckpointOpts, CriuFlags, RestoreOpts};
use std::path::PathBuf;

/// CRIU's flags that both commands take.
#[derive(clap::Args)]
pub struct Criu {
    /// Path for the CRIU image files (default: ./checkpoint).
    #[arg(long, value_name = "DIR")]
    image_path: Option<PathBuf>,
    /// Path for CRIU's work files and log (default: the image path).
    #[arg(long, value_name = "DIR")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long)]
    ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long)]
    shell_job: bool,
    /// Handle file locks, for safety.
    #[arg(long)]
    file_locks: bool,
    /// Cgroups mode: soft|full|strict|ignore (default: soft).
    #[arg(long, value_name = "MODE", default_value = "")]
    manage_cgroups_mode: String,
    /// Create a namespace, but do not restore its properties (network).
    #[arg(long, value_name = "NS")]
    empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images.
    #[arg(long)]
    auto_dedup: bool,
    /// Use userfaultfd to restore memory pages lazily.
    #[arg(long)]
    lazy_pages: bool,
}

impl Criu {
    fn flags(&self) -> Result<CriuFlags> {
        let image_path = match &self.image_path {
            Some(p) => p.clone(),
            None => std::env::current_dir()?.join("checkpoint"),
        };
        Ok(CriuFlags {
            image_path,
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
            empty_ns: self.empty_ns.clone(),
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    criu: Criu,
    /// Path of a previous (pre-)dump, relative to the image path.
    #[arg(long, value_name = "DIR")]
    parent_path: Option<String>,
    /// Leave the container running after the checkpoint.
    #[arg(long)]
    leave_running: bool,
    /// Dump the container's memory only, and leave it running.
    #[arg(long)]
    pre_dump: bool,
    /// ADDRESS:PORT of a CRIU page server to send the memory to.
    #[arg(long, value_name = "ADDRESS:PORT")]
    page_server: Option<String>,
    /// CRIU writes \0 to this fd once lazy-pages is ready.
    #[arg(long, value_name = "FD", default_value_t = -1, allow_negative_numbers = true)]
    status_fd: i32,
    /// Container ID.
    id: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    let o = CheckpointOpts {
        criu: a.criu.flags()?,
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        page_server: a.page_server.clone().filter(|s| !s.is_empty()),
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
    };
    Ok(g.runtime()?.checkpoint(&a.id, &o)?)
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    criu: Criu,
    /// Path to the bundle directory (holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Return once restored instead of waiting for the container.
    #[arg(short, long)]
    detach: bool,
    /// Write the restored init's pid to FILE.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master of a terminal container to.
    #[arg(long, value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Accepted (runc's): the restored init is berth's child anyway.
    #[arg(long)]
    no_subreaper: bool,
    /// Accepted (runc's): CRIU sets up the root itself.
    #[arg(long)]
    no_pivot: bool,
    /// Container ID.
    id: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn restore(g: &Global, a: &RestoreArgs) -> Result<i32> {
    let o = RestoreOpts {
        create: berth_runtime::CreateOpts {
            id: a.id.clone(),
            bundle: a.bundle.clone(),
            pid_file: a.pid_file.clone(),
            console_socket: a.console_socket.clone(),
            no_pivot: a.no_pivot,
            foreground: !a.detach,
            systemd_cgroup: g.systemd_cgroup,
            rootless: g.rootless()?,
            ..Default::default()
        },
        criu: a.criu.flags()?,
    };
    Ok(g.runtime()?.restore(&o)?)
}
