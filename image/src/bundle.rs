//! An OCI runtime bundle from an image (image-spec config.md, "Properties"
//! mapped as conversion.md describes): `config.json` built on a base
//! runtime config (berth's default spec, handed in by the binary) and a
//! `rootfs` that is an overlay mount of the image with a private upper dir.

use crate::error::{Error, Result};
use crate::store::{ImageRec, Store};
use crate::{digest::Digest, overlay};
use serde_json::{json, Value};
use std::path::Path;

/// What `berth image run` (and `bundle`) may change in the config.
#[derive(Default, Clone, Debug)]
pub struct Opts {
    /// Replaces the image's Cmd (Entrypoint stays).
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// Bytes.
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    /// `none` (a network namespace of its own, set up by `hooks` if it
    /// has any) or `host`.
    pub network: Option<String>,
    /// More mounts (after the volumes), as config.json mounts.
    pub mounts: Vec<Value>,
    /// config.json's `hooks`.
    pub hooks: Option<Value>,
    /// `SRC:DST[:ro]` bind mounts.
    pub volumes: Vec<String>,
    pub read_only: bool,
    pub terminal: bool,
    /// The container's changes go with it (`image run --rm`): its overlay
    /// is `volatile`, so the upper dir is never synced to disk.
    pub discard: bool,
}

/// Reads a file of the image rootfs (resolved inside it).
fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let fd = openat2(&root, path.trim_start_matches('/'), how).ok()?;
    std::io::read_to_string(std::fs::File::from(fd)).ok()
}

/// Resolves an image `User` (`name`, `uid`, `name:group`, `uid:gid`) through
/// the rootfs's /etc/passwd and /etc/group: (uid, gid, additional gids).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let entry = pw.iter().find(|f| f[0] == u || f[2] == u);
    let uid: u32 = match (u.parse::<u32>(), entry) {
        (Ok(n), _) => n,
        (Err(_), Some(f)) => f[2].parse().unwrap_or(0),
        (Err(_), None) => {
            return Err(Error::Other(format!(
                "user {u:?} not found in the image's /etc/passwd"
            )))
        }
    };
    let gid: u32 = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::Other(format!("group {g:?} not found in the image's /etc/group"))
                })?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let name = entry.map(|f| f[0]).unwrap_or("");
    let extra = if g.is_none() && !name.is_empty() {
        gr.iter()
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|x| *x != gid)
            .collect()
    } else {
        Vec::new()
    };
    Ok((uid, gid, extra))
}

/// Builds config.json from `base`, the image config and `opts`.
pub fn make_config(base: &Value, image_config: &Value, rootfs: &Path, o: &Opts) -> Result<Value> {
    let ic = image_config.get("config").cloned().unwrap_or(Value::Null);
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut args = strs(ic.get("Entrypoint"));
    args.extend(if o.cmd.is_empty() {
        strs(ic.get("Cmd"))
    } else {
        o.cmd.clone()
    });
    if args.is_empty() {
        return Err(Error::Other(
            "the image has no Entrypoint or Cmd: give a command".into(),
        ));
    }
    let mut env = strs(ic.get("Env"));
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    for e in &o.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    if o.terminal {
        env.push("TERM=xterm".into());
    }
    let cwd = o
        .workdir
        .clone()
        .or_else(|| {
            ic.get("WorkingDir")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "/".into());
    let user = o
        .user
        .clone()
        .or_else(|| ic.get("User").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let (uid, gid, extra) = resolve_user(rootfs, &user)?;

    let mut c = base.clone();
    c["process"]["terminal"] = json!(o.terminal);
    c["process"]["args"] = json!(args);
    c["process"]["env"] = json!(env);
    c["process"]["cwd"] = json!(cwd);
    c["process"]["user"] = json!({"uid": uid, "gid": gid});
    if !extra.is_empty() {
        c["process"]["user"]["additionalGids"] = json!(extra);
    }
    c["root"] = json!({"path": "rootfs", "readonly": o.read_only});
    if let Some(h) = &o.hostname {
        c["hostname"] = json!(h);
    }
    if let Some(labels) = ic.get("Labels").and_then(Value::as_object) {
        c["annotations"] = json!(labels);
    }
    let res = &mut c["linux"]["resources"];
    if let Some(m) = o.memory {
        res["memory"] = json!({"limit": m});
    }
    if let Some(cpus) = o.cpus {
        if cpus <= 0.0 {
            return Err(Error::Other(format!("--cpus {cpus}: must be positive")));
        }
        res["cpu"] = json!({"quota": (cpus * 100_000.0) as i64, "period": 100_000});
    }
    if let Some(p) = o.pids_limit {
        res["pids"] = json!({"limit": p});
    }
    match o.network.as_deref() {
        None | Some("none") => {}
        Some("host") => {
            if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
                ns.retain(|n| n["type"] != "network");
            }
            // sysfs of the host's network namespace cannot be mounted anew.
            if let Some(ms) = c["mounts"].as_array_mut() {
                for m in ms.iter_mut().filter(|m| m["destination"] == "/sys") {
                    *m = json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
            }
        }
        Some(n) => return Err(Error::Other(format!("--network {n:?}: use none or host"))),
    }
    if let Some(h) = &o.hooks {
        c["hooks"] = h.clone();
    }
    for v in &o.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(Error::Other(format!("-v {v:?}: use SRC:DST[:ro]"))),
        };
        if !Path::new(src).is_absolute() || !Path::new(dst).is_absolute() {
            return Err(Error::Other(format!(
                "-v {v:?}: both paths must be absolute"
            )));
        }
        let mut opts = vec!["rbind", "nosuid", "nodev"];
        if ro {
            opts.push("ro");
        }
        c["mounts"]
            .as_array_mut()
            .expect("base has mounts")
            .push(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
    }
    c["mounts"]
        .as_array_mut()
        .expect("base has mounts")
        .extend(o.mounts.iter().cloned());
    Ok(c)
}

/// Makes a bundle at `dir`: `rootfs` overlay-mounted, `config.json` written.
pub fn bundle(store: &Store, image: &ImageRec, dir: &Path, base: &Value, o: &Opts) -> Result<()> {
    let config = serde_json::from_slice::<Value>(&store.read_blob(&Digest::parse(&image.config)?)?)
        .map_err(|e| Error::Format(format!("image config: {e}")))?;
    let rootfs = dir.join("rootfs");
    overlay::mount(store, image, &rootfs, o.discard)?;
    let res = make_config(base, &config, &rootfs, o).and_then(|c| {
        let p = dir.join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&c).expect("serializes"))
            .map_err(|e| Error::io("cannot write", &p, e))
    });
    if res.is_err() {
        let _ = overlay::umount(store, &rootfs);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        let d = std::env::temp_dir().join(format!("berth-users-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/group"),
            "root:x:0:\nuser:x:1000:\nwheel:x:10:user,other\n",
        )
        .unwrap();
        assert_eq!(resolve_user(&d, "user").unwrap(), (1000, 1000, vec![10]));
        assert_eq!(resolve_user(&d, "1000").unwrap(), (1000, 1000, vec![10]));
        assert_eq!(resolve_user(&d, "user:wheel").unwrap(), (1000, 10, vec![]));
        assert_eq!(resolve_user(&d, "42:43").unwrap(), (42, 43, vec![]));
        assert!(resolve_user(&d, "nobody").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
