//! Route patterns and the route matcher.
//!
//! Pattern rules (those of the obol-stack verifier, so existing files keep their meaning):
//! - no `*`: exact match (`/health` matches only `/health`);
//! - `/x/*` with no other `*`: `/x` itself and everything under `/x/` at any depth;
//! - anything else with a `*`: a segment glob. Each `/`-separated segment is matched with
//!   `*` (any run of characters within the segment), `?` (one character), `[...]` classes
//!   (ranges, `^` negation) and `\` escapes; a last segment of exactly `*` matches all
//!   remaining segments (at least one); otherwise the segment counts must be equal.
//!
//! Routes are tried in file order and the first match wins. [`Matcher`] keeps that order but
//! does not scan every route: a trie indexed by each pattern's leading literal segments yields
//! only the routes that can possibly match, and the earliest of those that does match wins.
//! With 10,000 `/services/NAME/*` offers a lookup visits a handful of candidates.

use std::collections::HashMap;

/// A compiled route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    /// `/x/*`: holds `/x`.
    Prefix(String),
    /// A segment glob, split into segments after the leading `/`.
    Glob(Vec<String>),
}

/// The path part of a request target (`/a/b?x=1` -> `/a/b`); fragments are cut too.
pub fn path_of(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    &uri[..end]
}

fn segments(s: &str) -> std::str::Split<'_, char> {
    s.strip_prefix('/').unwrap_or(s).split('/')
}

fn has_meta(seg: &str) -> bool {
    seg.contains(['*', '?', '[', '\\'])
}

impl Pattern {
    pub fn parse(pattern: &str) -> Pattern {
        if !pattern.contains('*') {
            return Pattern::Exact(pattern.to_string());
        }
        if let Some(prefix) = pattern.strip_suffix("/*")
            && !prefix.contains('*')
        {
            return Pattern::Prefix(prefix.to_string());
        }
        Pattern::Glob(segments(pattern).map(str::to_string).collect())
    }

    /// Whether `path` (no query string) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == path,
            Pattern::Prefix(p) => {
                path.len() >= p.len()
                    && path.starts_with(p.as_str())
                    && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
            }
            Pattern::Glob(parts) => glob_match(parts, path),
        }
    }

    /// The leading segments every matching path starts with (after the leading `/`).
    fn literal_segments(&self) -> Vec<&str> {
        match self {
            Pattern::Exact(p) => segments(p).collect(),
            // `/*` (empty prefix) matches everything: no literal segment.
            Pattern::Prefix(p) if p.is_empty() => Vec::new(),
            Pattern::Prefix(p) => segments(p).collect(),
            Pattern::Glob(parts) => parts
                .iter()
                .take_while(|s| !has_meta(s))
                .map(String::as_str)
                .collect(),
        }
    }
}

fn glob_match(parts: &[String], path: &str) -> bool {
    let mut uri = segments(path);
    let last = parts.len().saturating_sub(1);
    for (i, pp) in parts.iter().enumerate() {
        let Some(seg) = uri.next() else {
            return false;
        };
        if i == last && pp == "*" {
            return true;
        }
        if !segment_match(pp.as_bytes(), seg.as_bytes()) {
            return false;
        }
    }
    uri.next().is_none()
}

