//! `berth image run`: a bundle from the image (overlay rootfs, config from
//! the image config and the flags), then `run` on it; the container, its
//! overlay and bundle are removed again on failure and with --rm.

use crate::cli::Global;
use anyhow::Result;
use berth_image::{bundle, overlay, store::Store};
use berth_runtime::CreateOpts;

#[derive(clap::Args)]
pub struct Args {
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
    /// When to pull the image: always, missing (not in the store) or never.
    #[arg(long, value_enum, default_value_t = Pull::Missing)]
    pull: Pull,
    #[command(flatten)]
    registry: super::pull::RegistryArgs,
    /// Image name or reference.
    image: String,
    /// Command and arguments (default: the image's Entrypoint and Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum Pull {
    Always,
    Missing,
    Never,
}

/// A container ID from the clock and the pid.
fn generated_id() -> String {
    let (s, n) = berth_runtime::util::now();
    format!(
        "berth-{:x}{:05x}",
        s as u64 ^ (std::process::id() as u64) << 20,
        n >> 12
    )
}

pub fn run(g: &Global, st: &Store, r: &Args) -> Result<i32> {
    if r.tty && r.detach {
        anyhow::bail!("-t cannot be combined with -d: nobody would hold the terminal");
    }
    if r.rm && r.detach {
        anyhow::bail!("--rm cannot be combined with -d: nothing would be left to remove the container when it exits");
    }
    let img = match (r.pull, st.image(&r.image)) {
        (Pull::Always, _) => {
            let name = super::pull::pull(st, &r.image, &r.registry, false)?;
            st.image(&name)?
        }
        (Pull::Missing, Err(missing @ berth_image::Error::NoImage(_))) => {
            match super::pull::pull(st, &r.image, &r.registry, false) {
                Ok(name) => st.image(&name)?,
                Err(e) => anyhow::bail!("{missing}, and pulling it failed: {e:#}"),
            }
        }
        (_, found) => found?,
    };
    let id = r.name.clone().unwrap_or_else(generated_id);
    berth_runtime::validate_id(&id)?;
    let rt = g.runtime()?;
    if rt.exists(&id) {
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
        memory: r
            .memory
            .as_deref()
            .map(berth_runtime::util::parse_size)
            .transpose()?,
        cpus: r.cpus,
        pids_limit: r.pids_limit,
        network: r.network.clone(),
        volumes: r.volumes.clone(),
        read_only: r.read_only,
        terminal: r.tty,
    };
    let base = berth_runtime::spec::default_spec(false);
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
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.rootless()?,
        ..Default::default()
    };
    let res = rt.run(&opts, !r.rm);
    if r.rm || res.is_err() {
        let _ = rt.delete(&id, true);
        let _ = overlay::umount(st, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(res?)
}
