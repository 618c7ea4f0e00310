//! `berth image import`: an OCI image layout directory, an oci-archive
//! tarball, or a docker-archive tarball (`docker save`), optionally gzipped.
//! Every blob is verified against its digest as it is copied into the store;
//! the layers are then unpacked once each, in parallel. On any failure the
//! blobs and layers this import added are removed again.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil::remove_tree;
use crate::manifest::{self, digest_of, field, json_of, pick_manifest, OCI_CONFIG, OCI_MANIFEST};
use crate::progress::Progress;
use crate::store::{normalize_name, ImageRec, Store};
use crate::unpack;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What an import did.
pub struct Imported {
    pub image: ImageRec,
    /// Layers unpacked by this import (0 when all were in the store).
    pub unpacked: usize,
}

/// Tracks what an import added, to undo it on failure.
struct Txn<'a> {
    store: &'a Store,
    blobs: Vec<PathBuf>,
    layers: Vec<PathBuf>,
}

impl Txn<'_> {
    fn put(&mut self, r: impl Read, d: &Digest, what: &str) -> Result<u64> {
        let p = self.store.blob_path(d);
        let new = !p.exists();
        let n = self.store.put_blob(r, d, what)?;
        if new {
            self.blobs.push(p);
        }
        Ok(n)
    }
    fn put_any(&mut self, r: impl Read, what: &str) -> Result<(Digest, u64)> {
        let (d, n) = self.store.put_blob_any(r, what)?;
        self.blobs.push(self.store.blob_path(&d));
        Ok((d, n))
    }
    fn rollback(&self) {
        for p in &self.layers {
            remove_tree(p);
        }
        for p in &self.blobs {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Imports the image at `path`. `name` overrides the name found in it.
pub fn import(
    store: &Store,
    path: &Path,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<Imported> {
    let _lock = store.lock()?;
    let mut txn = Txn {
        store,
        blobs: Vec::new(),
        layers: Vec::new(),
    };
    let res = import_in(&mut txn, path, name, progress);
    if res.is_err() {
        txn.rollback();
    }
    res
}

fn import_in(
    txn: &mut Txn,
    path: &Path,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<Imported> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot import", path, e))?;
    let (manifest_digest, found_name) = if meta.is_dir() {
        import_layout_dir(txn, path)?
    } else {
        import_archive(txn, path)?
    };
    let store = txn.store;
    let manifest = json_of(&store.read_blob(&manifest_digest)?, "manifest")?;
    let cdesc = field(&manifest, "config", "manifest")?;
    let config_digest = digest_of(cdesc, "manifest config")?;
    let config = json_of(&store.read_blob(&config_digest)?, "image config")?;
    let recs = manifest::layer_records(&manifest, &config)?;
    for (i, l) in recs.iter().enumerate() {
        let d = Digest::parse(&l.digest)?;
        if !store.blob_path(&d).exists() {
            return Err(Error::Format(format!(
                "manifest names missing blob {d} (layer {i})"
            )));
        }
    }
    // An OCI ref name is often a bare tag ("latest"): prefix the file name.
    let found_name = found_name.map(|n| {
        if n.contains(':') || n.contains('/') {
            n
        } else {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = stem.strip_suffix(".tar").unwrap_or(&stem).to_string();
            format!("{stem}:{n}")
        }
    });
    let name = name.map(str::to_string).or(found_name).ok_or_else(|| {
        Error::Format(format!(
            "{}: the image names no tag: use --name NAME:TAG",
            path.display()
        ))
    })?;
    for l in &recs {
        let p = store.layer_dir(&Digest::parse(&l.chain_id)?);
        if !p.exists() {
            txn.layers.push(p);
        }
    }
    progress.set_length(recs.iter().map(|l| l.size).sum());
    let unpacked = unpack::ensure_layers(store, &recs, progress)?;
    let image = ImageRec {
        name: normalize_name(&name),
        digest: manifest_digest.to_string(),
        config: config_digest.to_string(),
        layers: recs,
    };
    store.save_image(&image)?;
    Ok(Imported { image, unpacked })
}

fn check_layout(data: &[u8]) -> Result<()> {
    let v = json_of(data, "oci-layout")?;
    match v.get("imageLayoutVersion").and_then(Value::as_str) {
        Some(s) if s.starts_with("1.") => Ok(()),
        other => Err(Error::Format(format!(
            "oci-layout: unsupported imageLayoutVersion {other:?}"
        ))),
    }
}

/// An OCI image layout directory (image-layout.md).
fn import_layout_dir(txn: &mut Txn, dir: &Path) -> Result<(Digest, Option<String>)> {
    let read =
        |p: &str| std::fs::read(dir.join(p)).map_err(|e| Error::io("cannot read", dir.join(p), e));
    check_layout(&read("oci-layout")?)?;
    let index = json_of(&read("index.json")?, "index.json")?;
    let blob = |d: &Digest| dir.join("blobs/sha256").join(d.hex());
    let mut load =
        |d: &Digest| std::fs::read(blob(d)).map_err(|e| Error::io("missing blob", blob(d), e));
    let (desc, name) = pick_manifest(&index, &mut load)?;
    let md = digest_of(&desc, "index entry")?;
    let mut copy = |d: &Digest, what: &str| -> Result<()> {
        let p = blob(d);
        let f = File::open(&p).map_err(|e| {
            Error::io(
                if what == "manifest" {
                    "manifest names missing blob"
                } else {
                    "missing blob"
                },
                &p,
                e,
            )
        })?;
        txn.put(f, d, &format!("{what} {d}"))?;
        Ok(())
    };
    copy(&md, "manifest")?;
    let manifest = json_of(&std::fs::read(blob(&md)).unwrap_or_default(), "manifest")?;
    copy(
        &digest_of(field(&manifest, "config", "manifest")?, "config")?,
        "config",
    )?;
    for l in field(&manifest, "layers", "manifest")?
        .as_array()
        .into_iter()
        .flatten()
    {
        let d = digest_of(l, "layer")?;
        let p = blob(&d);
        let f = File::open(&p).map_err(|e| Error::io("manifest names missing blob", &p, e))?;
        txn.put(f, &d, &format!("layer {d}"))?;
    }
    Ok((md, name))
}

/// An oci-archive or docker-archive tarball, read in one pass.
fn import_archive(txn: &mut Txn, path: &Path) -> Result<(Digest, Option<String>)> {
    let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let r: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            f,
        )))
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(r);
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut files: HashMap<String, Digest> = HashMap::new();
    let bad = |e: std::io::Error| {
        Error::Format(format!(
            "{}: not a readable tar archive: {e}",
            path.display()
        ))
    };
    for e in ar.entries().map_err(bad)? {
        let mut e = e.map_err(bad)?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let p = e
            .path()
            .map_err(bad)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if let Some(hex) = p.strip_prefix("blobs/sha256/") {
            let d = Digest::parse(&format!("sha256:{hex}"))?;
            txn.put(&mut e, &d, &format!("blob {p}"))?;
            files.insert(p, d);
        } else if p.ends_with(".json") || p == "oci-layout" || p == "repositories" {
            let mut v = Vec::new();
            e.read_to_end(&mut v).map_err(bad)?;
            small.insert(p, v);
        } else {
            let (d, _) = txn.put_any(&mut e, &p)?;
            files.insert(p, d);
        }
    }
    let store = txn.store;
    if let (Some(layout), Some(index)) = (small.get("oci-layout"), small.get("index.json")) {
        check_layout(layout)?;
        let index = json_of(index, "index.json")?;
        let mut load = |d: &Digest| store.read_blob(d);
        let (desc, name) = pick_manifest(&index, &mut load)?;
        let md = digest_of(&desc, "index entry")?;
        if !store.blob_path(&md).exists() {
            return Err(Error::Format(format!("index.json names missing blob {md}")));
        }
        let m = json_of(&store.read_blob(&md)?, "manifest")?;
        for d in std::iter::once(field(&m, "config", "manifest")?).chain(
            field(&m, "layers", "manifest")?
                .as_array()
                .into_iter()
                .flatten(),
        ) {
            let d = digest_of(d, "manifest")?;
            if !store.blob_path(&d).exists() {
                return Err(Error::Format(format!("manifest names missing blob {d}")));
            }
        }
        return Ok((md, name));
    }
    let Some(manifest) = small.get("manifest.json") else {
        return Err(Error::Format(format!(
            "{}: neither an oci-archive (oci-layout, index.json) nor a docker-archive (manifest.json)",
            path.display()
        )));
    };
    // docker-archive: [{"Config": "x.json", "RepoTags": [...], "Layers": ["y/layer.tar"]}]
    let m = json_of(manifest, "manifest.json")?;
    let m = m
        .get(0)
        .ok_or_else(|| Error::Format("manifest.json: no image".into()))?;
    let cfg_path = field(m, "Config", "manifest.json")?.as_str().unwrap_or("");
    let (cfg_digest, cfg_size) = match (files.get(cfg_path), small.get(cfg_path)) {
        (Some(d), _) => (
            d.clone(),
            std::fs::metadata(store.blob_path(d))
                .map(|m| m.len())
                .unwrap_or(0),
        ),
        (None, Some(data)) => txn.put_any(&data[..], cfg_path)?,
        _ => {
            return Err(Error::Format(format!(
                "manifest.json names missing config {cfg_path:?}"
            )))
        }
    };
    let mut layers = Vec::new();
    for l in field(m, "Layers", "manifest.json")?
        .as_array()
        .into_iter()
        .flatten()
    {
        let lp = l.as_str().unwrap_or("");
        let d = files
            .get(lp)
            .ok_or_else(|| Error::Format(format!("manifest.json names missing layer {lp:?}")))?;
        let blob = store.blob_path(d);
        let mut head = [0u8; 4];
        let _ = File::open(&blob).and_then(|mut f| f.read(&mut head));
        let mt = match head {
            [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
            [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        let size = std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
        layers.push(json!({"mediaType": mt, "digest": d.as_str(), "size": size}));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest.as_str(), "size": cfg_size},
        "layers": layers,
    });
    let (md, _) = txn.put_any(
        &serde_json::to_vec(&manifest).expect("serializes")[..],
        "manifest",
    )?;
    let name = m
        .pointer("/RepoTags/0")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((md, name))
}
