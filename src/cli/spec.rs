//! `berth spec`: writes a default config.json, as `runc spec` does.

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A spec for rootless containers (user namespace).
    #[arg(long)]
    rootless: bool,
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(a: &Args) -> Result<()> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("File {} exists. Remove it first", path.display());
    }
    let spec = berth_runtime::spec::default_spec(a.rootless);
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    serde::Serialize::serialize(
        &spec,
        &mut serde_json::Serializer::with_formatter(&mut out, fmt),
    )?;
    std::fs::write(&path, out).with_context(|| format!("write {}", path.display()))
}
