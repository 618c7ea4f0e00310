//! Integration tests of the image half: import, the layer store, overlay
//! rootfs, flattening (against umoci), bundles and `berth image run`.

mod common;
use common::{images, ok, T};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

fn import(t: &T, name: &str, args: &[&str]) -> String {
    let p = images().join(name);
    let mut a = vec!["import", p.to_str().unwrap()];
    a.extend_from_slice(args);
    ok(&t.image(&a))
}

fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: valid path and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let mut out = Vec::new();
    if n > 0 {
        for name in names[..n as usize]
            .split(|b| *b == 0)
            .filter(|x| !x.is_empty())
        {
            let cn = CString::new(name).unwrap();
            let mut v = vec![0u8; 4096];
            // SAFETY: valid path, name and buffer.
            let m =
                unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
            v.truncate(m.max(0) as usize);
            out.push((String::from_utf8_lossy(name).into_owned(), v));
        }
    }
    out.sort();
    out
}

/// path -> "type mode uid:gid size link xattrs"
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                "dir"
            } else if ft.is_symlink() {
                "link"
            } else if ft.is_char_device() {
                "chr"
            } else if ft.is_file() {
                "file"
            } else {
                "other"
            };
            let link = if ft.is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            let size = if ft.is_file() { m.len() } else { 0 };
            let nlink = if ft.is_file() { m.nlink() } else { 0 };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(
                rel,
                format!(
                    "{kind} {:o} {}:{} {size} {nlink} {:x} {link} {:?}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.rdev(),
                    xattrs(&p)
                ),
            );
        }
    }
    out
}

