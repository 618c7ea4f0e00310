//! /proc/self/mountinfo (proc(5)): one entry per mount, parsed once per
//! read. The cgroup layout and the rootfs's parent mount are found here.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path inside its filesystem that is mounted (field 4).
    pub root: PathBuf,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// Optional fields: `shared:N`, `master:N`, ... (field 7 on).
    pub optional: String,
    pub fstype: String,
    /// Superblock options (the last field).
    pub super_options: String,
}

impl Mount {
    /// Whether the mount is in a shared peer group.
    pub fn shared(&self) -> bool {
        self.optional.split(' ').any(|o| o.starts_with("shared:"))
    }
}

/// Parses mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 6 || post.len() < 3 {
                return None;
            }
            Some(Mount {
                root: PathBuf::from(unescape(pre[3])),
                mount_point: PathBuf::from(unescape(pre[4])),
                optional: pre[6..].join(" "),
                fstype: post[0].to_string(),
                super_options: post[2].to_string(),
            })
        })
        .collect()
}

/// This process's mounts.
pub fn read() -> Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("cannot read", "/proc/self/mountinfo", e))?;
    Ok(parse(&text))
}

/// The mount `path` (absolute, without symlinks) lies on: the last one
/// mounted on the longest prefix of it.
pub fn containing<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .fold(None, |best: Option<&Mount>, m| match best {
            Some(b) if b.mount_point.as_os_str().len() > m.mount_point.as_os_str().len() => Some(b),
            _ => Some(m),
        })
}

/// Mountinfo escapes space, tab, newline and backslash as octal.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_containing_mount() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
            30 22 0:26 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n\
            40 22 0:30 /x /mnt/a\\040b rw master:3 - tmpfs tmpfs rw\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].fstype, "cgroup");
        assert_eq!(m[1].super_options, "rw,memory");
        assert_eq!(m[2].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(m[2].root, PathBuf::from("/x"));
        assert!(m[0].shared() && !m[2].shared());
        let c = containing(&m, Path::new("/mnt/a b/rootfs")).unwrap();
        assert_eq!(c.mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(
            containing(&m, Path::new("/tmp")).unwrap().mount_point,
            PathBuf::from("/")
        );
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
