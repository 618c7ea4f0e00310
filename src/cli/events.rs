//! `berth events`: with --stats one stats record; otherwise one every
//! interval until the container stops.

use super::Global;
use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Print one stats record and exit.
    #[arg(long)]
    stats: bool,
    /// Interval between records, e.g. 5s, 500ms.
    #[arg(long, default_value = "5s")]
    interval: String,
    id: String,
}

/// Parses `5s`, `500ms`, `1m`.
fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("--interval {s:?}"))?;
    Ok(match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" | "" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(60 * n),
        _ => anyhow::bail!("--interval {s:?}: use e.g. 5s or 500ms"),
    })
}

pub fn run(g: &Global, a: &Args) -> Result<()> {
    let every = parse_interval(&a.interval)?;
    let rt = g.runtime()?;
    loop {
        match rt.stats(&a.id) {
            Ok(v) => println!("{v}"),
            Err(berth_runtime::Error::NotRunning) if !a.stats => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if a.stats {
            return Ok(());
        }
        std::thread::sleep(every);
    }
}