#[test]
fn image_run_busybox_prints_hi() {
    let t = T::new("imgrun");
    let out = import(&t, "busybox", &[]);
    assert!(
        out.contains("busybox:latest") && out.contains("(1 layers, 1 unpacked)"),
        "{out}"
    );
    let o = t.image(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(ok(&o), "hi\n");
    // Flags reach the container.
    let o = t.image(&["run", "--rm", "--hostname", "h1", "-e", "FOO=bar", "-w", "/tmp", "-u", "user", "--memory", "32m", "--pids-limit", "20", "busybox", "sh", "-c",
        "hostname; echo $FOO; pwd; id -u; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/class/net"]);
    assert_eq!(ok(&o), "h1\nbar\n/tmp\n1000\n33554432\nlo\n");
    let o = t.image(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    // image run leaves a berth process inside the container until its
    // execve, so it runs from a read-only view of its binary, as create,
    // run and exec do (CVE-2019-5736; tests/security.rs attacks exec).
    let mut child = t
        .image_cmd(&["run", "--rm", "--network", "none", "busybox", "sleep", "2"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let kids = format!("/proc/{pid}/task/{pid}/children");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&kids)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(t0.elapsed().as_secs() < 30, "no container started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let flags = nix::sys::statvfs::statvfs(format!("/proc/{pid}/exe").as_str())
        .unwrap()
        .flags();
    assert!(child.wait().unwrap().success());
    assert!(
        flags.contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "image run's binary is writable: {flags:?}"
    );
    // The changes of a --rm container are thrown away: its overlay is
    // volatile (never synced), as the container sees it.
    let o = t.image(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        " / / ",
        "/proc/self/mountinfo",
    ]);
    let root = ok(&o);
    // (",volatile" before 6.6, "fsync=volatile" since.)
    assert!(
        root.contains(" overlay ") && root.contains("volatile"),
        "{root}"
    );
    // A volume, read-only.
    let vol = t.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "from-host\n").unwrap();
    let spec = format!("{}:/v:ro", vol.display());
    let o = t.image(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /v/f; touch /v/g 2>/dev/null || echo ro-vol; touch /x 2>/dev/null || echo ro-root",
    ]);
    assert_eq!(ok(&o), "from-host\nro-vol\nro-root\n");
    assert!(
        std::fs::read_dir(t.store().join("bundles"))
            .unwrap()
            .next()
            .is_none(),
        "--rm left a bundle"
    );
    assert!(
        std::fs::read_dir(t.store().join("mounts"))
            .unwrap()
            .next()
            .is_none(),
        "--rm left an upper dir"
    );
}

#[test]
fn multi_layer_rootfs_matches_umoci() {
    let t = T::new("multi");
    import(&t, "multi", &["--name", "multi"]);
    let mnt = t.dir.join("mnt");
    ok(&t.image(&["mount", "multi", mnt.to_str().unwrap()]));
    // A mount that is kept is synced like any file system.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.contains(&format!(" {} ", mnt.display())))
        .expect("the overlay is mounted");
    assert!(!line.contains("volatile"), "{line}");
    let flat = t.dir.join("flat");
    ok(&t.image(&["unpack", "multi", flat.to_str().unwrap()]));
    let umo = t.dir.join("umoci");
    let layout = format!("{}:latest", images().join("multi-umoci").display());
    let o = std::process::Command::new("umoci")
        .args(["unpack", "--image", &layout, umo.to_str().unwrap()])
        .output()
        .expect("umoci installed");
    ok(&o);
    let (a, b, c) = (tree(&mnt), tree(&flat), tree(&umo.join("rootfs")));
    assert_eq!(a, b, "overlay mount and berth image unpack differ");
    assert_eq!(b, c, "berth image unpack and umoci unpack differ");
    // What the layers mean, checked directly.
    let read = |p: &str| std::fs::read_to_string(mnt.join(p)).unwrap();
    assert_eq!(read("changed"), "v2 changed\n");
    assert!(!mnt.join("gone.txt").exists() && !mnt.join("gonedir").exists());
    assert!(
        !mnt.join("opq/old1").exists() && !mnt.join("opq/sub").exists(),
        "opaque dir hid lower entries"
    );
    assert!(
        mnt.join("opq/new1").exists(),
        "entry before the opaque marker kept"
    );
    assert_eq!(read("opq/sub2/x"), "x");
    assert_eq!(
        read("data/a.txt"),
        "a\n",
        "a smuggled trusted.overlay.opaque must not hide lower files"
    );
    assert_eq!(
        std::fs::metadata(mnt.join("hl/link")).unwrap().ino(),
        std::fs::metadata(mnt.join("hl/file")).unwrap().ino()
    );
    assert_eq!(
        std::fs::read_link(mnt.join("sym/rel")).unwrap(),
        Path::new("../etc/hostname")
    );
    assert_eq!(a["bin/suid"].split(' ').nth(1), Some("4755"));
    assert_eq!(a["secret"].split(' ').nth(1), Some("700"));
    assert!(a["owned"].contains(" 1000:2000 "));
    assert!(a["data/a.txt"].contains("user.test"));
    assert!(
        !a.keys().any(|k| k.contains(".wh.")),
        "whiteout markers in a rootfs"
    );
    ok(&t.image(&["umount", mnt.to_str().unwrap()]));
    assert!(std::fs::read_dir(t.store().join("mounts"))
        .unwrap()
        .next()
        .is_none());
}

/// A digest of a layer directory's listing (names, metadata, contents).
fn layers_state(store: &Path) -> Vec<(String, u64, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(store.join("layers")).unwrap().flatten() {
        let m = e.metadata().unwrap();
        let t = tree(&e.path());
        let mut contents = String::new();
        for k in t.keys() {
            if let Ok(s) = std::fs::read(e.path().join(k)) {
                contents.push_str(&format!("{k}:{}\n", s.len()));
            }
        }
        v.push((
            e.file_name().to_string_lossy().into_owned(),
            m.ino(),
            format!("{t:?}{contents}"),
        ));
    }
    v.sort();
    v
}

#[test]
fn containers_share_layers_and_keep_writes_private() {
    let t = T::new("share");
    import(&t, "busybox", &[]);
    let before = layers_state(&t.store());
    let a = t.id("a");
    let o = t.image(&[
        "run",
        "--name",
        &a,
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; echo evil >> /etc/passwd; rm /bin/ls",
    ]);
    ok(&o);
    let o = t.image(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /newfile 2>&1; grep -c evil /etc/passwd; ls -d /bin/ls",
    ]);
    assert_eq!(ok(&o).lines().skip(1).collect::<Vec<_>>(), ["0", "/bin/ls"]);
    assert_eq!(
        layers_state(&t.store()),
        before,
        "a container changed a shared layer"
    );
    // A second import (and container) of the same image unpacks nothing.
    let out = import(&t, "busybox", &[]);
    assert!(out.contains("0 unpacked"), "{out}");
    assert_eq!(layers_state(&t.store()), before);
    // Container a's writes are in its own upper dir, until it is removed.
    let bundle = t.store().join("bundles").join(&a);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/newfile")).unwrap(),
        "new\n"
    );
    ok(&t.berth(&["delete", &a]));
    ok(&t.image(&["umount", bundle.to_str().unwrap()]));
    std::fs::remove_dir_all(&bundle).unwrap();
}

