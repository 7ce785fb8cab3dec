//! The canonical request path: parsed once at the edge, then used by the route matcher **and**
//! for the upstream URL, so the path a price was matched on is exactly the path that is served.
//!
//! Input is a request target in origin form (`/a/b?q`): the proxied request's URI, or
//! ForwardAuth's `X-Forwarded-Uri`. Traefik routes on the path with unreserved %-escapes
//! decoded, so the canonical form decodes them too (`/%73ervices` is `/services`), writes the
//! remaining escapes with upper-case hex, and keeps everything else byte for byte.
//!
//! A path that has no single meaning is refused instead of guessed at, because the proxy in
//! front (Traefik), the verifier, the HTTP client and the upstream would each guess differently:
//! - an encoded `/` or `\` (`%2F`, `%5C`), a raw `\`;
//! - a dot segment, raw or encoded (`.`, `..`, `%2e%2e`, `.%2E`), or a segment ending in `.`
//!   (some servers drop a trailing dot, so `x.` and `x` would be one resource);
//! - an empty segment (`//`, `/a//b`); a trailing `/` (an empty *last* segment) is kept;
//! - control characters, raw or encoded, bytes outside visible ASCII, a malformed escape,
//!   a fragment (`#`), anything not starting with `/`, or over [`MAX_TARGET_LEN`] bytes.
//!
//! The query string is not matched on; it is kept as received (visible ASCII only) and
//! appended to the upstream URL.

use std::fmt;

/// The longest request target accepted (path and query), in bytes.
pub const MAX_TARGET_LEN: usize = 8 * 1024;

/// A request path in canonical form, with its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// Starts with `/`; no query.
    path: String,
    /// Without the `?`.
    query: Option<String>,
}

/// Why a request target has no single meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target must start with '/'")]
    NotAbsolute,
    #[error("the request target is longer than {MAX_TARGET_LEN} bytes")]
    TooLong,
    #[error("the path contains an encoded '/' or '\\' or a raw '\\'")]
    EncodedSeparator,
    #[error(
        "the path contains a dot segment ('.' or '..', raw or encoded) or a segment ending in '.'"
    )]
    DotSegment,
    #[error("the path contains an empty segment ('//')")]
    EmptySegment,
    #[error("the request target contains a control character or a byte outside visible ASCII")]
    BadByte,
    #[error("the path contains a malformed %-escape")]
    BadEscape,
    #[error("the request target contains a fragment ('#')")]
    Fragment,
    #[error("the path would leave the offer's upstream base path")]
    OutsideUpstream,
}

