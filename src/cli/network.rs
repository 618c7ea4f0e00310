//! `berth network ...`: the bridge networks of `berth image run` (root
//! only), and the two OCI hooks that attach a container and detach it.

use anyhow::{Context, Result};
use berth_image::net::{container, Networks};
use clap::Subcommand;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: super::image::StoreArg,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a bridge network; its containers reach each other by name.
    Create {
        /// IPv4 subnet (default: the first /24 of 10.89.0.0/16 that no
        /// other network or host route uses).
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        name: String,
    },
    /// List networks.
    Ls,
    /// Print a network (netavark's JSON) and its containers.
    Inspect { name: String },
    /// Remove a network no container uses.
    Rm { name: String },
    /// OCI createRuntime hook of `image run`: set up the container's network
    /// (state JSON on stdin).
    #[command(hide = true)]
    Attach,
    /// OCI poststop hook of `image run`: tear the container's network down
    /// (state JSON on stdin).
    #[command(hide = true)]
    Detach,
}

/// The `bundle` and `pid` of the OCI state a hook reads on stdin.
fn hook_state() -> Result<(PathBuf, i32)> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the container's state on stdin")?;
    let v: serde_json::Value =
        serde_json::from_str(&text).context("the container's state on stdin")?;
    let bundle = v["bundle"]
        .as_str()
        .context("the container's state on stdin has no bundle")?;
    Ok((PathBuf::from(bundle), v["pid"].as_i64().unwrap_or(0) as i32))
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &super::Global, a: &Args) -> Result<()> {
    let hook = matches!(a.cmd, Cmd::Attach | Cmd::Detach);
    let rootless = g.rootless()?;
    if rootless && !hook {
        anyhow::bail!("rootless: bridge networks need root (rootless containers use --network slirp4netns, none or host)");
    }
    let dir = super::image::store_dir(a.store.store.as_ref(), rootless)?;
    let nets = Networks::new(&dir);
    match &a.cmd {
        Cmd::Create { subnet, name } => {
            let n = nets.create(name, subnet.as_deref())?;
            println!("{}", n.name);
        }
        Cmd::Ls => {
            println!("{:<24} {:<18} {:<10} DNS", "NAME", "SUBNET", "BRIDGE");
            for n in nets.list()? {
                let s = n.subnets.first().map_or("", |s| s.subnet.as_str());
                println!(
                    "{:<24} {:<18} {:<10} {}",
                    n.name,
                    s,
                    n.network_interface,
                    if n.dns_enabled { "yes" } else { "no" }
                );
            }
        }
        Cmd::Inspect { name } => {
            let n = nets.get(name)?;
            let mut v = serde_json::to_value(&n)?;
            let members: serde_json::Map<String, serde_json::Value> = container::attached(&dir)
                .into_iter()
                .filter(|(_, c)| c.network == n.name)
                .map(|(id, c)| (id, serde_json::json!({"ip": c.ip, "ports": c.ports})))
                .collect();
            v["containers"] = members.into();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Rm { name } => {
            nets.remove(name)?;
            println!("{name}");
        }
        Cmd::Attach => {
            let (bundle, pid) = hook_state()?;
            if pid <= 0 {
                anyhow::bail!("the container's state on stdin has no pid");
            }
            container::attach(&nets, &bundle, pid)?;
        }
        Cmd::Detach => container::detach(&nets, &hook_state()?.0)?,
    }
    Ok(())
}
