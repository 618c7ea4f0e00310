//! `berth image run`: a bundle from the image (overlay rootfs, config from
//! the image config and the flags), then `run` on it; the container, its
//! overlay and bundle are removed again on failure and with --rm.

use crate::cli::Global;
use anyhow::Result;
use berth_image::net::{self, container, Networks};
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
    /// bridge (the default network; the default for root), a network's
    /// name (`berth network create`), slirp4netns (user-mode; the rootless
    /// default), none (only lo) or host.
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Publish a port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp], ports or
    /// ranges (N-M); without HOSTPORT a free one is chosen (`image port`).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    publish: Vec<String>,
    /// A DNS server for /etc/resolv.conf (instead of the host's).
    #[arg(long, value_name = "IP")]
    dns: Vec<String>,
    /// An /etc/hosts entry.
    #[arg(long, value_name = "HOST:IP")]
    add_host: Vec<String>,
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

/// Where the container's network comes from.
enum Net {
    /// none (false) or the host's (true): nothing to set up.
    Own(bool),
    /// A bridge network, through netavark.
    Bridge(Box<berth_image::net::Network>),
    /// slirp4netns.
    Slirp,
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
    let rootless = g.rootless()? || st.rootless;
    let mode = r
        .network
        .clone()
        .unwrap_or_else(|| if rootless { "slirp4netns" } else { "bridge" }.into());
    let mut ports = Vec::new();
    for p in &r.publish {
        ports.extend(net::ports::parse(p)?);
    }
    let nets = Networks::new(&st.root);
    let network = match mode.as_str() {
        "none" | "host" => {
            if !ports.is_empty() {
                anyhow::bail!("-p: --network {mode} has no network of its own to publish ports from: use --network bridge, slirp4netns or a network's name");
            }
            Net::Own(mode == "host")
        }
        "slirp4netns" => Net::Slirp,
        _ if rootless => anyhow::bail!(
            "--network {mode}: rootless, bridge networks need root: use --network slirp4netns (the default), none or host"
        ),
        name => Net::Bridge(Box::new(nets.by_flag(name)?)),
    };
    let rt = g.runtime()?;
    if rt.exists(&id) {
        return Err(berth_runtime::Error::Exists.into());
    }
    let dir = st.bundle_dir(&id);
    if dir.exists() {
        anyhow::bail!("{}: a bundle for {id} exists already", dir.display());
    }
    let hostname = r
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let attached = !matches!(network, Net::Own(_));
    let etc = attached || !r.dns.is_empty() || !r.add_host.is_empty();
    let o = bundle::Opts {
        cmd: r.cmd.clone(),
        env: r.env.clone(),
        workdir: r.workdir.clone(),
        user: r.user.clone(),
        hostname: Some(hostname.clone()),
        memory: r
            .memory
            .as_deref()
            .map(berth_runtime::util::parse_size)
            .transpose()?,
        cpus: r.cpus,
        pids_limit: r.pids_limit,
        network: Some(
            if let Net::Own(true) = network {
                "host"
            } else {
                "none"
            }
            .into(),
        ),
        mounts: if etc {
            container::etc_mounts(&dir)
        } else {
            Vec::new()
        },
        hooks: attached.then(|| hooks(&st.root)).transpose()?,
        volumes: r.volumes.clone(),
        read_only: r.read_only,
        terminal: r.tty,
        discard: r.rm,
    };
    let base = berth_runtime::spec::default_spec(false);
    if let Err(e) = bundle::bundle(st, &img, &dir, &base, &o) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    let req = container::Request {
        id: &id,
        hostname: &hostname,
        ports,
        dns: &r.dns,
        add_hosts: &r.add_host,
    };
    let planned = match &network {
        Net::Bridge(n) => container::plan(&nets, n, &dir, req).map(|_| ()),
        Net::Slirp => container::plan_slirp(&nets, &dir, rootless, req).map(|_| ()),
        Net::Own(_) if etc => container::write_etc(&dir, &req, None, None),
        Net::Own(_) => Ok(()),
    };
    if let Err(e) = planned {
        let _ = overlay::umount(st, &dir);
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
        // delete runs the poststop hook (the network's teardown); the
        // detach after it is for a container that never got a state.
        if rt.exists(&id) {
            let _ = rt.delete(&id, true);
        }
        if !matches!(network, Net::Own(_)) {
            let _ = container::detach(&nets, &dir);
        }
        let _ = overlay::umount(st, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(res?)
}

/// config.json's hooks for a container on a network: the createRuntime
/// hook sets the network up in the new namespace (before the container's
/// program runs), the poststop hook (run by `delete`) tears it down. A
/// hook's environment is empty: berth gives netavark and iptables a PATH
/// of its own.
fn hooks(store: &std::path::Path) -> Result<serde_json::Value> {
    let exe = super::super::self_exe()?;
    let hook = |verb: &str| serde_json::json!([{"path": exe, "args": [exe, "network", "--store", store, verb]}]);
    Ok(serde_json::json!({"createRuntime": hook("attach"), "poststop": hook("detach")}))
}
