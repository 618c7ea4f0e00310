//! `linux.netDevices` (config-linux.md "Network Devices"): host links moved
//! into the container's network namespace under their new names, with
//! their permanent global addresses (which a move drops) added back, and
//! set up. Done by berth before it releases the init. As the spec says,
//! nothing is moved back: when the namespace goes, the kernel returns
//! physical devices to the initial namespace and destroys virtual ones.

use crate::error::{Error, Result, SysCtx};
use crate::net::netlink::Socket;
use oci_spec::runtime::Spec;
use std::os::fd::OwnedFd;

/// Moves the config's devices into the network namespace `netns`.
pub(crate) fn move_all(spec: &Spec, netns: &OwnedFd) -> Result<()> {
    let Some(devs) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(());
    };
    if devs.is_empty() {
        return Ok(());
    }
    let mut names: Vec<_> = devs.iter().collect();
    names.sort_by_key(|(k, _)| k.as_str());
    let mut host = Socket::new().ctx(|| "netlink socket".into())?;
    // A socket in the container's namespace: made there, then back.
    let own = nix::fcntl::open(
        "/proc/self/ns/net",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open /proc/self/ns/net".into())?;
    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
        .ctx(|| "enter the container's network namespace".into())?;
    let inside = Socket::new();
    nix::sched::setns(&own, nix::sched::CloneFlags::CLONE_NEWNET)
        .ctx(|| "return to berth's network namespace".into())?;
    let mut inside = inside.ctx(|| "netlink socket in the container".into())?;
    for (host_name, dev) in names {
        let field = format!("linux.netDevices.{host_name}");
        let new_name = dev.name().clone().unwrap_or_else(|| host_name.clone());
        let fail = |what: &str, e: nix::Error| Error::invalid(&field, format!("{what}: {e}"));
        let index = host
            .link_index(host_name)
            .map_err(|e| fail("no such network device on the host", e))?;
        let addrs: Vec<_> = host
            .addrs(index)
            .map_err(|e| fail("read its addresses", e))?
            .into_iter()
            .filter(|a| a.permanent_global())
            .collect();
        host.move_link(index, netns, &new_name).map_err(|e| {
            let why = if e == nix::errno::Errno::EEXIST {
                format!("move it in as {new_name:?}: the container has a device of that name")
            } else {
                format!("move it in as {new_name:?}")
            };
            fail(&why, e)
        })?;
        // The kernel keeps the index when it is free there (it is in a new
        // namespace, where only lo exists), which also finds `%d` names.
        let index = match inside.link_name(index) {
            Ok(_) => index,
            Err(_) => inside
                .link_index(&new_name)
                .map_err(|e| fail("find it in the container", e))?,
        };
        for a in &addrs {
            inside
                .add_addr(index, a)
                .map_err(|e| fail("add its address back", e))?;
        }
        inside.link_up(index).map_err(|e| fail("set it up", e))?;
    }
    Ok(())
}
