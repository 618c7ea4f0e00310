//! One container's attachment to a network. `image run` chooses its
//! address and host ports and writes `BUNDLE/network.json` and
//! `BUNDLE/etc/` ([`plan`]); the createRuntime hook persists the
//! container's network namespace and has netavark set it up ([`attach`]);
//! the poststop hook, run by `delete` (also `delete --force` after berth
//! was killed), tears it down ([`detach`]). Removing `network.json`
//! releases the address and ports.

use super::etc::{self, EtcOpts};
use super::ports::PortMapping;
use super::{netavark, slirp, Network, Networks};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

const FILE: &str = "network.json";

/// What a container asks of its network.
pub struct Request<'a> {
    pub id: &'a str,
    pub hostname: &'a str,
    pub ports: Vec<PortMapping>,
    pub dns: &'a [String],
    pub add_hosts: &'a [String],
}

/// A container's place on a network (`BUNDLE/network.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub ports: Vec<PortMapping>,
    /// The container's network namespace, persisted while it is attached.
    pub netns: PathBuf,
    /// netavark's and aardvark-dns's state (`netavark --config`).
    pub run: PathBuf,
    /// What netavark is given (its `NetworkOptions`; null for slirp4netns).
    pub options: Value,
    /// On slirp4netns (`--network slirp4netns`) rather than a bridge.
    #[serde(default)]
    pub slirp: bool,
}

/// The attachment of the container whose bundle is `bundle`, if any.
pub fn attachment(bundle: &Path) -> Result<Option<Attachment>> {
    let p = bundle.join(FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Format(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", &p, e)),
    }
}

/// Every attached container of the store's bundles: (ID, attachment).
pub fn attached(store: &Path) -> Vec<(String, Attachment)> {
    let Ok(rd) = std::fs::read_dir(store.join(crate::store::BUNDLES)) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let a = attachment(&e.path()).ok()??;
            Some((e.file_name().to_string_lossy().into_owned(), a))
        })
        .collect()
}

/// Runtime state of the store's networks: netavark's and aardvark-dns's
/// files, the persisted namespaces, slirp4netns's sockets. Under /run
/// (rootless: `$XDG_RUNTIME_DIR`), gone at reboot as the namespaces are,
/// one directory per store, so that two stores (two tests in two network
/// namespaces) never share an aardvark-dns. `store` is the store's root
/// as [`crate::store::Store`] has it (canonical).
pub fn run_dir(store: &Path, rootless: bool) -> PathBuf {
    let d = crate::digest::Digest::of(store.as_os_str().as_encoded_bytes());
    let base = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if rootless && !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from("/run"),
    };
    base.join("berth-net").join(&d.hex()[..12])
}

/// The bind mounts of the files [`plan`] writes, for config.json.
pub fn etc_mounts(bundle: &Path) -> Vec<Value> {
    ["resolv.conf", "hosts", "hostname"]
        .iter()
        .map(|f| {
            json!({"destination": format!("/etc/{f}"), "type": "bind",
                   "source": bundle.join("etc").join(f),
                   "options": ["rbind", "nosuid", "nodev", "noexec"]})
        })
        .collect()
}

/// Writes the /etc files (`addr`: the container's address and gateway on
/// a network; `dns_server`: the network's DNS server).
pub fn write_etc(
    bundle: &Path,
    req: &Request,
    addr: Option<(Ipv4Addr, Ipv4Addr)>,
    dns_server: Option<Ipv4Addr>,
) -> Result<()> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let o = EtcOpts {
        hostname: req.hostname,
        name: req.id,
        addr,
        dns_server,
        dns: req.dns,
        add_hosts: req.add_hosts,
        host_resolv: &host_resolv,
    };
    let files = [
        ("resolv.conf", etc::resolv_conf(&o)?),
        ("hosts", etc::hosts(&o)?),
        ("hostname", format!("{}\n", req.hostname)),
    ];
    let dir = bundle.join("etc");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    for (f, text) in files {
        let p = dir.join(f);
        std::fs::write(&p, text).map_err(|e| Error::io("cannot write", &p, e))?;
    }
    Ok(())
}

/// Binds `port` (0: any) of the mapping's host address and protocol, and
/// lets it go again: the port bound, or why it cannot be.
fn try_bind(m: &PortMapping, port: u16) -> std::io::Result<u16> {
    let ip: Ipv4Addr = m.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    match m.protocol.as_str() {
        "udp" => UdpSocket::bind((ip, port)).and_then(|s| s.local_addr()),
        _ => TcpListener::bind((ip, port)).and_then(|s| s.local_addr()),
    }
    .map(|a| a.port())
}

/// (host port, protocol, container) of a claimed port.
type Claim = (u16, String, String);

