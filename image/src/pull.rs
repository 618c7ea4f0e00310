//! `berth image pull`: an image from a registry into the store.
//!
//! The manifest (or the index, and then this host's platform's manifest,
//! chosen as `import` chooses) and the config are fetched whole and
//! verified; each layer is downloaded and unpacked in the same pass, in
//! parallel: the unpacker reads the decompressed stream as the bytes
//! arrive, so a layer costs about max(download, unpack). Every byte is
//! hashed while it streams (blob digest and diff ID); the blob is written
//! beside, to `tmp/pull-HEX.partial`, and renamed into `blobs/` only once
//! verified, as the layer directory into `layers/`. A broken download is
//! resumed from the partial file with `Range` (within the pull, and by the
//! next pull); a layer already in the store is not downloaded again.
//! Anything else that fails removes what this pull added.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil::remove_tree;
use crate::manifest::{self, json_of, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::registry::{Options, Registry};
use crate::store::{ImageRec, LayerRec, Store};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Manifests, indexes and configs larger than this are refused.
const DOCUMENT_LIMIT: u64 = 4 << 20;
const ACCEPT: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// What a pull did.
pub struct Pulled {
    pub image: ImageRec,
    /// Layers downloaded (0 when the store had them all).
    pub downloaded: usize,
}

/// What a pull added, removed again if it fails.
#[derive(Default)]
struct Added {
    blobs: Vec<PathBuf>,
    layers: Vec<PathBuf>,
}

/// Fetches `path` whole, verified against `want` when given (else its
/// own digest is computed). Returns (bytes, media type, digest).
fn document(
    reg: &Registry,
    path: &str,
    want: Option<&Digest>,
    what: &str,
) -> Result<(Vec<u8>, String, Digest)> {
    let (data, mt, header) = reg.document(path, ACCEPT, DOCUMENT_LIMIT, what)?;
    let got = Digest::of(&data);
    if let Some(w) = want {
        if &got != w {
            return Err(Error::Digest {
                what: what.into(),
                expected: w.to_string(),
                got: got.to_string(),
            });
        }
    } else if let Some(h) = header.filter(|h| h.starts_with("sha256:")) {
        if h != got.as_str() {
            return Err(Error::Digest {
                what: format!("{what} (Docker-Content-Digest)"),
                expected: h,
                got: got.to_string(),
            });
        }
    }
    Ok((data, mt, got))
}

/// A reader over the registry's stream that appends what it reads to the
/// partial file, and notes a broken connection (which may be resumed).
struct Tee<'a> {
    inner: Box<dyn Read + Send>,
    out: File,
    broken: Arc<AtomicBool>,
    progress: &'a dyn Progress,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.broken.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.out.write_all(&buf[..n])?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// Downloads and unpacks one layer (if the store lacks it). Returns
/// whether it downloaded anything.
fn fetch_layer(
    reg: &Registry,
    store: &Store,
    l: &LayerRec,
    progress: &dyn Progress,
    added: &std::sync::Mutex<Added>,
) -> Result<bool> {
    let chain = Digest::parse(&l.chain_id)?;
    let digest = Digest::parse(&l.digest)?;
    let dest = store.layer_dir(&chain);
    if dest.exists() {
        return Ok(false);
    }
    let bar = progress.layer(&digest.hex()[..12], l.size);
    if store.blob_path(&digest).exists() {
        // Downloaded before: only unpack.
        crate::unpack::ensure_layer(store, l, bar.as_ref())?;
        added.lock().expect("not poisoned").layers.push(dest);
        return Ok(false);
    }
    let partial = store
        .root
        .join("tmp")
        .join(format!("pull-{}.partial", digest.hex()));
    let what = format!("layer {digest}");
    let mut tries = 0;
    loop {
        let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let resp = reg.get(&format!("blobs/{digest}"), &[], have)?;
        reg.check(resp.status, &what)?;
        // A registry that ignores Range sends it all again.
        let have = if resp.status == 200 { 0 } else { have };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(have > 0)
            .write(true)
            .truncate(have == 0)
            .open(&partial)
            .map_err(|e| Error::io("cannot write", &partial, e))?;
        bar.set_position(have);
        let earlier: Box<dyn Read> = if have > 0 {
            Box::new(
                File::open(&partial)
                    .map_err(|e| Error::io("cannot read", &partial, e))?
                    .take(have),
            )
        } else {
            Box::new(std::io::empty())
        };
        let broken = Arc::new(AtomicBool::new(false));
        let net = Tee {
            inner: resp.body,
            out,
            broken: broken.clone(),
            progress: bar.as_ref(),
        };
        let tmp = store.tmp_path("layer");
        std::fs::create_dir(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
        let r = std::io::BufReader::with_capacity(1 << 20, earlier.chain(net));
        match crate::unpack::unpack_verified(r, l, &tmp, store.rootless) {
            Ok(()) => {
                let blob = store.blob_path(&digest);
                std::fs::rename(&partial, &blob)
                    .map_err(|e| Error::io("cannot store blob", &blob, e))?;
                let moved = match std::fs::rename(&tmp, &dest) {
                    Ok(()) => true,
                    // Another berth unpacked it meanwhile.
                    Err(_) if dest.exists() => false,
                    Err(e) => {
                        remove_tree(&tmp);
                        return Err(Error::io("cannot rename layer into", &dest, e));
                    }
                };
                if !moved {
                    remove_tree(&tmp);
                }
                let mut a = added.lock().expect("not poisoned");
                a.blobs.push(blob);
                a.layers.push(dest);
                bar.finish();
                return Ok(true);
            }
            Err(e) => {
                remove_tree(&tmp);
                if broken.load(Ordering::Relaxed) && tries < 5 {
                    // The partial file keeps what arrived: resume.
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(200 << tries));
                    continue;
                }
                if !broken.load(Ordering::Relaxed) {
                    // Wrong bytes are not worth resuming from.
                    let _ = std::fs::remove_file(&partial);
                }
                return Err(e);
            }
        }
    }
}

/// Pulls `r` into `store`; docker.io images from `mirrors` first (URLs,
/// in order), then from docker.io.
pub fn pull(
    store: &Store,
    r: &Reference,
    o: &Options,
    mirrors: &[String],
    progress: &dyn Progress,
) -> Result<Pulled> {
    let _lock = store.lock()?;
    let name = r.name();
    if r.registry == "docker.io" {
        for m in mirrors {
            let (host, http) = crate::registry::mirror_host(m);
            let mut o = o.clone();
            if http {
                o.insecure.push(host.clone());
            }
            let added = std::sync::Mutex::new(Added::default());
            let via = Reference {
                registry: host,
                ..r.clone()
            };
            match pull_in(store, &via, &o, progress, &added) {
                Ok(mut p) => {
                    p.image.name = name.clone();
                    store.save_image(&p.image)?;
                    return Ok(p);
                }
                // A mirror that fails is passed over.
                Err(_) => rollback(added),
            }
        }
    }
    let added = std::sync::Mutex::new(Added::default());
    let res = pull_in(store, r, o, progress, &added);
    if res.is_err() {
        rollback(added);
    }
    res.map_err(|e| match e {
        Error::Registry(m) | Error::Format(m) => Error::Registry(format!("{name}: {m}")),
        Error::Digest {
            what,
            expected,
            got,
        } => Error::Digest {
            what: format!("{name}: {what}"),
            expected,
            got,
        },
        e => e,
    })
}

fn rollback(added: std::sync::Mutex<Added>) {
    let a = added.into_inner().expect("not poisoned");
    for p in &a.layers {
        remove_tree(p);
    }
    for p in &a.blobs {
        let _ = std::fs::remove_file(p);
    }
}

fn pull_in(
    store: &Store,
    r: &Reference,
    o: &Options,
    progress: &dyn Progress,
    added: &std::sync::Mutex<Added>,
) -> Result<Pulled> {
    let reg = Registry::connect(&r.registry, &r.repository, o)?;
    let (mut data, mut mt, mut digest) = document(
        &reg,
        &format!("manifests/{}", r.reference()),
        r.digest.as_ref(),
        "manifest",
    )?;
    let mut doc = json_of(&data, "manifest")?;
    let kind = |mt: &str, doc: &serde_json::Value| -> String {
        if !mt.is_empty() && mt != "application/json" {
            return mt.split(';').next().unwrap_or(mt).trim().to_string();
        }
        doc["mediaType"].as_str().unwrap_or("").to_string()
    };
    let mut k = kind(&mt, &doc);
    if k == OCI_INDEX
        || k == DOCKER_LIST
        || (doc.get("manifests").is_some() && doc.get("layers").is_none())
    {
        let mut load =
            |d: &Digest| document(&reg, &format!("manifests/{d}"), Some(d), "index").map(|x| x.0);
        let (desc, _) = manifest::pick_manifest(&doc, &mut load)?;
        let d = manifest::digest_of(&desc, "index entry")?;
        (data, mt, digest) = document(&reg, &format!("manifests/{d}"), Some(&d), "manifest")?;
        doc = json_of(&data, "manifest")?;
        k = kind(&mt, &doc);
    }
    if k.contains("distribution.manifest.v1") || doc["schemaVersion"] == 1 {
        return Err(Error::Format(
            "Docker schema 1 manifests are not supported".into(),
        ));
    }
    if doc.get("layers").is_none() || doc.get("config").is_none() {
        return Err(Error::Format(format!(
            "not an image manifest (media type {k:?})"
        )));
    }
    let cdigest = manifest::digest_of(
        manifest::field(&doc, "config", "manifest")?,
        "manifest config",
    )?;
    let (cdata, _, _) = document(
        &reg,
        &format!("blobs/{cdigest}"),
        Some(&cdigest),
        "image config",
    )?;
    let config = json_of(&cdata, "image config")?;
    let layers = manifest::layer_records(&doc, &config)?;
    // The small documents go into the store as they came.
    for (bytes, d) in [(&data, &digest), (&cdata, &cdigest)] {
        let p = store.blob_path(d);
        if !p.exists() {
            store.put_blob(&bytes[..], d, "blob")?;
            added.lock().expect("not poisoned").blobs.push(p);
        }
    }
    progress.set_length(layers.iter().map(|l| l.size).sum());
    // Six connections at most, as docker's default.
    let downloaded = crate::unpack::count_parallel(&layers, 6, "pull", |l| {
        fetch_layer(&reg, store, l, progress, added)
    })?;
    let image = ImageRec {
        name: r.name(),
        digest: digest.to_string(),
        config: cdigest.to_string(),
        layers,
    };
    store.save_image(&image)?;
    Ok(Pulled { image, downloaded })
}
