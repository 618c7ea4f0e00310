//! Links berth's hot functions together (release builds): the linker places
//! the functions listed in src/symbol-order.txt first, in that order, so a
//! command maps about 1 MiB of text instead of most of its 3.9 MB (the
//! kernel maps text in 64 KiB blocks around each page touched). The list is
//! written by `make symbol-order` (tests/bench/symbol_order.py) from the
//! release build itself: Rust's symbol names carry a hash of the crate's
//! build settings, so a list taken from another profile matches nothing of
//! ours. Names it lacks or that no longer exist only cost memory, never
//! correctness. The option is lld's, the default linker of this target
//! since Rust 1.90 (hence the workspace's rust-version); with another linker,
//! set BERTH_NO_SYMBOL_ORDER=1 to build without the list.
//!
//! It also sets the entry point (`berth_start`, see src/main.rs) and
//! records the git commit for `berth --version`.

/// The commit berth is built from, for `berth --version` (dockerd shows
/// it in `docker info`): `git describe` of the checkout, else "unknown".
fn commit() -> String {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--long", "--tags"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "unknown".into(),
    }
}

fn main() {
    println!("cargo:rustc-env=BERTH_COMMIT={}", commit());
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    // The entry point that re-executes create, run and exec before the C
    // library starts (src/main.rs, `pre_start`).
    println!("cargo:rustc-link-arg-bins=-Wl,-e,berth_start");
    let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=BERTH_NO_SYMBOL_ORDER");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    if release && order.exists() && std::env::var_os("BERTH_NO_SYMBOL_ORDER").is_none() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            order.display()
        );
    }
}