/// A host port the kernel has free (binding port 0), for `-p CONTAINERPORT`.
fn free_port(m: &PortMapping, taken: &[Claim]) -> Result<u16> {
    for _ in 0..64 {
        let port =
            try_bind(m, 0).map_err(|e| Error::Other(format!("cannot choose a host port: {e}")))?;
        if !taken
            .iter()
            .any(|(p, pr, _)| *p == port && *pr == m.protocol)
        {
            return Ok(port);
        }
    }
    Err(Error::Other("cannot choose a host port".into()))
}

/// Gives each `-p` without a host port a free one, and checks the others
/// are free: neither another container's nor in use on the host.
fn claim_ports(others: &[(String, Attachment)], req: &mut Request) -> Result<()> {
    // Every host port taken by another container or by this one's
    // earlier mappings.
    let mut taken: Vec<Claim> = others
        .iter()
        .flat_map(|(id, a)| {
            a.ports.iter().flat_map(move |m| {
                (0..m.range).map(move |i| (m.host_port + i, m.protocol.clone(), id.clone()))
            })
        })
        .collect();
    for m in req.ports.iter_mut() {
        if m.host_port == 0 {
            m.host_port = free_port(m, &taken)?;
        } else {
            for port in m.host_port..m.host_port + m.range {
                if let Some((_, _, id)) = taken
                    .iter()
                    .find(|(p, pr, _)| *p == port && *pr == m.protocol)
                {
                    let who = if id == req.id {
                        "another -p of this container".to_string()
                    } else {
                        format!("container {id}")
                    };
                    return Err(Error::Other(format!(
                        "host port {port}/{} is taken by {who}",
                        m.protocol
                    )));
                }
                if try_bind(m, port).is_err() {
                    return Err(Error::Other(format!(
                        "host port {port}/{} is in use on the host",
                        m.protocol
                    )));
                }
            }
        }
        taken.extend(
            (0..m.range).map(|i| (m.host_port + i, m.protocol.clone(), req.id.to_string())),
        );
    }
    Ok(())
}

fn save(bundle: &Path, a: &Attachment) -> Result<()> {
    crate::fsutil::write_json(&bundle.join(FILE), &bundle.join(".network.json.tmp"), a)
}

/// Chooses the container's address and host ports on bridge network
/// `net` (under the networks' lock), writes its /etc files and
/// `BUNDLE/network.json`.
pub fn plan(nets: &Networks, net: &Network, bundle: &Path, mut req: Request) -> Result<Attachment> {
    netavark::check(net.dns_enabled)?;
    let subnet = net.subnet()?;
    let gateway = subnet.gateway();
    let _l = nets.lock()?;
    let others = attached(&nets.store);
    let ip = (2..)
        .map_while(|n| subnet.host(n))
        .find(|ip| {
            !others
                .iter()
                .any(|(_, a)| a.network == net.name && a.ip == *ip)
        })
        .ok_or_else(|| {
            Error::Other(format!("network {}: no address left in {subnet}", net.name))
        })?;
    claim_ports(&others, &mut req)?;
    let mut per = json!({"interface_name": "eth0", "static_ips": [ip]});
    if req.hostname != req.id {
        per["aliases"] = json!([req.hostname]);
    }
    let options = json!({
        "container_id": req.id,
        "container_name": req.id,
        "port_mappings": req.ports,
        "networks": {&net.name: per},
        "network_info": {&net.name: net},
    });
    let run = run_dir(&nets.store, false);
    let a = Attachment {
        id: req.id.to_string(),
        network: net.name.clone(),
        ip,
        gateway,
        ports: req.ports.clone(),
        netns: run.join("netns").join(req.id),
        run,
        options,
        slirp: false,
    };
    write_etc(
        bundle,
        &req,
        Some((ip, gateway)),
        net.dns_enabled.then_some(gateway),
    )?;
    save(bundle, &a)?;
    Ok(a)
}

/// The same for slirp4netns: its fixed addresses, the host ports claimed.
pub fn plan_slirp(
    nets: &Networks,
    bundle: &Path,
    rootless: bool,
    mut req: Request,
) -> Result<Attachment> {
    slirp::check()?;
    let _l = nets.lock()?;
    claim_ports(&attached(&nets.store), &mut req)?;
    let a = Attachment {
        id: req.id.to_string(),
        network: "slirp4netns".into(),
        ip: slirp::ADDR,
        gateway: slirp::GATEWAY,
        ports: req.ports.clone(),
        netns: PathBuf::new(),
        run: run_dir(&nets.store, rootless),
        options: Value::Null,
        slirp: true,
    };
    write_etc(bundle, &req, Some((a.ip, a.gateway)), Some(slirp::DNS))?;
    save(bundle, &a)?;
    Ok(a)
}

