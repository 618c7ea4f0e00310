//! Unpacking a layer tar stream into a directory in overlayfs form
//! (layer.md "Whiteouts", overlayfs' own format):
//!
//! - `.wh.NAME` becomes a 0/0 character device `NAME`;
//! - `.wh..wh..opq` becomes `trusted.overlay.opaque=y` on its directory. In
//!   overlay form this holds whatever the tar order: the layer's own entries
//!   in that directory stay, everything below it is hidden;
//! - other `.wh..wh.*` markers (aufs metadata) are never written.
//!
//! Safety: the tar crate only parses; every file is created by berth
//! relative to a directory fd. Parent directories are opened with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so an entry can never be written
//! through a symlink or outside the layer directory; `..` is refused, a
//! leading `/` is dropped (confined), and hardlink targets must resolve
//! inside the layer the same way. Tar-supplied `trusted.overlay.*` and
//! `user.overlay.*` xattrs are dropped: they would be overlay metadata.

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::fsutil::{
    create_new, is_overlay_xattr, remove_any, remove_tree, set_meta_at, set_xattr,
};
use crate::progress::{Counted, Progress};
use crate::store::{LayerRec, Store};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{makedev, mkdirat, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat, Gid, Uid};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

const OPAQUE: &str = ".wh..wh..opq";
const WH_PREFIX: &str = ".wh.";

fn beneath(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    )
}

/// Splits an entry name into clean components: `.` and a leading `/` are
/// dropped, `..` is refused.
pub fn clean(raw: &Path) -> Result<Vec<OsString>> {
    let mut v = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(s) => v.push(s.to_os_string()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(Error::entry(raw.display(), "contains '..'")),
        }
    }
    Ok(v)
}

fn rel(parts: &[OsString]) -> PathBuf {
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

/// Opens (creating missing ones, mode 0755) the directory `parts` below
/// `root`, never through a symlink.
fn open_dir(root: BorrowedFd, parts: &[OsString], create: bool, entry: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let explain = |e: Errno| match e {
        Errno::ELOOP | Errno::EXDEV => {
            Error::entry(entry.display(), "a parent directory is a symlink")
        }
        Errno::ENOTDIR => Error::entry(entry.display(), "a parent is not a directory"),
        e => Error::entry(entry.display(), format!("parent directory: {e}")),
    };
    match openat2(root, &rel(parts), beneath(flags)) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) if create => {}
        Err(e) => return Err(explain(e)),
    }
    let mut cur = openat2(root, ".", beneath(flags)).map_err(explain)?;
    for p in parts {
        match mkdirat(&cur, p.as_os_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(explain(e)),
        }
        cur = openat2(&cur, p.as_os_str(), beneath(flags)).map_err(explain)?;
    }
    Ok(cur)
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn times(mtime: i64) -> [TimeSpec; 2] {
    let t = TimeSpec::new(mtime, 0);
    [t, t]
}

fn apply_meta(fd: BorrowedFd, m: &Meta, what: &Path, set_time: bool) -> Result<()> {
    let e = |op: &str, err: Errno| Error::entry(what.display(), format!("{op}: {err}"));
    nix::unistd::fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
        .map_err(|x| e("chown", x))?;
    // After chown, which clears setuid/setgid bits.
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(m.mode & 0o7777))
        .map_err(|x| e("chmod", x))?;
    for (k, v) in &m.xattrs {
        set_xattr(fd, k, v).map_err(|x| e(&xattr_op(k, x), x))?;
    }
    if set_time {
        let [a, b] = times(m.mtime);
        nix::sys::stat::futimens(fd, &a, &b).map_err(|x| e("utimes", x))?;
    }
    Ok(())
}

/// How a failed write of xattr `name` is described: EOPNOTSUPP means the
/// store's filesystem (tmpfs before Linux 6.6 for `user.*`) cannot hold it.
fn xattr_op(name: &str, err: Errno) -> String {
    match err {
        Errno::EOPNOTSUPP => format!("xattr {name}: the store's filesystem cannot hold it"),
        _ => format!("xattr {name}"),
    }
}

/// Unpacks the tar stream `r` into the directory `dest` (overlay form).
pub fn unpack_tar(r: impl Read, dest: &Path) -> Result<()> {
    unpack_tar_in(r, dest, false)
}

