//! `berth list`: runc's table (ID PID STATUS BUNDLE CREATED OWNER), JSON
//! or IDs only.

use super::{Format, Global};
use anyhow::Result;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print only the IDs.
    #[arg(short, long)]
    quiet: bool,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    let states = g.runtime()?.list()?;
    let s = |v: &serde_json::Value, k: &str| match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if a.quiet {
        for v in &states {
            println!("{}", s(v, "id"));
        }
        return Ok(());
    }
    if a.format == Format::Json {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(());
    }
    const COLUMNS: [&str; 6] = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let mut rows = vec![COLUMNS.map(String::from).to_vec()];
    for v in &states {
        rows.push(
            ["id", "pid", "status", "bundle", "created", "owner"]
                .iter()
                .map(|k| s(v, k))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}
