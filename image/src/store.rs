//! The content-addressed store (default `/var/lib/berth`):
//!
//! ```text
//! blobs/sha256/<hex>       blobs as imported, verified against their digest
//! layers/<chain-id hex>/   one unpacked layer in overlayfs form
//! images/<name>.json       name -> manifest, config and layers
//! mounts/<id>/             upper/ and work/ of one overlay rootfs + mount.json
//! tmp/                     in-flight imports and unpacks (renamed into place)
//! ```
//!
//! Blobs and layers are written under a temporary name and renamed into
//! place when complete, so a crash never leaves one that looks complete.

use crate::digest::{Digest, HashReader};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRec {
    pub digest: String,
    #[serde(rename = "diffID")]
    pub diff_id: String,
    #[serde(rename = "chainID")]
    pub chain_id: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRec {
    pub name: String,
    /// Digest of the manifest.
    pub digest: String,
    pub config: String,
    pub layers: Vec<LayerRec>,
}

/// `busybox` means `busybox:latest`.
pub fn normalize_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn file_name(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `STORE/bundles`: the bundles of `image run`, one per container ID.
pub const BUNDLES: &str = "bundles";

pub struct Store {
    pub root: PathBuf,
    /// A rootless store, used as root of a user namespace that maps the
    /// user's subordinate ids (docs/rootless.md): overlay metadata in
    /// `user.overlay.*` and overlay mounts with `userxattr`; no device
    /// nodes in layers. Marked by a `rootless` file at its root, so that
    /// the two kinds are never mixed.
    pub rootless: bool,
}

impl Store {
    /// Opens (creating) the store at `root` for a root user.
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_as(root, false)
    }

    /// Opens (creating) the store at `root`, `rootless` or not; a store
    /// made the other way is refused.
    pub fn open_as(root: &Path, rootless: bool) -> Result<Store> {
        let fresh = !root.join("images").exists();
        for d in ["blobs/sha256", "layers", "images", "mounts", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p)
                .map_err(|e| Error::io("cannot create store directory", &p, e))?;
        }
        let mark = root.join("rootless");
        if fresh && rootless {
            std::fs::write(&mark, b"user.overlay xattrs, subordinate ids\n")
                .map_err(|e| Error::io("cannot write", &mark, e))?;
        }
        if mark.exists() != rootless {
            return Err(Error::Format(format!(
                "store {}: made {} and opened {}; a rootless store and a root one cannot be shared",
                root.display(),
                if mark.exists() { "rootless" } else { "by root" },
                if rootless { "rootless" } else { "by root" }
            )));
        }
        let root = std::fs::canonicalize(root).map_err(|e| Error::io("store", root, e))?;
        Ok(Store { root, rootless })
    }

    /// An exclusive lock on the store for import, rm and prune.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<File>> {
        let p = self.root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io("cannot open", &p, e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys("lock store", e))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// The bundle of `image run`'s container `id`.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.root.join(BUNDLES).join(id)
    }

    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex())
    }

    /// A fresh temporary path in the store.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Streams `r` into the store, verifying it against `want` (nothing is
    /// stored on a mismatch). Returns the size.
    pub fn put_blob(&self, r: impl Read, want: &Digest, what: &str) -> Result<u64> {
        let dest = self.blob_path(want);
        if dest.exists() {
            let mut r = r;
            std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| Error::io("read", what, e))?;
            return Ok(std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0));
        }
        let (got, n, tmp) = self.write_tmp(r, what)?;
        if &got != want {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Digest {
                what: what.into(),
                expected: want.to_string(),
                got: got.to_string(),
            });
        }
        std::fs::rename(&tmp, &dest).map_err(|e| Error::io("cannot store blob", &dest, e))?;
        Ok(n)
    }

    /// Streams `r` into the store under the digest it hashes to.
    pub fn put_blob_any(&self, r: impl Read, what: &str) -> Result<(Digest, u64)> {
        let (got, n, tmp) = self.write_tmp(r, what)?;
        let dest = self.blob_path(&got);
        std::fs::rename(&tmp, &dest).map_err(|e| Error::io("cannot store blob", &dest, e))?;
        Ok((got, n))
    }

    fn write_tmp(&self, r: impl Read, what: &str) -> Result<(Digest, u64, PathBuf)> {
        let tmp = self.tmp_path("blob");
        let res = (|| {
            let mut f = File::create(&tmp)?;
            let mut h = HashReader::new(r);
            std::io::copy(&mut h, &mut f)?;
            h.finish()
        })();
        match res {
            Ok((d, n)) => Ok((d, n, tmp)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(Error::io("cannot read", what, e))
            }
        }
    }

    /// A stored blob, read whole and verified (manifests, configs).
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let mut r = HashReader::new(File::open(&p).map_err(|e| Error::io("missing blob", &p, e))?);
        let mut v = Vec::new();
        r.read_to_end(&mut v)
            .map_err(|e| Error::io("cannot read", &p, e))?;
        r.verify(&format!("blob {d}"), d)?;
        Ok(v)
    }

    pub fn save_image(&self, rec: &ImageRec) -> Result<()> {
        let p = self
            .root
            .join("images")
            .join(format!("{}.json", file_name(&rec.name)));
        crate::fsutil::write_json(&p, &self.tmp_path("image"), rec)
    }

    pub fn images(&self) -> Result<Vec<ImageRec>> {
        let dir = self.root.join("images");
        let mut v = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| Error::io("cannot list", &dir, e))?
            .flatten()
        {
            if let Ok(data) = std::fs::read(e.path()) {
                if let Ok(rec) = serde_json::from_slice::<ImageRec>(&data) {
                    v.push(rec);
                }
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Finds an image by name (`busybox`, `busybox:1`) or digest prefix.
    pub fn image(&self, name: &str) -> Result<ImageRec> {
        let full = normalize_name(name);
        // Its own file first: one read, not the whole list.
        let own = self
            .root
            .join("images")
            .join(format!("{}.json", file_name(&full)));
        if let Some(rec) = std::fs::read(own)
            .ok()
            .and_then(|d| serde_json::from_slice::<ImageRec>(&d).ok())
            .filter(|r| r.name == full)
        {
            return Ok(rec);
        }
        let all = self.images()?;
        if let Some(i) = all.iter().find(|i| i.name == full) {
            return Ok(i.clone());
        }
        // A pulled image is filed under its full reference
        // (docker.io/library/busybox:latest for `busybox`).
        if let Ok(r) = crate::reference::Reference::parse(name, &[]) {
            let full = r.name();
            if let Some(i) = all.iter().find(|i| i.name == full) {
                return Ok(i.clone());
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 6 {
            let hits: Vec<_> = all
                .iter()
                .filter(|i| i.digest[7..].starts_with(hex))
                .collect();
            if hits.len() == 1 {
                return Ok(hits[0].clone());
            }
        }
        Err(Error::NoImage(name.to_string()))
    }

    pub fn remove_image(&self, name: &str) -> Result<ImageRec> {
        let rec = self.image(name)?;
        let p = self
            .root
            .join("images")
            .join(format!("{}.json", file_name(&rec.name)));
        std::fs::remove_file(&p).map_err(|e| Error::io("cannot remove", &p, e))?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize_name("busybox"), "busybox:latest");
        assert_eq!(normalize_name("busybox:1"), "busybox:1");
        assert_eq!(
            normalize_name("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(file_name("a/b:c"), "a%2Fb%3Ac");
    }
}