impl PathError {
    /// The machine-readable reason of the refusal.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path_not_absolute",
            PathError::TooLong => "path_too_long",
            PathError::EncodedSeparator => "path_encoded_separator",
            PathError::DotSegment => "path_dot_segment",
            PathError::EmptySegment => "path_empty_segment",
            PathError::BadByte => "path_bad_character",
            PathError::BadEscape => "path_bad_escape",
            PathError::Fragment => "path_fragment",
            PathError::OutsideUpstream => "path_outside_upstream",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes allowed raw in a path: unreserved, sub-delims, `:` and `@` (RFC 3986 `pchar`), `/`.
fn is_path_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
        || b == b'/'
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl RequestPath {
    /// Parses a request target in origin form (`/path?query`).
    pub fn parse(target: &str) -> Result<RequestPath, PathError> {
        if target.len() > MAX_TARGET_LEN {
            return Err(PathError::TooLong);
        }
        let (raw_path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        if !raw_path.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        let path = canonical_path(raw_path.as_bytes())?;
        let query = match query {
            Some(q) => {
                if q.contains('#') {
                    return Err(PathError::Fragment);
                }
                if !q.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(PathError::BadByte);
                }
                Some(q.to_string())
            }
            None => None,
        };
        Ok(RequestPath { path, query })
    }

    /// The canonical path (no query): what routes are matched on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query as received, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The path below `prefix` (segment-aware), starting with `/` (or empty when the path is
    /// the prefix itself); `None` when the path is not under `prefix`.
    pub fn below(&self, prefix: &str) -> Option<&str> {
        let prefix = prefix.trim_end_matches('/');
        let rest = self.path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}

impl fmt::Display for RequestPath {
    /// Path and query, as they are sent upstream.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// Decodes unreserved escapes, upper-cases the others, and checks each segment.
fn canonical_path(raw: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len());
    // Start of the current segment in `out` (just after its `/`).
    let mut seg_start = 1;
    out.push('/');
    let mut i = 1;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'/' => {
                check_segment(&out[seg_start..], false)?;
                out.push('/');
                seg_start = out.len();
                i += 1;
            }
            b'%' => {
                let (Some(h), Some(l)) = (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let d = h << 4 | l;
                if d == b'/' || d == b'\\' {
                    return Err(PathError::EncodedSeparator);
                }
                if d < 0x20 || d == 0x7f {
                    return Err(PathError::BadByte);
                }
                if is_unreserved(d) {
                    out.push(d as char);
                } else {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    out.push('%');
                    out.push(HEX[(d >> 4) as usize] as char);
                    out.push(HEX[(d & 15) as usize] as char);
                }
                i += 3;
            }
            b'\\' => return Err(PathError::EncodedSeparator),
            b'#' => return Err(PathError::Fragment),
            b if is_path_byte(b) => {
                out.push(b as char);
                i += 1;
            }
            _ => return Err(PathError::BadByte),
        }
    }
    check_segment(&out[seg_start..], true)?;
    Ok(out)
}

/// A segment (decoded) is refused when empty (unless it is the last: a trailing `/`), or when
/// it is a dot segment or ends with `.`.
fn check_segment(seg: &str, last: bool) -> Result<(), PathError> {
    if seg.is_empty() {
        return if last {
            Ok(())
        } else {
            Err(PathError::EmptySegment)
        };
    }
    if seg.ends_with('.') {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        RequestPath::parse(s).unwrap().to_string()
    }

    fn err(s: &str) -> PathError {
        RequestPath::parse(s).unwrap_err()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/services/demo/"), "/services/demo/");
        assert_eq!(
            ok("/services/demo/x?a=1&b=%2F"),
            "/services/demo/x?a=1&b=%2F"
        );
        // Unreserved escapes are decoded (Traefik routes on that), others upper-cased.
        assert_eq!(ok("/%73ervices/%65xpensive/x"), "/services/expensive/x");
        assert_eq!(ok("/a%7e/b%2d%5F"), "/a~/b-_");
        assert_eq!(ok("/a%20b/%c3%a9"), "/a%20b/%C3%A9");
        assert_eq!(ok("/a;jsessionid=1/b:c@d"), "/a;jsessionid=1/b:c@d");
        assert_eq!(ok("/.well-known/x402"), "/.well-known/x402");
        assert_eq!(ok("/a/.hidden"), "/a/.hidden");
        assert_eq!(ok("/a/b.json"), "/a/b.json");
        assert_eq!(ok("/a?"), "/a?");
    }

    #[test]
    fn paths_without_one_meaning_are_refused() {
        use PathError::*;
        for (target, why) in [
            ("services/x", NotAbsolute),
            ("http://h/services/x", NotAbsolute),
            ("", NotAbsolute),
            ("/services/cheap/%2e%2e/expensive/x", DotSegment),
            ("/services/cheap/../expensive/x", DotSegment),
            ("/services/cheap/.%2E/expensive", DotSegment),
            ("/services/cheap/%2E./expensive", DotSegment),
            ("/services/./expensive", DotSegment),
            ("/x/../services/expensive", DotSegment),
            ("/services/expensive.", DotSegment),
            ("/services/expensive./x", DotSegment),
            ("/services/expensive/..", DotSegment),
            ("/services/expensive/.", DotSegment),
            ("/services/cheap/..\\expensive", EncodedSeparator),
            ("/services/expensive%2Fx", EncodedSeparator),
            ("/services/expensive%2fx", EncodedSeparator),
            ("/services/expensive%5cx", EncodedSeparator),
            ("//services/expensive/x", EmptySegment),
            ("/services//expensive/x", EmptySegment),
            ("/a%00b", BadByte),
            ("/a%0ab", BadByte),
            ("/a%7Fb", BadByte),
            ("/a b", BadByte),
            ("/a\tb", BadByte),
            ("/é", BadByte),
            ("/a\"b", BadByte),
            ("/a?b c", BadByte),
            ("/a?b\u{7f}", BadByte),
            ("/a%", BadEscape),
            ("/a%4", BadEscape),
            ("/a%zz", BadEscape),
            ("/a#frag", Fragment),
            ("/a?x#frag", Fragment),
        ] {
            assert_eq!(err(target), why, "{target:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert_eq!(err(&long), TooLong);
    }

    #[test]
    fn the_canonical_form_is_a_fixed_point() {
        for s in ["/%73ervices/a%20b/%c3%a9?q=1", "/a/b/", "/x;y=1"] {
            let once = ok(s);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn below_is_segment_aware() {
        let p = RequestPath::parse("/services/demo/v1/chat?x=1").unwrap();
        assert_eq!(p.below("/services/demo"), Some("/v1/chat"));
        assert_eq!(p.below("/services/demo/"), Some("/v1/chat"));
        assert_eq!(p.below("/services/de"), None);
        assert_eq!(p.below("/"), Some("/services/demo/v1/chat"));
        let p = RequestPath::parse("/services/demo").unwrap();
        assert_eq!(p.below("/services/demo"), Some(""));
    }
}