/// The overlay xattr that marks a directory opaque: `trusted.*` as root;
/// in a rootless store `user.*` (overlayfs' `userxattr`), as a user
/// namespace cannot write `trusted.*`.
pub(crate) fn opaque_xattr(rootless: bool) -> &'static str {
    if rootless {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// [`unpack_tar`] for a store that is `rootless` (run as root of a user
/// namespace, see Store::rootless): the opaque marker is `user.*`, and
/// device nodes, which no user namespace may create, are left out (as
/// podman and docker leave them out there); whiteouts (0/0) it may create.
pub(crate) fn unpack_tar_in(r: impl Read, dest: &Path, rootless: bool) -> Result<()> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", dest.display()), e))?;
    let mut ar = tar::Archive::new(r);
    let mut dir_times: Vec<(Vec<OsString>, i64)> = Vec::new();
    let mut cache: Option<(Vec<OsString>, OwnedFd)> = None;
    let bad = |e: std::io::Error| Error::Format(format!("layer tar: {e}"));
    for entry in ar.entries().map_err(bad)? {
        let mut e = entry.map_err(bad)?;
        let raw = e.path().map_err(bad)?.into_owned();
        let mut parts = clean(&raw)?;
        let Some(name) = parts.pop() else { continue };
        let name_s = name.to_string_lossy().into_owned();
        let hdr = e.header().clone();
        let kind = hdr.entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let mut m = Meta {
            uid: hdr.uid().unwrap_or(0) as u32,
            gid: hdr.gid().unwrap_or(0) as u32,
            mode: hdr.mode().unwrap_or(0o644),
            mtime: hdr.mtime().unwrap_or(0) as i64,
            xattrs: Vec::new(),
        };
        if let Ok(Some(pax)) = e.pax_extensions() {
            for ext in pax.flatten() {
                let Ok(k) = ext.key() else { continue };
                let num = || {
                    ext.value()
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
                };
                match k {
                    "uid" => m.uid = num().map_or(m.uid, |v| v as u32),
                    "gid" => m.gid = num().map_or(m.gid, |v| v as u32),
                    "mtime" => m.mtime = num().map_or(m.mtime, |v| v as i64),
                    _ => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            if !is_overlay_xattr(x) {
                                m.xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                            }
                        }
                    }
                }
            }
        }
        let pfd = match &cache {
            Some((p, fd)) if *p == parts => {
                fd.try_clone().map_err(|x| Error::io("dup", dest, x))?
            }
            _ => {
                let fd = open_dir(root.as_fd(), &parts, true, &raw)?;
                cache = Some((
                    parts.clone(),
                    fd.try_clone().map_err(|x| Error::io("dup", dest, x))?,
                ));
                fd
            }
        };
        let pfd = pfd.as_fd();
        let sys = |op: &str| {
            let raw = raw.clone();
            let op = op.to_string();
            move |err: Errno| Error::entry(raw.display(), format!("{op}: {err}"))
        };

        if name_s.starts_with(WH_PREFIX) {
            if name_s == OPAQUE {
                let k = opaque_xattr(rootless);
                set_xattr(pfd, k, b"y").map_err(|x| sys(&xattr_op(k, x))(x))?;
            } else if let Some(target) = name_s
                .strip_prefix(WH_PREFIX)
                .filter(|t| !t.starts_with(WH_PREFIX))
            {
                if target.is_empty() || target == "." || target == ".." || target.contains('/') {
                    return Err(Error::entry(raw.display(), "bad whiteout name"));
                }
                remove_any(pfd, OsStr::new(target)).map_err(sys("remove"))?;
                mknodat(pfd, target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                    .map_err(sys("whiteout"))?;
            }
            // Other .wh..wh.* markers (aufs metadata) are never written.
            continue;
        }

        match kind {
            tar::EntryType::Directory => {
                match mkdirat(pfd, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        let st = nix::sys::stat::fstatat(
                            pfd,
                            name.as_os_str(),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(sys("stat"))?;
                        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                            remove_any(pfd, &name).map_err(sys("remove"))?;
                            mkdirat(pfd, name.as_os_str(), Mode::from_bits_truncate(0o700))
                                .map_err(sys("mkdir"))?;
                        }
                    }
                    Err(x) => return Err(sys("mkdir")(x)),
                }
                let dfd = openat(
                    pfd,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys("open dir"))?;
                apply_meta(dfd.as_fd(), &m, &raw, false)?;
                parts.push(name);
                dir_times.push((parts, m.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_any(pfd, &name).map_err(sys("remove"))?;
                let mut f = create_new(pfd, &name).map_err(sys("create"))?;
                std::io::copy(&mut e, &mut f)
                    .map_err(|x| Error::entry(raw.display(), format!("write: {x}")))?;
                apply_meta(f.as_fd(), &m, &raw, true)?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::entry(raw.display(), "symlink without target"))?;
                remove_any(pfd, &name).map_err(sys("remove"))?;
                symlinkat(target.as_ref(), pfd, name.as_os_str()).map_err(sys("symlink"))?;
                set_meta_at(pfd, &name, m.uid, m.gid, None, times(m.mtime))
                    .map_err(sys("metadata"))?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::entry(raw.display(), "hardlink without target"))?;
                let mut tparts = clean(&target).map_err(|_| {
                    Error::entry(
                        raw.display(),
                        format!("hardlink target {} is outside the layer", target.display()),
                    )
                })?;
                let tname = tparts
                    .pop()
                    .ok_or_else(|| Error::entry(raw.display(), "empty hardlink target"))?;
                let tdir = open_dir(root.as_fd(), &tparts, false, &raw).map_err(|_| {
                    Error::entry(
                        raw.display(),
                        format!("hardlink target {} is not in the layer", target.display()),
                    )
                })?;
                if tparts == parts && tname == name {
                    continue;
                }
                remove_any(pfd, &name).map_err(sys("remove"))?;
                linkat(
                    &tdir,
                    tname.as_os_str(),
                    pfd,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|x| {
                    Error::entry(
                        raw.display(),
                        format!(
                            "hardlink target {} is not in the layer: {x}",
                            target.display()
                        ),
                    )
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block if rootless => {}
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let k = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = makedev(
                    hdr.device_major().ok().flatten().unwrap_or(0) as u64,
                    hdr.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                remove_any(pfd, &name).map_err(sys("remove"))?;
                mknodat(
                    pfd,
                    name.as_os_str(),
                    k,
                    Mode::from_bits_truncate(m.mode & 0o7777),
                    dev,
                )
                .map_err(sys("mknod"))?;
                set_meta_at(pfd, &name, m.uid, m.gid, Some(m.mode), times(m.mtime))
                    .map_err(sys("metadata"))?;
            }
            other => {
                return Err(Error::entry(
                    raw.display(),
                    format!("unsupported entry type {other:?}"),
                ))
            }
        }
    }
    // Directory times last: creating entries inside changed them.
    for (parts, mtime) in dir_times.iter().rev() {
        if let Ok(fd) = openat2(
            root.as_fd(),
            &rel(parts),
            beneath(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
        ) {
            let [a, b] = times(*mtime);
            let _ = nix::sys::stat::futimens(fd.as_fd(), &a, &b);
        }
    }
    Ok(())
}

/// The decompressor for a layer media type (media-types.md; Docker's too).
fn decoder<'a, R: Read + 'a>(media_type: &str, r: R) -> Result<Box<dyn Read + 'a>> {
    let mt = media_type;
    Ok(
        if mt.ends_with("tar+gzip")
            || mt.ends_with(".tar.gzip")
            || mt == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        {
            Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(1 << 16, r),
            ))
        } else if mt.ends_with("tar+zstd") {
            Box::new(
                zstd::stream::read::Decoder::new(r)
                    .map_err(|e| Error::Format(format!("zstd: {e}")))?,
            )
        } else if mt.ends_with(".tar") || mt == "application/vnd.docker.image.rootfs.diff.tar" {
            Box::new(r)
        } else {
            return Err(Error::Format(format!("unknown layer media type {mt:?}")));
        },
    )
}

