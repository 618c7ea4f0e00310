//! Networks for `berth image run`: bridge networks on netavark (podman's
//! network stack, driven through its JSON interface), published ports,
//! names through aardvark-dns, and the container's /etc files.
//!
//! - [`addr`]: IPv4 subnets, the host's routes, free subnets.
//! - [`ports`]: `-p` values.
//! - [`etc`]: resolv.conf, hosts, hostname.
//! - `netavark`: finding and calling netavark, its firewall's leftovers.
//! - [`slirp`]: `--network slirp4netns`, the rootless default.
//! - [`container`]: one container's attachment: address and host ports
//!   chosen before create, the network set up by the createRuntime hook
//!   and torn down by the poststop hook.
//!
//! A network is `STORE/networks/NAME.json`, netavark's own network JSON,
//! so `network inspect` shows what netavark is given. Addresses and host
//! ports in use are those of the containers' attachments
//! (`STORE/bundles/ID/network.json`), read under `STORE/networks/.lock`.

pub mod addr;
pub mod container;
pub mod etc;
mod netavark;
pub mod ports;
pub mod slirp;

use crate::error::{Error, Result};
use addr::Subnet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

pub use netavark::prune_firewall;

/// The network `--network bridge` (and, for root, no `--network`) means.
pub const DEFAULT: &str = "berth";

/// Values of `--network` that are not network names.
const RESERVED: [&str; 5] = ["none", "host", "bridge", "slirp4netns", "pasta"];

/// A subnet of a network and its gateway (netavark's `Subnet`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetRec {
    pub subnet: String,
    pub gateway: String,
}

/// A bridge network, in netavark's network JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub network_interface: String,
    pub subnets: Vec<SubnetRec>,
    pub ipv6_enabled: bool,
    pub internal: bool,
    pub dns_enabled: bool,
    pub ipam_options: BTreeMap<String, String>,
}

impl Network {
    pub fn subnet(&self) -> Result<Subnet> {
        let s = self
            .subnets
            .first()
            .ok_or_else(|| Error::Other(format!("network {}: no subnet", self.name)))?;
        Subnet::parse(&s.subnet)
    }
}

/// The networks of one image store.
pub struct Networks {
    pub(crate) store: PathBuf,
    dir: PathBuf,
}

fn valid_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(Error::Other(format!(
            "network name {name:?}: use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit)"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(Error::Other(format!(
            "network name {name:?} is reserved for --network {name}"
        )));
    }
    Ok(())
}

/// Whether this network namespace has an interface `name`.
fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex reads a NUL-terminated name; integer result.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

impl Networks {
    pub fn new(store: &Path) -> Networks {
        Networks {
            store: store.to_path_buf(),
            dir: store.join("networks"),
        }
    }

    /// Serialises changes to networks and the choice of addresses and
    /// ports.
    pub(crate) fn lock(&self) -> Result<nix::fcntl::Flock<File>> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("cannot create", &self.dir, e))?;
        let p = self.dir.join(".lock");
        let f = File::create(&p).map_err(|e| Error::io("cannot open", &p, e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys(format!("flock {}", p.display()), e))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn list(&self) -> Result<Vec<Network>> {
        let mut v = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(v);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".json") {
                v.push(self.get(n)?);
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<Network> {
        let p = self.path(name);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Format(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Other(format!(
                "network {name:?} not found (berth network ls lists them)"
            ))),
            Err(e) => Err(Error::io("cannot read", &p, e)),
        }
    }

    /// `berth network create`: a bridge network with `subnet`, else the
    /// first free /24 of 10.89.0.0/16. Names resolve through aardvark-dns.
    pub fn create(&self, name: &str, subnet: Option<&str>) -> Result<Network> {
        valid_name(name)?;
        let _l = self.lock()?;
        self.create_locked(name, subnet, true)
    }

    fn create_locked(&self, name: &str, subnet: Option<&str>, dns: bool) -> Result<Network> {
        if self.path(name).exists() {
            return Err(Error::Other(format!("network {name:?} exists already")));
        }
        let others = self.list()?;
        let taken: Vec<Subnet> = others.iter().filter_map(|n| n.subnet().ok()).collect();
        let subnet = match subnet {
            Some(s) => {
                let s = Subnet::parse(s)?;
                if let Some(o) = others
                    .iter()
                    .find(|o| o.subnet().is_ok_and(|t| t.overlaps(&s)))
                {
                    return Err(Error::Other(format!(
                        "subnet {s} overlaps network {}'s {}",
                        o.name, o.subnets[0].subnet
                    )));
                }
                if let Some((dev, r)) = addr::host_routes()
                    .into_iter()
                    .find(|(_, r)| r.overlaps(&s))
                {
                    return Err(Error::Other(format!(
                        "subnet {s} overlaps the host's route to {r} on {dev}"
                    )));
                }
                s
            }
            None => addr::free_subnet(&taken)?,
        };
        let bridge = (0..)
            .map(|i| format!("berth{i}"))
            .find(|b| !others.iter().any(|o| &o.network_interface == b) && !link_exists(b))
            .expect("an unused name");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let id =
            crate::digest::Digest::of(format!("{name} {t:?} {}", std::process::id()).as_bytes());
        let net = Network {
            name: name.to_string(),
            id: id.hex().to_string(),
            driver: "bridge".into(),
            network_interface: bridge,
            subnets: vec![SubnetRec {
                subnet: subnet.to_string(),
                gateway: subnet.gateway().to_string(),
            }],
            ipv6_enabled: false,
            internal: false,
            dns_enabled: dns,
            ipam_options: [("driver".to_string(), "host-local".to_string())].into(),
        };
        crate::fsutil::write_json(
            &self.path(name),
            &self.dir.join(format!(".{name}.tmp")),
            &net,
        )?;
        Ok(net)
    }

    /// The default network, made on first use (no DNS, as Docker's and
    /// podman's default networks).
    pub fn default_network(&self) -> Result<Network> {
        if let Ok(n) = self.get(DEFAULT) {
            return Ok(n);
        }
        let _l = self.lock()?;
        match self.get(DEFAULT) {
            Ok(n) => Ok(n),
            Err(_) => self.create_locked(DEFAULT, None, false),
        }
    }

    /// `--network` NAME: `bridge` is the default network.
    pub fn by_flag(&self, name: &str) -> Result<Network> {
        if name == "bridge" || name == DEFAULT {
            self.default_network()
        } else {
            self.get(name)
        }
    }

    /// `berth network rm`: refused while a container is attached.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _l = self.lock()?;
        self.get(name)?;
        if let Some((id, _)) = container::attached(&self.store)
            .into_iter()
            .find(|(_, a)| a.network == name)
        {
            return Err(Error::Other(format!(
                "network {name:?} is in use by container {id}"
            )));
        }
        let p = self.path(name);
        std::fs::remove_file(&p).map_err(|e| Error::io("cannot remove", &p, e))
    }
}
