//! `linux.intelRdt` (config-linux.md "IntelRdt"): the container's init
//! placed in a resctrl group (`closID`, else one named after the container)
//! with its schemata, and optionally a monitoring group of its own. Where
//! no resctrl filesystem is mounted, asking for it is an error.

use crate::error::{Error, Result};
use oci_spec::runtime::LinuxIntelRdt;
use std::path::{Path, PathBuf};

const FIELD: &str = "linux.intelRdt";

/// Where resctrl is mounted, if it is.
pub(crate) fn mount_point() -> Result<Option<PathBuf>> {
    Ok(crate::fs::mountinfo::read()?
        .into_iter()
        .find(|m| m.fstype == "resctrl")
        .map(|m| m.mount_point))
}

/// The groups berth makes for a container (removed at delete): the
/// control group when no `closID` names one, and the monitoring group.
pub(crate) fn planned(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> Vec<PathBuf> {
    let group = group_dir(root, rdt, id);
    let mut v = Vec::new();
    if rdt.enable_monitoring() == &Some(true) {
        v.push(group.join("mon_groups").join(id));
    }
    if rdt.clos_id().is_none() {
        v.push(group);
    }
    v
}

fn group_dir(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> PathBuf {
    match rdt.clos_id().as_deref() {
        Some("/") => root.to_path_buf(),
        Some(c) => root.join(c),
        None => root.join(id),
    }
}

/// The schemata lines asked for, in the order the spec gives.
fn schemata(rdt: &LinuxIntelRdt) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    lines.extend(rdt.l3_cache_schema().clone());
    lines.extend(rdt.mem_bw_schema().clone());
    lines.extend(rdt.schemata().iter().flatten().cloned());
    lines
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::invalid(FIELD, format!("{what} {}: {e}", p.display()))
}

/// Puts `pid` in its resctrl groups under `root`, creating and writing
/// them as the spec's rules say.
pub(crate) fn apply(root: &Path, rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<()> {
    if let Some(c) = rdt.clos_id().as_deref() {
        if c != "/" && (c.is_empty() || c == "." || c == ".." || c.contains('/')) {
            return Err(Error::invalid(
                FIELD,
                format!("closID {c:?}: not a group name"),
            ));
        }
    }
    let dir = group_dir(root, rdt, id);
    let lines = schemata(rdt);
    if lines.iter().any(|l| l.contains('\n')) {
        return Err(Error::invalid(FIELD, "a schema contains a newline"));
    }
    let existed = dir.is_dir();
    if !lines.is_empty() {
        if existed && rdt.clos_id().is_some() {
            // A group that exists must already have these schemata.
            let have = std::fs::read_to_string(dir.join("schemata"))
                .map_err(|e| io("cannot read", &dir.join("schemata"), e))?;
            let have: Vec<&str> = have.lines().map(str::trim).collect();
            if let Some(l) = lines.iter().find(|l| !have.contains(&l.trim())) {
                return Err(Error::invalid(
                    FIELD,
                    format!(
                        "closID group {} exists with other schemata than {l:?}",
                        dir.display()
                    ),
                ));
            }
        } else {
            if !existed {
                std::fs::create_dir(&dir).map_err(|e| io("cannot create", &dir, e))?;
            }
            for l in &lines {
                std::fs::write(dir.join("schemata"), format!("{l}\n"))
                    .map_err(|e| io(&format!("cannot write {l:?} to"), &dir.join("schemata"), e))?;
            }
        }
    } else if rdt.clos_id().is_some() && !existed {
        return Err(Error::invalid(
            FIELD,
            format!("closID group {} does not exist", dir.display()),
        ));
    } else if !existed {
        std::fs::create_dir(&dir).map_err(|e| io("cannot create", &dir, e))?;
    }
    let tasks_dir = if rdt.enable_monitoring() == &Some(true) {
        let mon = dir.join("mon_groups").join(id);
        std::fs::create_dir(&mon).map_err(|e| io("cannot create monitoring group", &mon, e))?;
        mon
    } else {
        dir
    };
    let tasks = tasks_dir.join("tasks");
    std::fs::write(&tasks, pid.to_string()).map_err(|e| io("cannot write to", &tasks, e))
}

/// Removes the groups berth made (their tasks have exited).
pub(crate) fn remove(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(j: &str) -> LinuxIntelRdt {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn groups_schemata_and_tasks() {
        // A stand-in resctrl tree: plain files where resctrl has them.
        let root = std::env::temp_dir().join(format!("berth-rdt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("gold/mon_groups")).unwrap();
        std::fs::write(root.join("gold/schemata"), "L3:0=7f0\nMB:0=20\n").unwrap();
        // No closID: a group named after the container, with the schemata.
        let r = rdt(r#"{"l3CacheSchema":"L3:0=ff","memBwSchema":"MB:0=50"}"#);
        std::fs::create_dir_all(root.join("c1")).unwrap();
        std::fs::remove_dir(root.join("c1")).unwrap();
        assert_eq!(planned(&root, &r, "c1"), vec![root.join("c1")]);
        apply(&root, &r, "c1", 42).unwrap();
        // (A plain file keeps the last write; resctrl merges the lines.)
        assert_eq!(
            std::fs::read_to_string(root.join("c1/schemata")).unwrap(),
            "MB:0=50\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("c1/tasks")).unwrap(),
            "42"
        );
        // closID naming a group with other schemata: refused.
        let e = apply(
            &root,
            &rdt(r#"{"closID":"gold","l3CacheSchema":"L3:0=1"}"#),
            "c2",
            1,
        );
        assert!(e.unwrap_err().to_string().contains("other schemata"));
        // closID with matching schemata and monitoring: joins, mon group made.
        let r = rdt(r#"{"closID":"gold","memBwSchema":"MB:0=20","enableMonitoring":true}"#);
        assert_eq!(
            planned(&root, &r, "c3"),
            vec![root.join("gold/mon_groups/c3")]
        );
        apply(&root, &r, "c3", 7).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("gold/mon_groups/c3/tasks")).unwrap(),
            "7"
        );
        // closID of a missing group without schemata: refused.
        assert!(apply(&root, &rdt(r#"{"closID":"none"}"#), "c4", 1).is_err());
        assert!(apply(&root, &rdt(r#"{"closID":"../x"}"#), "c5", 1).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
