//! The layer unpacker fed arbitrary tar streams: it may refuse them, but it
//! must never panic nor write anything outside its scratch directory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn base() -> PathBuf {
    std::env::temp_dir().join(format!("berth-fuzz-unpack-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let scratch = base.join("outer/scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let _ = berth_image::unpack::unpack_tar(data, &scratch);
    // Only outer/scratch may exist below base: nothing escaped.
    let top: Vec<_> = std::fs::read_dir(&base).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(top, vec![std::ffi::OsString::from("outer")], "written outside the layer: {top:?}");
    let outer: Vec<_> = std::fs::read_dir(base.join("outer")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(outer, vec![std::ffi::OsString::from("scratch")], "written outside the layer: {outer:?}");
    berth_image::fsutil::remove_tree(&scratch);
});