#[test]
fn docker_and_oci_archives() {
    let t = T::new("archives");
    let out = import(&t, "busybox-docker.tar", &[]);
    assert!(out.starts_with("busybox-docker:1 "), "{out}");
    let out = import(&t, "busybox-oci.tar", &["--name", "bb:arch"]);
    assert!(
        out.starts_with("bb:arch:latest") || out.starts_with("bb:arch "),
        "{out}"
    );
    assert_eq!(
        ok(&t.image(&["run", "--rm", "busybox-docker:1", "echo", "docker"])),
        "docker\n"
    );
    assert_eq!(
        ok(&t.image(&["run", "--rm", "bb:arch", "echo", "oci"])),
        "oci\n"
    );
}

#[test]
fn bundle_runs_under_the_runtime_and_labels_become_annotations() {
    let t = T::new("bundle");
    import(&t, "busybox", &[]);
    let b = t.dir.join("imgbundle");
    ok(&t.image(&["bundle", "busybox", b.to_str().unwrap()]));
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["annotations"]["org.example.fixture"], "busybox");
    assert_eq!(c["process"]["args"], serde_json::json!(["sh"]));
    let mut c = c;
    c["process"]["args"] = serde_json::json!(["cat", "/etc/hostname"]);
    c["process"]["terminal"] = serde_json::json!(false);
    c["linux"]["cgroupsPath"] = serde_json::json!(format!("/berth-test/{}/b", t.token));
    std::fs::write(b.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    std::fs::write(b.join("rootfs/etc/hostname"), "in-upper\n").unwrap();
    let o = t.berth(&["run", "-b", b.to_str().unwrap(), &t.id("b")]);
    assert_eq!(ok(&o), "in-upper\n");
    ok(&t.image(&["umount", b.to_str().unwrap()]));
}

#[test]
fn ls_inspect_rm_prune() {
    let t = T::new("prune");
    import(&t, "busybox", &[]);
    import(&t, "multi", &["--name", "multi"]);
    let ls = ok(&t.image(&["ls"]));
    assert!(
        ls.contains("busybox:latest") && ls.contains("multi:latest"),
        "{ls}"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&t.image(&["inspect", "multi"]))).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 3);
    assert!(v["layers"][1]["mediaType"]
        .as_str()
        .unwrap()
        .ends_with("zstd"));
    assert!(v["layers"][0]["size"].as_u64().unwrap() > 0);
    assert_eq!(
        v["config"]["rootfs"]["diff_ids"].as_array().unwrap().len(),
        3
    );
    // A mounted image's layers survive rm + prune until it is unmounted.
    let mnt = t.dir.join("mnt");
    ok(&t.image(&["mount", "multi", mnt.to_str().unwrap()]));
    ok(&t.image(&["rm", "multi"]));
    assert!(!ok(&t.image(&["ls"])).contains("multi"));
    assert_eq!(ok(&t.image(&["prune"])), "removed 0 layers, 5 blobs\n");
    assert_eq!(
        std::fs::read_to_string(mnt.join("changed")).unwrap(),
        "v2 changed\n"
    );
    ok(&t.image(&["umount", mnt.to_str().unwrap()]));
    assert_eq!(ok(&t.image(&["prune"])), "removed 3 layers, 0 blobs\n");
    assert_eq!(
        std::fs::read_dir(t.store().join("layers")).unwrap().count(),
        1
    );
    let o = t.image(&["inspect", "multi"]);
    t.expect_error(&o, "image \"multi\" not found");
}

