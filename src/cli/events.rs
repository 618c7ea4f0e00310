//! `berth events`: with --stats one stats record; otherwise a stream until
//! the container stops: a stats record every interval and, as soon as the
//! kernel's OOM killer acts in the container's cgroup, `{"type":"oom"}`
//! (runc's events). The stream ends when the container stops, after a last
//! look for an OOM kill that stopped it.

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

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    let every = parse_interval(&a.interval)?;
    let rt = g.runtime()?;
    if a.stats {
        println!("{}", rt.stats(&a.id)?);
        return Ok(());
    }
    // OOM kills are looked for every 100 ms, stats every interval.
    let tick =
        std::time::Duration::from_millis(100).min(every.max(std::time::Duration::from_millis(1)));
    let mut ooms = rt.oom_kills(&a.id)?;
    let mut oom_event = |rt: &berth_runtime::Runtime| {
        let n = rt.oom_kills(&a.id).unwrap_or(ooms);
        if n > ooms {
            ooms = n;
            println!("{}", serde_json::json!({"type": "oom", "id": a.id}));
        }
    };
    let mut next = std::time::Instant::now();
    loop {
        oom_event(&rt);
        if std::time::Instant::now() >= next {
            match rt.stats(&a.id) {
                Ok(v) => println!("{v}"),
                Err(berth_runtime::Error::NotRunning) => {
                    oom_event(&rt);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
            next += every;
        }
        std::thread::sleep(tick);
    }
}
