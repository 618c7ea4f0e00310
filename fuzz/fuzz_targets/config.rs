//! config.json parsing and validation must never panic, whatever the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = berth_runtime::spec::parse(data) {
        let _ = berth_runtime::spec::validate(&spec);
        if let Some(ns) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) {
            let _ = berth_runtime::namespaces::Plan::new(ns);
        }
    }
});
