//! The offers file parser on any bytes: never panics, never exhausts memory; a file that
//! parses resolves (or is refused with problems) without panicking, and saves to YAML that
//! parses back to the same config.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use obol::offers::config;
use obol::x402::networks::Registry;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.yaml");
    let Ok(cfg) = config::parse_reader(data, path) else {
        return;
    };
    let _ = obol::offers::resolve(&cfg, &Registry::builtin());
    if let Ok(text) = config::to_yaml(&cfg) {
        let again = config::parse(&text, path).expect("saved offers parse back");
        assert!(again.routes.len() == cfg.routes.len());
    }
});
