//! Garbage collection (`berth image prune`): what no image or mount uses
//! goes, and so do leftovers of interrupted imports.

use crate::error::Result;
use crate::fsutil::remove_tree;
use crate::store::Store;
use std::path::PathBuf;

/// Removes layers no image or mount references, blobs no image references,
/// and leftovers of interrupted imports. Returns (layers, blobs) removed.
pub fn prune(store: &Store) -> Result<(usize, usize)> {
    let _lock = store.lock()?;
    let images = store.images()?;
    let mut keep_layers: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut keep_blobs: std::collections::HashSet<String> = std::collections::HashSet::new();
    for i in &images {
        for d in [&i.digest, &i.config] {
            keep_blobs.insert(d.trim_start_matches("sha256:").to_string());
        }
        for l in &i.layers {
            keep_blobs.insert(l.digest.trim_start_matches("sha256:").to_string());
            keep_layers.insert(l.chain_id.trim_start_matches("sha256:").to_string());
        }
    }
    for m in crate::overlay::mounts(store) {
        for l in m.layers {
            keep_layers.insert(l.trim_start_matches("sha256:").to_string());
        }
    }
    let sweep = |dir: PathBuf, keep: &std::collections::HashSet<String>, tree: bool| -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                if tree {
                    remove_tree(&e.path());
                } else {
                    let _ = std::fs::remove_file(e.path());
                }
                n += 1;
            }
        }
        n
    };
    let layers = sweep(store.root.join("layers"), &keep_layers, true);
    let blobs = sweep(store.root.join("blobs/sha256"), &keep_blobs, false);
    sweep(store.root.join("tmp"), &Default::default(), true);
    Ok((layers, blobs))
}
