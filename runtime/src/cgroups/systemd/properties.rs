//! Unit properties from the config: `linux.resources` under systemd's
//! names (MemoryMax, CPUWeight, AllowedCPUs, ...), device rules as
//! DeviceAllow/DevicePolicy, and `org.systemd.property.` annotations
//! parsed from GVariant text.

pub use super::wire::Value;
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;

/// One unit property.
pub type Property = (String, Value);

/// A cpuset list (`0-3,7`) as the bitmask systemd's AllowedCPUs takes.
fn cpu_bitmask(list: &str, field: &str) -> Result<Vec<u8>> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) if a <= b && b < 8192 => (a, b),
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("{list:?} is not a list of numbers"),
                ))
            }
        };
        for n in a..=b {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(bits)
}

/// -1 (unlimited) as systemd's infinity.
fn limit(v: i64) -> u64 {
    if v < 0 {
        u64::MAX
    } else {
        v as u64
    }
}

/// The unit properties for `res` that systemd knows (runc's conversions:
/// CPUWeight from shares, the quota per second, swap on top of memory).
pub fn resource_properties(res: &LinuxResources) -> Result<Vec<Property>> {
    let mut p: Vec<Property> = Vec::new();
    let mut set = |k: &str, v: Value| p.push((k.to_string(), v));
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            set("MemoryMax", Value::U64(limit(l)));
        }
        if let Some(r) = m.reservation() {
            set("MemoryLow", Value::U64(limit(r)));
        }
        if let Some(s) = m.swap() {
            // The spec's swap is memory+swap; systemd's is swap alone.
            let v = match (s, m.limit()) {
                (-1, _) => u64::MAX,
                (s, Some(l)) if l >= 0 => (s - l).max(0) as u64,
                (s, _) => limit(s),
            };
            set("MemorySwapMax", Value::U64(v));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            let w = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
            set("CPUWeight", Value::U64(w));
        }
        let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
        if c.period().is_some() {
            set("CPUQuotaPeriodUSec", Value::U64(period));
        }
        if let Some(q) = c.quota() {
            let per_sec = if q > 0 {
                // systemd keeps whole percents: round up to 10 ms a second
                // so the cgroup gets at least the quota asked for.
                let us = (q as u64 * 1_000_000).div_ceil(period);
                us.div_ceil(10_000) * 10_000
            } else {
                u64::MAX
            };
            set("CPUQuotaPerSecUSec", Value::U64(per_sec));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let b = cpu_bitmask(cpus, "linux.resources.cpu.cpus")?;
            set("AllowedCPUs", Value::from(b));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let b = cpu_bitmask(mems, "linux.resources.cpu.mems")?;
            set("AllowedMemoryNodes", Value::from(b));
        }
    }
    if let Some(pids) = res.pids() {
        if pids.limit() != 0 {
            set("TasksMax", Value::U64(limit(pids.limit())));
        }
    }
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()) {
        // blkio's 10..1000 onto io's 1..10000, as runc converts it.
        let w = 1 + (w.clamp(10, 1000) as u64 - 10) * 9999 / 990;
        set("IOWeight", Value::U64(w));
    }
    Ok(p)
}

/// The device policy, when berth's rules say "deny everything, then allow
/// these" and each allowed device is one systemd can name; otherwise
/// nothing (berth's own eBPF program enforces the rules either way).
pub fn device_properties(rules: &[crate::cgroups::devices::Rule]) -> Vec<Property> {
    let Some((first, rest)) = rules.split_first() else {
        return Vec::new();
    };
    if first.allow || first.kind != 'a' || first.major.is_some() || first.minor.is_some() {
        return Vec::new();
    }
    let mut allow: Vec<(String, String)> = Vec::new();
    for r in rest {
        let kind = match r.kind {
            'c' => "char",
            'b' => "block",
            _ => return Vec::new(),
        };
        match (r.allow, r.major, r.minor) {
            (true, Some(maj), Some(min)) => {
                allow.push((format!("/dev/{kind}/{maj}:{min}"), r.access.clone()))
            }
            // A whole major: systemd names it by /proc/devices' name.
            (true, Some(maj), None) => match device_group(kind, maj) {
                Some(name) => allow.push((format!("{kind}-{name}"), r.access.clone())),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        }
    }
    vec![
        ("DevicePolicy".to_string(), Value::from("strict")),
        ("DeviceAllow".to_string(), Value::from(allow)),
    ]
}

/// The /proc/devices name of a major number (`136` → `pts`).
fn device_group(kind: &str, major: u32) -> Option<String> {
    let text = std::fs::read_to_string("/proc/devices").ok()?;
    let section = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    text.split("\n\n")
        .find(|s| s.trim_start().starts_with(section))?
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().split_once(' '))
        .find(|(m, _)| m.parse() == Ok(major))
        .map(|(_, n)| n.to_string())
}

