//! The indexed route matcher against a plain first-match scan of the same patterns: for any
//! patterns and path, both pick the same route (or none), and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obol::offers::{Matcher, Pattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Line 1: the path; the other lines: patterns, in priority order.
    let mut lines = text.lines();
    let Some(path) = lines.next() else {
        return;
    };
    let patterns: Vec<&str> = lines.take(64).collect();
    let matcher = Matcher::new(
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (Pattern::parse(p), i))
            .collect(),
    );
    let indexed = matcher.find(path).map(|(_, i)| *i);
    let scanned = patterns
        .iter()
        .position(|p| Pattern::parse(p).matches(path));
    assert_eq!(indexed, scanned, "path {path:?} patterns {patterns:?}");
});