/// Whether a media type is a layer berth can unpack.
pub fn known_layer_type(mt: &str) -> bool {
    decoder(mt, std::io::empty()).is_ok()
}

/// Unpacks the layer blob `r` (compressed as `l.media_type` says) into the
/// fresh directory `dest`, checking the blob against `l.digest` and the
/// tar stream against `l.diff_id` in the same pass. Import unpacks from
/// the store's blob; pull straight from the registry's stream.
pub fn unpack_verified(r: impl Read, l: &LayerRec, dest: &Path, rootless: bool) -> Result<()> {
    let digest = Digest::parse(&l.digest)?;
    let diff_id = Digest::parse(&l.diff_id)?;
    let (mut bh, mut dh) = (Hasher::default(), Hasher::default());
    let mut blob_r = bh.reader(r);
    {
        let dec = decoder(&l.media_type, &mut blob_r)?;
        let mut tar_r = dh.reader(dec);
        unpack_tar_in(&mut tar_r, dest, rootless).map_err(|e| match e {
            Error::Format(m) => Error::Format(format!("layer {digest}: {m}")),
            e => e,
        })?;
        std::io::copy(&mut tar_r, &mut std::io::sink())
            .map_err(|e| Error::Format(format!("layer {digest}: {e}")))?;
    }
    std::io::copy(&mut blob_r, &mut std::io::sink())
        .map_err(|e| Error::Format(format!("layer {digest}: {e}")))?;
    drop(blob_r);
    bh.verify(&format!("layer blob {digest}"), &digest)?;
    dh.verify(&format!("uncompressed layer {digest} (diff_id)"), &diff_id)?;
    Ok(())
}