/// Whether `p` is a network namespace bind mount.
fn is_netns(p: &Path) -> bool {
    // nsfs's magic number (linux/magic.h NSFS_MAGIC).
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// The network namespace the store's networks live in (where `image run`
/// ran), held by a bind mount at `RUN/host-netns` while a container is
/// attached: `delete`, which runs the poststop hook, may run elsewhere,
/// and netavark must tear down where it set up.
fn host_netns(run: &Path) -> PathBuf {
    run.join("host-netns")
}

fn inode(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.ino())
}

/// Records this thread's network namespace as the store's (attach).
fn hold_host_netns(run: &Path) -> Result<()> {
    let p = host_netns(run);
    let ours = Path::new("/proc/thread-self/ns/net");
    if is_netns(&p) {
        if inode(&p) != inode(ours) {
            return Err(Error::Other(format!(
                "the networks of this store are set up in another network namespace ({}): run image run there",
                p.display()
            )));
        }
        return Ok(());
    }
    std::fs::create_dir_all(run).map_err(|e| Error::io("cannot create", run, e))?;
    bind_netns(ours, &p)
}

/// Moves this (single-threaded) process into the store's network
/// namespace, if it was recorded and is another (detach).
fn enter_host_netns(run: &Path) -> Result<()> {
    let p = host_netns(run);
    if !is_netns(&p) || inode(&p) == inode(Path::new("/proc/thread-self/ns/net")) {
        return Ok(());
    }
    let f = std::fs::File::open(&p).map_err(|e| Error::io("cannot open", &p, e))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::sys(format!("setns {}", p.display()), e))
}

/// Holds the network namespace `src` (a /proc path) at `dst`, a file bind
/// mount that keeps it alive without a process.
fn bind_netns(src: &Path, dst: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dst)
        .map_err(|e| Error::io("cannot create", dst, e))?;
    nix::mount::mount(
        Some(src),
        dst,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = std::fs::remove_file(dst);
        Error::sys(format!("bind {} to {}", src.display(), dst.display()), e)
    })
}

fn release_netns(p: &Path) {
    let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(p);
}

/// The createRuntime hook: persists the namespace of the container's init
/// `pid` and has netavark set it up. netavark runs under the networks'
/// lock, as podman runs it under its own: its firewall changes are not
/// atomic.
pub fn attach(nets: &Networks, bundle: &Path, pid: i32) -> Result<()> {
    // Locked first: a `delete --force` racing an orphaned hook (its berth
    // killed) either finds nothing set up yet, or everything.
    let _l = nets.lock()?;
    let a = attachment(bundle)?
        .ok_or_else(|| Error::Other(format!("{}: no {FILE}", bundle.display())))?;
    if a.slirp {
        return slirp::start(&a, pid);
    }
    hold_host_netns(&a.run)?;
    let dir = a.netns.parent().expect("netns is a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    if is_netns(&a.netns) {
        return Err(Error::Other(format!(
            "{}: attached already",
            a.netns.display()
        )));
    }
    bind_netns(Path::new(&format!("/proc/{pid}/ns/net")), &a.netns)?;
    if let Err(e) = netavark::call("setup", &a.run, &a.netns, &a.options) {
        let _ = netavark::call("teardown", &a.run, &a.netns, &a.options);
        release_netns(&a.netns);
        return Err(e);
    }
    Ok(())
}

/// The poststop hook (and `image run`'s own clean-up): netavark's
/// teardown, the namespace released, the address and ports freed, and
/// netavark's base firewall chains removed once nothing uses them. Does
/// nothing for a container without an attachment.
pub fn detach(nets: &Networks, bundle: &Path) -> Result<()> {
    let _l = nets.lock()?;
    let Some(a) = attachment(bundle)? else {
        return Ok(());
    };
    let mut res = Ok(());
    if a.slirp {
        slirp::stop(&a);
    } else {
        enter_host_netns(&a.run)?;
        if is_netns(&a.netns) {
            res = netavark::call("teardown", &a.run, &a.netns, &a.options);
        }
        release_netns(&a.netns);
        netavark::prune_firewall();
    }
    let p = bundle.join(FILE);
    if let Err(e) = std::fs::remove_file(&p) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(Error::io("cannot remove", &p, e));
        }
    }
    remove_run_dir(&a.run);
    res
}

/// Removes the store's runtime directory once no namespace is attached
/// and aardvark-dns serves no network (netavark removes a network's file
/// with its last container; aardvark-dns then exits).
fn remove_run_dir(run: &Path) {
    let empty = |d: &Path| {
        std::fs::read_dir(d).map_or(true, |mut r| {
            r.all(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pid")))
        })
    };
    if empty(&run.join("netns")) && empty(&run.join("aardvark-dns")) && empty(&run.join("slirp")) {
        release_netns(&host_netns(run));
        let _ = std::fs::remove_dir_all(run);
        if let Some(parent) = run.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