#[test]
fn bad_images_fail_cleanly() {
    let t = T::new("badimg");
    let imgs = images();
    // A corrupt blob: one byte flipped in a copy of the busybox layout.
    let corrupt = t.dir.join("corrupt");
    assert!(std::process::Command::new("cp")
        .arg("-a")
        .arg(imgs.join("busybox"))
        .arg(&corrupt)
        .status()
        .unwrap()
        .success());
    let blobs = corrupt.join("blobs/sha256");
    let biggest = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut data = std::fs::read(&biggest).unwrap();
    data[1000] ^= 0xff;
    std::fs::write(&biggest, data).unwrap();
    let escape = imgs.join("escape-target");
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (corrupt, "digest mismatch for layer"),
        (imgs.join("bad-truncated"), "layer tar"),
        (imgs.join("bad-missing"), "manifest names missing blob"),
        (
            imgs.join("bad-mediatype"),
            "unknown media type \"application/vnd.example.unknown\"",
        ),
        (imgs.join("bad-diffid"), "(diff_id)"),
        (
            imgs.join("bad-dotdot"),
            "\"../../escape-dotdot\": contains '..'",
        ),
        (
            imgs.join("bad-symlink-parent"),
            "\"link/evil\": a parent directory is a symlink",
        ),
        (
            imgs.join("bad-hardlink"),
            "hardlink target ../../../../etc/passwd is outside the layer",
        ),
    ];
    for (path, needle) in cases {
        let o = t.image(&["import", path.to_str().unwrap(), "--name", "bad"]);
        t.expect_error(&o, needle);
        for d in ["layers", "tmp", "images"] {
            let left: Vec<_> = std::fs::read_dir(t.store().join(d))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "{}: left {left:?}", path.display());
        }
        let blobs = std::fs::read_dir(t.store().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 0, "{}: blobs left", path.display());
    }
    assert!(!escape.exists() && !escape.join("evil").exists());
    for d in [t.store(), t.dir.clone(), imgs.clone()] {
        assert!(
            !d.join("escape-dotdot").exists()
                && !d.parent().unwrap().join("escape-dotdot").exists()
        );
    }
    // Absolute names are confined to the layer; aufs markers never appear.
    import(&t, "abs-and-markers", &["--name", "abs"]);
    let flat = t.dir.join("flat");
    ok(&t.image(&["unpack", "abs", flat.to_str().unwrap()]));
    let tr = tree(&flat);
    assert!(tr.contains_key("abs-file"));
    assert!(!tr.keys().any(|k| k.contains(".wh.")), "{tr:?}");
    // Unknown image, bad flags.
    t.expect_error(
        &t.image(&["run", "nope", "true"]),
        "image \"nope\" not found",
    );
    t.expect_error(
        &t.image(&["run", "--memory", "lots", "abs", "true"]),
        "invalid size",
    );
    t.expect_error(
        &t.image(&["import", "/nonexistent.tar"]),
        "/nonexistent.tar",
    );
}

#[test]
fn hundred_layers_mount() {
    let t = T::new("many");
    let out = import(&t, "many", &["--name", "many"]);
    assert!(out.contains("(100 layers, 100 unpacked)"), "{out}");
    let mnt = t.dir.join("mnt");
    ok(&t.image(&["mount", "many", mnt.to_str().unwrap()]));
    let n = std::fs::read_dir(&mnt).unwrap().count();
    let last = std::fs::read_to_string(mnt.join("f099"));
    ok(&t.image(&["umount", mnt.to_str().unwrap()]));
    assert_eq!(n, 100);
    assert_eq!(last.unwrap(), "99\n");
}

#[test]
fn image_run_with_a_terminal() {
    let t = T::new("imgtty");
    import(&t, "busybox", &[]);
    let store = t.store();
    let (out, code, _) = t.on_pty(
        &[
            "image",
            "--store",
            store.to_str().unwrap(),
            "run",
            "--rm",
            "-t",
            "-i",
            "busybox",
            "sh",
            "-c",
            "tty; echo $TERM; read x; echo got:$x",
        ],
        b"typed\r",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("/dev/pts/0") && out.contains("xterm") && out.contains("got:typed"),
        "{out}"
    );
}

#[test]
fn multi_platform_index_picks_the_host_platform() {
    let t = T::new("multiarch");
    let out = import(&t, "multiarch", &["--name", "ma"]);
    assert!(out.contains("(1 layers, 1 unpacked)"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&ok(&t.image(&["inspect", "ma"]))).unwrap();
    assert_eq!(v["config"]["architecture"], "amd64");
    // The amd64 image is busybox: it runs; the arm64 one has only /arm-only.
    assert_eq!(
        ok(&t.image(&["run", "--rm", "ma", "echo", "picked"])),
        "picked\n"
    );
}