/// Go's `path.Match` for one segment (no `/` in either side); a malformed pattern never matches.
fn segment_match(pat: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += utf8_len(s[i]);
                    continue;
                }
                b'[' => match class_match(&pat[p..], s, i) {
                    Some((true, consumed, width)) => {
                        p += consumed;
                        i += width;
                        continue;
                    }
                    Some((false, _, _)) => {}
                    None => return false,
                },
                b'\\' => {
                    if p + 1 < pat.len() && pat[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                    if p + 1 >= pat.len() {
                        return false;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                let next = si + utf8_len(s[si]);
                star = Some((sp, next));
                p = sp + 1;
                i = next;
            }
            None => return false,
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Matches a `[...]` class at the start of `pat` against the character at `s[i]`.
/// Returns (matched, pattern bytes consumed, input bytes consumed), or `None` if malformed.
fn class_match(pat: &[u8], s: &[u8], i: usize) -> Option<(bool, usize, usize)> {
    let width = utf8_len(s[i]).min(s.len() - i);
    let ch = std::str::from_utf8(&s[i..i + width])
        .ok()
        .and_then(|c| c.chars().next())?;
    let mut p = 1;
    let negated = pat.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &b = pat.get(p)?;
        if b == b']' && !first {
            p += 1;
            break;
        }
        first = false;
        let (lo, n) = class_char(&pat[p..])?;
        p += n;
        let mut hi = lo;
        if pat.get(p) == Some(&b'-') && pat.get(p + 1).is_some_and(|&c| c != b']') {
            let (h, n) = class_char(&pat[p + 1..])?;
            hi = h;
            p += 1 + n;
        }
        if lo <= ch && ch <= hi {
            matched = true;
        }
    }
    Some((matched != negated, p, width))
}

fn class_char(pat: &[u8]) -> Option<(char, usize)> {
    let (esc, rest) = match pat.first()? {
        b'\\' => (1, &pat[1..]),
        _ => (0, pat),
    };
    let len = utf8_len(*rest.first()?);
    let c = std::str::from_utf8(rest.get(..len)?).ok()?.chars().next()?;
    Some((c, esc + len))
}

/// A first-match-wins route table over values `T` (patterns kept in the given order).
#[derive(Debug)]
pub struct Matcher<T> {
    entries: Vec<(Pattern, T)>,
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    /// Indices of entries whose literal segments end here, ascending.
    here: Vec<usize>,
    children: HashMap<Box<str>, Node>,
}

impl<T> Matcher<T> {
    /// Builds the table; `entries` are in priority order (first match wins).
    pub fn new(entries: Vec<(Pattern, T)>) -> Self {
        let mut root = Node::default();
        for (idx, (pattern, _)) in entries.iter().enumerate() {
            let mut node = &mut root;
            for seg in pattern.literal_segments() {
                node = node.children.entry(seg.into()).or_default();
            }
            node.here.push(idx);
        }
        Matcher { entries, root }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &(Pattern, T)> {
        self.entries.iter()
    }

    /// The first entry (in table order) whose pattern matches `path`, with its index.
    pub fn find(&self, path: &str) -> Option<(usize, &T)> {
        let mut best: Option<usize> = None;
        let mut consider = |node: &Node| {
            for &idx in &node.here {
                if best.is_some_and(|b| idx >= b) {
                    break;
                }
                if self.entries[idx].0.matches(path) {
                    best = Some(idx);
                    break;
                }
            }
        };
        let mut node = &self.root;
        consider(node);
        for seg in segments(path) {
            match node.children.get(seg) {
                Some(child) => {
                    node = child;
                    consider(node);
                }
                None => break,
            }
        }
        best.map(|i| (i, &self.entries[i].1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Pattern::parse(p).matches(path)
    }

    #[test]
    fn exact_patterns() {
        assert!(m("/health", "/health"));
        assert!(!m("/health", "/health/"));
        assert!(!m("/health", "/healthz"));
        // No `*`: `?` and `[` are literal.
        assert!(m("/a?b", "/a?b"));
        assert!(!m("/a?b", "/axb"));
    }

    #[test]
    fn prefix_patterns() {
        let p = "/services/demo/*";
        assert_eq!(Pattern::parse(p), Pattern::Prefix("/services/demo".into()));
        assert!(m(p, "/services/demo"));
        assert!(m(p, "/services/demo/"));
        assert!(m(p, "/services/demo/a/b/c"));
        assert!(!m(p, "/services/demo2"));
        assert!(!m(p, "/services/dem"));
        assert!(!m(p, "/services"));
        assert!(m("/*", "/anything/at/all"));
        assert!(m("/*", "/"));
    }

    #[test]
    fn glob_patterns() {
        let p = "/inference-*/v1/*";
        assert!(matches!(Pattern::parse(p), Pattern::Glob(_)));
        assert!(m(p, "/inference-qwen/v1/chat"));
        assert!(m(p, "/inference-qwen/v1/chat/completions"));
        assert!(m(p, "/inference-/v1/x"));
        assert!(!m(p, "/inference-qwen/v1"), "trailing * needs a segment");
        assert!(!m(p, "/inference-qwen/v2/chat"));
        assert!(!m(p, "/other/v1/chat"));
        // Non-trailing globs need equal segment counts.
        assert!(m("/a/*/c", "/a/b/c"));
        assert!(!m("/a/*/c", "/a/b/c/d"));
        assert!(!m("/a/*/c", "/a/b/x/c"));
        // `*` does not cross `/`.
        assert!(!m("/a*/x", "/a/b/x"));
        // `?`, classes, escapes (Go path.Match).
        assert!(m("/v?/*/x", "/v1/y/x"));
        assert!(!m("/v?/*/x", "/v10/y/x"));
        assert!(m("/v[0-9]/*/x", "/v7/y/x"));
        assert!(!m("/v[^0-9]/*/x", "/v7/y/x"));
        assert!(m("/v[^0-9]/*/x", "/vq/y/x"));
        assert!(m("/a\\*b/*/c", "/a*b/z/c"));
        assert!(!m("/a\\*b/*/c", "/axb/z/c"));
        assert!(!m("/v[0-9/*/x", "/v1/y/x"), "malformed class never matches");
        assert!(m("/*.json/*/x", "/data.json/q/x"));
        assert!(m("/é*/*/x", "/éa/q/x"));
    }

    #[test]
    fn query_and_fragment_are_not_part_of_the_path() {
        assert_eq!(path_of("/a/b?x=1"), "/a/b");
        assert_eq!(path_of("/a/b#f"), "/a/b");
        assert_eq!(path_of("/a/b"), "/a/b");
    }

    fn table(patterns: &[&str]) -> Matcher<usize> {
        Matcher::new(
            patterns
                .iter()
                .enumerate()
                .map(|(i, p)| (Pattern::parse(p), i))
                .collect(),
        )
    }

    #[test]
    fn first_match_wins_across_index_buckets() {
        // A broad pattern listed first wins over a more specific later one, and vice versa.
        let t = table(&["/*", "/services/a/*"]);
        assert_eq!(t.find("/services/a/x").map(|x| *x.1), Some(0));
        let t = table(&["/services/a/*", "/*"]);
        assert_eq!(t.find("/services/a/x").map(|x| *x.1), Some(0));
        assert_eq!(t.find("/other").map(|x| *x.1), Some(1));
        let t = table(&["/services/*/x", "/services/a/*", "/services/a/x"]);
        assert_eq!(t.find("/services/a/x").map(|x| *x.1), Some(0));
        assert_eq!(t.find("/services/a/y").map(|x| *x.1), Some(1));
        let t = table(&["/services/a/x", "/services/*/x"]);
        assert_eq!(t.find("/services/a/x").map(|x| *x.1), Some(0));
        assert_eq!(t.find("/services/b/x").map(|x| *x.1), Some(1));
        assert_eq!(t.find("/nope"), None);
        let t = table(&[]);
        assert_eq!(t.find("/"), None);
    }

    /// The indexed lookup agrees with a linear first-match scan on a large mixed table.
    #[test]
    fn ten_thousand_routes_agree_with_a_linear_scan() {
        let mut patterns = Vec::new();
        for i in 0..10_000 {
            patterns.push(match i % 10 {
                0 => format!("/exact/{i}"),
                1 => format!("/glob-{i}/*/x"),
                2 => format!("/*/deep-{i}/*"),
                _ => format!("/services/offer-{i}/*"),
            });
        }
        // Broad rules late in the table: must lose to every earlier match.
        patterns.push("/services/*".into());
        patterns.push("/*".into());
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let t = table(&refs);
        let compiled: Vec<Pattern> = refs.iter().map(|p| Pattern::parse(p)).collect();
        let linear = |path: &str| compiled.iter().position(|p| p.matches(path));
        let mut probes = vec![
            "/".to_string(),
            "/services".into(),
            "/services/unknown".into(),
            "/nothing/here".into(),
            "//services/offer-3/x".into(),
        ];
        for i in (0..10_000).step_by(7) {
            probes.push(format!("/services/offer-{i}"));
            probes.push(format!("/services/offer-{i}/v1/chat"));
            probes.push(format!("/exact/{i}"));
            probes.push(format!("/glob-{i}/a/x"));
            probes.push(format!("/glob-{i}/a/y"));
            probes.push(format!("/q/deep-{i}/z"));
        }
        for p in &probes {
            assert_eq!(t.find(p).map(|x| x.0), linear(p), "path {p}");
        }
        assert_eq!(t.len(), 10_002);
    }
}
