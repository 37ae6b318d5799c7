//! Any bytes as a manifest: parsing, building and validating never panic, a rejection names
//! its field, and an accepted manifest gives names AWS accepts (`check_manifest`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(broken) = ecs_facade::testing::check_manifest(text) {
            panic!("{broken}");
        }
    }
});