/// An `org.systemd.property.NAME` annotation's value, in GVariant text
/// form as runc takes it: `true`, `uint64 123`, `'text'`, `['a', 'b']`,
/// a bare number (int32) or with a type (`@t 5`, `int64 -1`, ...).
pub fn parse_gvariant(s: &str) -> std::result::Result<Value, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a GVariant value berth reads");
    match s {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let quoted = |t: &str| {
        let t = t.trim();
        let q = t.chars().next()?;
        (matches!(q, '\'' | '"') && t.len() >= 2 && t.ends_with(q))
            .then(|| t[1..t.len() - 1].to_string())
    };
    if let Some(v) = quoted(s) {
        return Ok(Value::from(v));
    }
    let list = s.strip_prefix("@as").map(str::trim).unwrap_or(s);
    if let Some(inner) = list.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        let items: std::result::Result<Vec<String>, String> = inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| quoted(i).ok_or_else(bad))
            .collect();
        return Ok(Value::from(items?));
    }
    let (ty, num) = match s.split_once(' ') {
        Some((t, n)) => (t, n.trim()),
        None => ("int32", s),
    };
    let v = match ty {
        "uint64" | "@t" => Value::U64(num.parse().map_err(|_| bad())?),
        "int64" | "@x" => Value::I64(num.parse().map_err(|_| bad())?),
        "uint32" | "@u" => Value::U32(num.parse().map_err(|_| bad())?),
        "int32" | "@i" => Value::I32(num.parse().map_err(|_| bad())?),
        "uint16" | "@q" => Value::U16(num.parse().map_err(|_| bad())?),
        "int16" | "@n" => Value::I16(num.parse().map_err(|_| bad())?),
        "byte" | "@y" => Value::U8(num.parse().map_err(|_| bad())?),
        "double" | "@d" => Value::F64(num.parse().map_err(|_| bad())?),
        "boolean" | "@b" => Value::Bool(num.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok(v)
}

/// The `org.systemd.property.*` annotations as properties (runc's).
pub fn annotation_properties(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Result<Vec<Property>> {
    let mut v: Vec<Property> = Vec::new();
    let mut keys: Vec<_> = annotations.into_iter().flatten().collect();
    keys.sort();
    for (k, val) in keys {
        let Some(name) = k.strip_prefix("org.systemd.property.") else {
            continue;
        };
        let value =
            parse_gvariant(val).map_err(|e| Error::invalid(format!("annotations.{k}"), e))?;
        v.push((name.to_string(), value));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_become_properties() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576,"swap":2097152,"reservation":-1},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-2,7"},
            "pids":{"limit":-1},"blockIO":{"weight":500}}"#,
        )
        .unwrap();
        let p = resource_properties(&r).unwrap();
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(1 << 20)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(1 << 20)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(get("AllowedCPUs"), Some(Value::from(vec![0b1000_0111u8])));
        assert_eq!(get("TasksMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("IOWeight"), Some(Value::U64(1 + 490 * 9999 / 990)));
        // A quota in fractional percents is rounded up to whole ones.
        let r: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"quota":12345,"period":100000}}"#).unwrap();
        let p = resource_properties(&r).unwrap();
        assert!(p.contains(&("CPUQuotaPerSecUSec".into(), Value::U64(130_000))));
    }

    #[test]
    fn gvariant_annotations() {
        assert_eq!(
            parse_gvariant("uint64 123456789").unwrap(),
            Value::U64(123_456_789)
        );
        assert_eq!(
            parse_gvariant("'inactive-or-failed'").unwrap(),
            Value::from("inactive-or-failed")
        );
        assert_eq!(parse_gvariant("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_gvariant("42").unwrap(), Value::I32(42));
        assert_eq!(
            parse_gvariant("['a.service', 'b.service']").unwrap(),
            Value::from(vec!["a.service".to_string(), "b.service".to_string()])
        );
        assert!(parse_gvariant("uint64 lots").is_err());
        let mut a = std::collections::HashMap::new();
        a.insert(
            "org.systemd.property.TimeoutStopUSec".to_string(),
            "uint64 5".to_string(),
        );
        a.insert("other".to_string(), "x".to_string());
        let p = annotation_properties(Some(&a)).unwrap();
        assert_eq!(p, vec![("TimeoutStopUSec".to_string(), Value::U64(5))]);
    }
}
