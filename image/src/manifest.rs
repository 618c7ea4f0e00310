//! Manifests, indexes and image configs (image-spec manifest.md,
//! image-index.md, config.md) as import and pull read them: media types,
//! the platform an index offers for this host, and the layer records a
//! manifest and its config make.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::LayerRec;
use crate::unpack;
use serde_json::Value;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Docker's schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn json_of(data: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(data).map_err(|e| Error::Format(format!("{what}: invalid JSON: {e}")))
}

pub fn field<'a>(v: &'a Value, k: &str, what: &str) -> Result<&'a Value> {
    v.get(k)
        .filter(|x| !x.is_null())
        .ok_or_else(|| Error::Format(format!("{what}: missing {k:?}")))
}

pub fn digest_of(desc: &Value, what: &str) -> Result<Digest> {
    Digest::parse(field(desc, "digest", what)?.as_str().unwrap_or(""))
        .map_err(|e| Error::Format(format!("{what}: {e}")))
}

/// The platform berth runs images of (image-index.md "platform").
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Picks the manifest from an index: the only one, or the one for linux and
/// the host architecture. Nested indexes are followed.
pub fn pick_manifest(
    index: &Value,
    load: &mut dyn FnMut(&Digest) -> Result<Vec<u8>>,
) -> Result<(Value, Option<String>)> {
    let mut found = Vec::new();
    let mut stack: Vec<Value> = field(index, "manifests", "index.json")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    while let Some(d) = stack.pop() {
        let mt = d.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if mt == OCI_INDEX || mt == DOCKER_LIST {
            let nested = json_of(&load(&digest_of(&d, "index entry")?)?, "nested index")?;
            stack.extend(
                field(&nested, "manifests", "nested index")?
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        } else {
            found.push(d);
        }
    }
    if found.len() > 1 {
        found.retain(|d| {
            d.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                && d.pointer("/platform/architecture").and_then(Value::as_str) == Some(host_arch())
        });
    }
    let d = found.into_iter().next().ok_or_else(|| {
        Error::Format(format!("index.json: no manifest for linux/{}", host_arch()))
    })?;
    let name = d
        .pointer("/annotations/org.opencontainers.image.ref.name")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((d, name))
}

/// The layer records of `manifest` with `config`: media types berth can
/// unpack, one diff ID each, chain IDs computed.
pub fn layer_records(manifest: &Value, config: &Value) -> Result<Vec<LayerRec>> {
    let layers = field(manifest, "layers", "manifest")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let diff_ids: Vec<Digest> = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Format("image config: missing rootfs.diff_ids".into()))?
        .iter()
        .map(|d| Digest::parse(d.as_str().unwrap_or("")))
        .collect::<Result<_>>()?;
    if diff_ids.len() != layers.len() {
        return Err(Error::Format(format!(
            "image config has {} diff_ids for {} manifest layers",
            diff_ids.len(),
            layers.len()
        )));
    }
    let chains = crate::digest::chain_ids(&diff_ids);
    let mut recs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let mt = l
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !unpack::known_layer_type(&mt) {
            return Err(Error::Format(format!(
                "layer {i}: unknown media type {mt:?}"
            )));
        }
        let d = digest_of(l, &format!("layer {i}"))?;
        recs.push(LayerRec {
            digest: d.to_string(),
            diff_id: diff_ids[i].to_string(),
            chain_id: chains[i].to_string(),
            media_type: mt,
            size: l.get("size").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    Ok(recs)
}
