//! `berth features`: runtime-spec features.md JSON.

use super::Global;
use anyhow::Result;

pub fn run(g: &Global) -> Result<()> {
    g.check_cgroup_driver()?;
    let f = berth_runtime::features();
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}