/// Unpacks one layer blob into `layers/<chain id>` unless it is there
/// already: into a temporary directory, verifying the blob digest and the
/// diff ID in the same pass, then renamed into place. Returns whether it
/// unpacked anything.
pub fn ensure_layer(store: &Store, l: &LayerRec, progress: &dyn Progress) -> Result<bool> {
    let chain = Digest::parse(&l.chain_id)?;
    let dest = store.layer_dir(&chain);
    if dest.exists() {
        progress.inc(l.size);
        return Ok(false);
    }
    let digest = Digest::parse(&l.digest)?;
    let blob = store.blob_path(&digest);
    let file = File::open(&blob).map_err(|e| Error::io("missing layer blob", &blob, e))?;
    let tmp = store.tmp_path("layer");
    std::fs::create_dir(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
    let r = Counted::new(std::io::BufReader::with_capacity(1 << 20, file), progress);
    let res = unpack_verified(r, l, &tmp, store.rootless);
    let done = res.and_then(|_| match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(true),
        // Another berth unpacked it meanwhile.
        Err(_) if dest.exists() => Ok(false),
        Err(e) => Err(Error::io("cannot rename layer into", &dest, e)),
    });
    if !matches!(done, Ok(true)) {
        remove_tree(&tmp);
    }
    done
}

/// Unpacks every missing layer of an image, in parallel. Returns how many
/// were unpacked (0 when all were there).
pub fn ensure_layers(store: &Store, layers: &[LayerRec], progress: &dyn Progress) -> Result<usize> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    count_parallel(layers, workers, "unpack", |l| {
        ensure_layer(store, l, progress)
    })
}

/// Runs `f` on every layer with up to `workers` threads, each taking the
/// next layer when it is done with one. Returns how many calls answered
/// true, or the first error (the other threads finish their layer).
pub(crate) fn count_parallel(
    layers: &[LayerRec],
    workers: usize,
    what: &str,
    f: impl Fn(&LayerRec) -> Result<bool> + Sync,
) -> Result<usize> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = workers.clamp(1, layers.len().max(1));
    let results: Vec<Result<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(l) = layers.get(i) else { return Ok(n) };
                        if f(l)? {
                            n += 1;
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Other(format!("{what} thread panicked"))))
            })
            .collect()
    });
    results.into_iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            // set_path refuses '..'; write the raw name like a hostile tar would.
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-unpack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("layer")).unwrap();
        d
    }

    #[test]
    fn refuses_escapes() {
        use tar::EntryType as E;
        let d = scratch("esc");
        let layer = d.join("layer");
        let e = unpack_tar(&tar_of(&[("../x", E::Regular, b"x", None)])[..], &layer).unwrap_err();
        assert!(e.to_string().contains("'..'"), "{e}");
        // A symlink in the layer used as a parent.
        std::os::unix::fs::symlink(&d, layer.join("link")).unwrap();
        let e = unpack_tar(
            &tar_of(&[("link/evil", E::Regular, b"x", None)])[..],
            &layer,
        )
        .unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(!d.join("evil").exists());
        // A hardlink to something outside.
        let e = unpack_tar(
            &tar_of(&[("h", E::Link, b"", Some("../../etc/passwd"))])[..],
            &layer,
        )
        .unwrap_err();
        assert!(e.to_string().contains("outside the layer"), "{e}");
        let e =
            unpack_tar(&tar_of(&[("h", E::Link, b"", Some("link/x"))])[..], &layer).unwrap_err();
        assert!(e.to_string().contains("not in the layer"), "{e}");
        // Absolute names are confined.
        unpack_tar(&tar_of(&[("/abs", E::Regular, b"x", None)])[..], &layer).unwrap();
        assert!(layer.join("abs").is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn whiteouts_in_overlay_form() {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        use tar::EntryType as E;
        let d = scratch("wh");
        let layer = d.join("layer");
        let t = tar_of(&[
            ("dir/keep", E::Regular, b"k", None),
            ("dir/.wh..wh..opq", E::Regular, b"", None),
            (".wh.gone", E::Regular, b"", None),
            ("x/.wh..wh.plnk", E::Regular, b"", None),
        ]);
        unpack_tar(&t[..], &layer).unwrap();
        let m = std::fs::symlink_metadata(layer.join("gone")).unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == 0);
        assert!(layer.join("dir/keep").is_file());
        assert!(!layer.join("dir/.wh..wh..opq").exists());
        assert!(!layer.join("x/.wh..wh.plnk").exists());
        let mut buf = [0u8; 4];
        let path = CString::new(layer.join("dir").as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings and a live buffer of the length given.
        let n = unsafe {
            libc::getxattr(
                path.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(&buf[..n as usize], b"y");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
