//! `RequestPath::parse` on any target: never panics; what it accepts is canonical (a fixed
//! point), starts with `/`, and has no dot segment, empty inner segment or encoded separator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obol::verifier::request_path::RequestPath;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = RequestPath::parse(target) else {
        return;
    };
    let path = p.path();
    assert!(path.starts_with('/'));
    let again = RequestPath::parse(&p.to_string()).expect("a canonical path parses");
    assert_eq!(again, p, "canonical form is a fixed point");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        assert!(!seg.ends_with('.'), "dot segment in {path:?}");
        assert!(seg.len() > 0 || i + 1 == segments.len(), "empty segment in {path:?}");
    }
    let lower = path.to_ascii_lowercase();
    assert!(!lower.contains("%2f") && !lower.contains("%5c") && !path.contains('\\'));
    assert!(!lower.contains("%2e"), "an unreserved escape left encoded in {path:?}");
    assert!(path.bytes().all(|b| b.is_ascii_graphic()));
});
