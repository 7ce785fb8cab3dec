//! Declared routes: an offer's own table of paths (`routes:` of a rule in the offers file,
//! `spec.routes` of a ServiceOffer, `obol sell create --route`), each paid at the offer's price
//! or its own, or free.
//!
//! The shape is the obol-stack's (v0.17) `spec.routes[]`: at most [`MAX_ROUTES`] entries of
//! `{path, methods, gate, price, summary}`.
//! - `path` is relative to the offer's path: `/x` is exactly `<offer>/x`, `/x/*` is `<offer>/x`
//!   and everything under it, `/*` the whole offer, `/` the offer's root (`<offer>` and
//!   `<offer>/`). At most [`MAX_PATH_LEN`] characters of `a-z A-Z 0-9 / _ . * -`; a path without
//!   one meaning is refused: a `.` or `..` segment, an empty segment (`//`, a trailing `/`), a
//!   `*` anywhere but as the whole last segment.
//! - `methods` (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS) are kept as metadata, as the
//!   obol-stack does; they are not enforced.
//! - `gate`: `paid` (default) or `free`. `auth` (SIWX wallet sign-in) is not implemented by
//!   obol: refused when written, and a ServiceOffer with it is not served at all (fail closed).
//! - `price`: the per-request price of this path (primary currency only), instead of the
//!   offer's.
//! - `summary`: at most [`MAX_SUMMARY_CHARS`] characters.
//!
//! Once an offer declares any route, its table is exhaustive: the paths it does not declare are
//! refused ([`Gate::Undeclared`]). The most specific path wins regardless of the order they are
//! written in ([`specificity`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Most routes one offer may declare (the obol-stack CRD's `maxItems`).
pub const MAX_ROUTES: usize = 128;
/// Longest route path, in characters.
pub const MAX_PATH_LEN: usize = 512;
/// Longest summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 300;
/// Methods a route may list.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Values of `gate` as written (`auth` is refused by obol, see the module docs).
pub const GATES: &[&str] = &["paid", "free", "auth"];

/// What the verifier does with a request that matched a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Charged (the offer's price or the route's own).
    #[default]
    Paid,
    /// Served without payment (declared `gate: free`).
    Free,
    /// A path of an offer that declares routes but not this one: refused (404), never served.
    Undeclared,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Paid => "paid",
            Gate::Free => "free",
            Gate::Undeclared => "undeclared",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `gate` as written: `paid` (also when empty or absent) or `free`; `auth` and anything else
/// are refused with what to write instead.
pub fn parse_gate(gate: Option<&str>) -> Result<Gate, String> {
    match gate.map(str::trim).unwrap_or("") {
        "" | "paid" => Ok(Gate::Paid),
        "free" => Ok(Gate::Free),
        "auth" => Err("gate auth is not supported yet by obol; use paid or free".to_string()),
        other => Err(format!("gate {other:?} is not one of paid, free")),
    }
}

/// A route price as written: a decimal (`"0.5"`, or a bare YAML number) or the obol-stack's
/// object form `{perRequest: "0.5"}`. Only `perRequest` is accepted in the offers file.
#[derive(Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RoutePrice {
    Decimal(String),
    Object(PriceObject),
}

/// `{perRequest: "0.5"}`; other keys are kept as read (and refused by the checks).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceObject {
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "super::config::string_or_number"
    )]
    pub per_request: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml_ng::Value>,
}

impl<'de> Deserialize<'de> for RoutePrice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            U(u64),
            F(f64),
            O(PriceObject),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::S(s) => RoutePrice::Decimal(s),
            Raw::U(u) => RoutePrice::Decimal(u.to_string()),
            // Shortest round-trip text, never an exponent (see `string_or_number`).
            Raw::F(f) => RoutePrice::Decimal(f.to_string()),
            Raw::O(o) => RoutePrice::Object(o),
        })
    }
}

impl fmt::Debug for RoutePrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutePrice::Decimal(s) => write!(f, "{s:?}"),
            RoutePrice::Object(o) => write!(f, "{{perRequest: {:?}}}", o.per_request),
        }
    }
}

impl RoutePrice {
    /// The per-request price, or why there is none the verifier can charge.
    pub fn per_request(&self) -> Result<&str, String> {
        match self {
            RoutePrice::Decimal(s) => Ok(s.trim()),
            RoutePrice::Object(o) => {
                if let Some(k) = o.extra.keys().next() {
                    return Err(format!(
                        "price.{k} is not supported in a route of the offers file; give price.perRequest (or a plain decimal)"
                    ));
                }
                if o.per_request.trim().is_empty() {
                    return Err("price has no perRequest; write e.g. price: \"0.5\"".to_string());
                }
                Ok(o.per_request.trim())
            }
        }
    }
}

/// One declared route of an offer, as written in the offers file.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteEntry {
    /// Relative to the offer's path: `/x` exact, `/x/*` the subtree.
    #[serde(default)]
    pub path: String,
    /// Metadata only (not enforced).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::config::null_as_default"
    )]
    pub methods: Vec<String>,
    /// `paid` (default) or `free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// This path's per-request price instead of the offer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<RoutePrice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Keys obol does not know: kept as read, and refused by the checks (a key whose meaning
    /// obol cannot honour, like the obol-stack's `freeQuota`, must not be silently ignored).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml_ng::Value>,
}

impl fmt::Debug for RouteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteEntry")
            .field("path", &self.path)
            .field("methods", &self.methods)
            .field("gate", &self.gate)
            .field("price", &self.price)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// A declared route as `sell list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    /// Relative to the offer's path.
    pub path: String,
    pub methods: Vec<String>,
    /// `paid`, `free` (or, from a cluster, what is written, e.g. `auth`).
    pub gate: String,
    /// What one request to it costs (decimal, the offer's asset); `None` when free.
    pub price: Option<String>,
    pub summary: Option<String>,
}

impl RouteView {
    /// The views of `entries` under an offer whose own price is `offer_price`.
    pub fn list(entries: &[RouteEntry], offer_price: &str) -> Vec<RouteView> {
        entries
            .iter()
            .map(|e| RouteView::of(e, offer_price))
            .collect()
    }

    /// The view of `e` under an offer whose own price is `offer_price`.
    pub fn of(e: &RouteEntry, offer_price: &str) -> RouteView {
        let gate = e
            .gate
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .unwrap_or("paid")
            .to_string();
        let price = (gate != "free").then(|| match &e.price {
            Some(RoutePrice::Decimal(p)) => p.trim().to_string(),
            Some(RoutePrice::Object(o)) => o.per_request.trim().to_string(),
            None => offer_price.trim().to_string(),
        });
        RouteView {
            path: e.path.clone(),
            methods: e.methods.clone(),
            gate,
            price,
            summary: e.summary.clone(),
        }
    }
}

/// A route path's kind, after the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// `/x`: that path only (`/`: the offer's root).
    Exact,
    /// `/x/*`: `/x` and everything under it (`/*`: the whole offer).
    Subtree,
}

/// Checks a route path (see the module docs) and tells its kind.
pub fn check_path(path: &str) -> Result<PathKind, String> {
    let hint = "write /x for one path or /x/* for a subtree, e.g. /v1/chat/completions or /jobs/*";
    if path.is_empty() {
        return Err(format!("path is empty; {hint}"));
    }
    if path.chars().count() > MAX_PATH_LEN {
        return Err(format!(
            "path is longer than {MAX_PATH_LEN} characters; {hint}"
        ));
    }
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with '/'; {hint}"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '*' | '-')))
    {
        return Err(format!(
            "path {path:?} has {c:?}: only letters, digits and / _ . * - are allowed (no percent-encoding); {hint}"
        ));
    }
    if path == "/" {
        return Ok(PathKind::Exact);
    }
    let (body, kind) = match path.strip_suffix("/*") {
        Some(b) => (b, PathKind::Subtree),
        None => (path, PathKind::Exact),
    };
    if body.is_empty() {
        // `/*`
        return Ok(PathKind::Subtree);
    }
    for seg in body[1..].split('/') {
        match seg {
            "" => {
                return Err(format!(
                    "path {path:?} has an empty segment ('//' or a trailing '/'); {hint}"
                ));
            }
            "." | ".." => {
                return Err(format!(
                    "path {path:?} has a {seg:?} segment, which has no single meaning; {hint}"
                ));
            }
            s if s.contains('*') => {
                return Err(format!(
                    "path {path:?}: '*' is only allowed as the whole last segment (/x/*); {hint}"
                ));
            }
            _ => {}
        }
    }
    Ok(kind)
}

/// Checks a list of methods: known names in upper case, none twice.
pub fn check_methods(methods: &[String]) -> Result<Vec<http::Method>, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(methods.len());
    for m in methods {
        if !METHODS.contains(&m.as_str()) {
            return Err(format!("method {m:?} is not one of {}", METHODS.join(", ")));
        }
        if !seen.insert(m.as_str()) {
            return Err(format!("method {m} is listed twice"));
        }
        out.push(http::Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Checks a summary's length.
pub fn check_summary(summary: &str) -> Result<(), String> {
    let n = summary.chars().count();
    if n > MAX_SUMMARY_CHARS {
        return Err(format!(
            "summary has {n} characters; at most {MAX_SUMMARY_CHARS} are allowed"
        ));
    }
    Ok(())
}

/// The order of an offer's routes: most specific first. An exact path before any subtree;
/// then more literal segments first; then the longer path; then by text, so that the order
/// never depends on how the routes were written. With the table tried first-match-wins, the
/// most specific declared path that matches a request is the one that serves it.
pub fn specificity(path: &str, kind: PathKind) -> impl Ord + '_ {
    let literal = path.strip_suffix("/*").unwrap_or(path);
    let segments = literal.split('/').filter(|s| !s.is_empty()).count();
    (
        kind == PathKind::Subtree,
        Reverse(segments),
        Reverse(literal.len()),
        path,
    )
}

/// The request patterns a route path covers under the offer prefix `prefix` (the offer's
/// pattern without its `/*`, `""` for an offer at `/`). The root `/` is both `<prefix>` and
/// `<prefix>/`.
pub fn patterns_of(prefix: &str, path: &str) -> Vec<String> {
    if path == "/" && !prefix.is_empty() {
        vec![prefix.to_string(), format!("{prefix}/")]
    } else {
        vec![format!("{prefix}{path}")]
    }
}

/// Checks one entry's own fields (not the price against the asset: that is resolution's).
/// Returns its gate, methods and path kind.
pub fn check_entry(e: &RouteEntry) -> Result<(Gate, Vec<http::Method>, PathKind), Vec<String>> {
    let mut problems = Vec::new();
    let kind = check_path(&e.path).map_err(|m| problems.push(m)).ok();
    let methods = check_methods(&e.methods).map_err(|m| problems.push(m)).ok();
    let gate = parse_gate(e.gate.as_deref())
        .map_err(|m| problems.push(m))
        .ok();
    if gate == Some(Gate::Free) && e.price.is_some() {
        problems.push("a free route takes no price; remove price or use gate paid".to_string());
    }
    if let Some(p) = &e.price
        && let Err(m) = p.per_request()
    {
        problems.push(m);
    }
    if let Some(s) = &e.summary
        && let Err(m) = check_summary(s)
    {
        problems.push(m);
    }
    for k in e.extra.keys() {
        problems.push(format!(
            "unknown key {k:?} (a route has path, methods, gate, price, summary)"
        ));
    }
    match (gate, methods, kind) {
        (Some(g), Some(m), Some(k)) if problems.is_empty() => Ok((g, m, k)),
        _ => Err(problems),
    }
}

/// Checks the list as a whole: at most [`MAX_ROUTES`], no path twice.
pub fn check_list(entries: &[RouteEntry]) -> Vec<String> {
    let mut problems = Vec::new();
    if entries.len() > MAX_ROUTES {
        problems.push(format!(
            "{} routes declared; at most {MAX_ROUTES} are allowed",
            entries.len()
        ));
    }
    let mut seen = HashSet::new();
    for e in entries {
        if !seen.insert(e.path.as_str()) {
            problems.push(format!("path {:?} is declared twice", e.path));
        }
    }
    problems
}

/// The example every `--route` error shows.
pub const ROUTE_FLAG_EXAMPLE: &str = "--route \"path=/submit,methods=POST|GET,price=0.5,summary=Submit a job\" --route \"path=/jobs/*,gate=free\"";

/// Parses one `--route` value: `key=value` pairs separated by `,`, keys `path` (required),
/// `methods` (separated by `|`), `gate`, `price`, `summary`, each at most once. A summary
/// cannot hold a `,` here (write it in the offers file or the ServiceOffer instead).
pub fn parse_route_flag(s: &str) -> Result<RouteEntry, String> {
    let mut e = RouteEntry::default();
    let mut path = None;
    let mut seen = HashSet::new();
    for part in s.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!(
                "--route {s:?}: {part:?} is not key=value (keys: path, methods, gate, price, summary; a summary cannot contain ',')"
            ));
        };
        let key = key.trim();
        if !seen.insert(key.to_string()) {
            return Err(format!("--route {s:?}: {key} is given twice"));
        }
        let value = value.trim();
        match key {
            "path" => path = Some(value.to_string()),
            "methods" => {
                e.methods = value
                    .split('|')
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect();
            }
            "gate" => {
                parse_gate(Some(value)).map_err(|m| format!("--route {s:?}: {m}"))?;
                e.gate = Some(value.to_string());
            }
            "price" => e.price = Some(RoutePrice::Decimal(value.to_string())),
            "summary" => e.summary = Some(value.to_string()),
            other => {
                return Err(format!(
                    "--route {s:?}: unknown key {other:?} (keys: path, methods, gate, price, summary)"
                ));
            }
        }
    }
    e.path = path.ok_or_else(|| format!("--route {s:?} has no path=..."))?;
    check_entry(&e).map_err(|ps| format!("--route {s:?}: {}", ps.join("; ")))?;
    Ok(e)
}

/// Parses every `--route` value and checks the list (count, no path twice).
pub fn parse_route_flags(values: &[String]) -> Result<Vec<RouteEntry>, String> {
    let entries = values
        .iter()
        .map(|v| parse_route_flag(v))
        .collect::<Result<Vec<_>, _>>()?;
    let problems = check_list(&entries);
    if !problems.is_empty() {
        return Err(format!("--route: {}", problems.join("; ")));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_one_meaning_are_accepted() {
        for (p, k) in [
            ("/", PathKind::Exact),
            ("/*", PathKind::Subtree),
            ("/submit", PathKind::Exact),
            ("/v1/chat/completions", PathKind::Exact),
            ("/jobs/*", PathKind::Subtree),
            ("/a.json", PathKind::Exact),
            ("/a_b-c/d.e/*", PathKind::Subtree),
            ("/...", PathKind::Exact),
        ] {
            assert_eq!(check_path(p), Ok(k), "{p}");
        }
    }

    #[test]
    fn hostile_paths_are_refused_with_a_reason() {
        for (p, needle) in [
            ("", "empty"),
            ("submit", "start with '/'"),
            ("/..", "\"..\" segment"),
            ("/a/../b", "\"..\" segment"),
            ("/a/./b", "\".\" segment"),
            ("/./*", "\".\" segment"),
            ("//a", "empty segment"),
            ("/a//b", "empty segment"),
            ("/a/", "empty segment"),
            ("/a//*", "empty segment"),
            ("/%2e%2e/x", "'%'"),
            ("/a%2fb", "'%'"),
            ("/a b", "' '"),
            ("/a?x=1", "'?'"),
            ("/a\\b", "'\\\\'"),
            ("/é", "'é'"),
            ("/a*", "last segment"),
            ("/*/x", "last segment"),
            ("/a/**", "last segment"),
            ("/a/*/*", "last segment"),
        ] {
            let err = check_path(p).unwrap_err();
            assert!(err.contains(needle), "{p:?}: {err}");
            assert!(err.contains("/x/*"), "hint in {err}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert!(check_path(&long).unwrap_err().contains("longer than 512"));
        assert!(check_path(&format!("/{}", "a".repeat(MAX_PATH_LEN - 1))).is_ok());
    }

    #[test]
    fn gates() {
        assert_eq!(parse_gate(None), Ok(Gate::Paid));
        assert_eq!(parse_gate(Some("")), Ok(Gate::Paid));
        assert_eq!(parse_gate(Some("paid")), Ok(Gate::Paid));
        assert_eq!(parse_gate(Some("free")), Ok(Gate::Free));
        assert_eq!(
            parse_gate(Some("auth")).unwrap_err(),
            "gate auth is not supported yet by obol; use paid or free"
        );
        assert!(parse_gate(Some("Free")).unwrap_err().contains("not one of"));
        assert!(parse_gate(Some("undeclared")).is_err());
    }

    #[test]
    fn methods() {
        let m = |v: &[&str]| check_methods(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            m(&["GET", "POST"]).unwrap(),
            vec![http::Method::GET, http::Method::POST]
        );
        assert!(m(&[]).unwrap().is_empty());
        assert!(m(&["get"]).unwrap_err().contains("not one of"));
        assert!(m(&["TRACE"]).unwrap_err().contains("not one of"));
        assert!(m(&["CONNECT"]).is_err());
        assert!(m(&["GET", "GET"]).unwrap_err().contains("twice"));
    }

    #[test]
    fn order_is_most_specific_first_whatever_the_input_order() {
        let paths = [
            "/*",
            "/jobs/*",
            "/jobs/special",
            "/jobs/a/*",
            "/",
            "/submit",
            "/jobs",
            "/ab/*",
            "/a/*",
        ];
        let mut sorted: Vec<&str> = paths.to_vec();
        sorted.sort_by_key(|p| specificity(p, check_path(p).unwrap()));
        assert_eq!(
            sorted,
            [
                "/jobs/special",
                "/submit",
                "/jobs",
                "/",
                "/jobs/a/*",
                "/jobs/*",
                "/ab/*",
                "/a/*",
                "/*"
            ]
        );
        let mut reversed: Vec<&str> = paths.iter().rev().copied().collect();
        reversed.sort_by_key(|p| specificity(p, check_path(p).unwrap()));
        assert_eq!(reversed, sorted);
    }

    #[test]
    fn root_covers_the_offer_path_with_and_without_slash() {
        assert_eq!(
            patterns_of("/services/x", "/"),
            ["/services/x", "/services/x/"]
        );
        assert_eq!(patterns_of("", "/"), ["/"]);
        assert_eq!(patterns_of("/services/x", "/a/*"), ["/services/x/a/*"]);
        assert_eq!(patterns_of("", "/*"), ["/*"]);
    }

    #[test]
    fn route_flags_parse_strictly() {
        let e = parse_route_flag("path=/submit,methods=POST|GET,price=0.5,summary=Submit a job")
            .unwrap();
        assert_eq!(e.path, "/submit");
        assert_eq!(e.methods, ["POST", "GET"]);
        assert_eq!(e.price, Some(RoutePrice::Decimal("0.5".into())));
        assert_eq!(e.summary.as_deref(), Some("Submit a job"));
        assert_eq!(e.gate, None);
        let e = parse_route_flag("path=/jobs/*,gate=free").unwrap();
        assert_eq!(e.gate.as_deref(), Some("free"));

        for (v, needle) in [
            ("path=/a,colour=red", "unknown key \"colour\""),
            ("path=/a,path=/b", "path is given twice"),
            ("methods=GET", "no path"),
            (
                "path=/a,gate=auth",
                "gate auth is not supported yet by obol",
            ),
            ("path=/a,gate=maybe", "not one of paid, free"),
            ("path=/a,summary=one, two", "not key=value"),
            ("path=/a/..", "\"..\" segment"),
            ("path=/a,methods=GET|FETCH", "FETCH"),
            ("path=/a,gate=free,price=1", "free route takes no price"),
        ] {
            let err = parse_route_flag(v).unwrap_err();
            assert!(err.contains(needle), "{v}: {err}");
        }
        let err = parse_route_flags(&["path=/a".into(), "path=/a,gate=free".into()]).unwrap_err();
        assert!(err.contains("declared twice"), "{err}");
        let many: Vec<String> = (0..=MAX_ROUTES).map(|i| format!("path=/r{i}")).collect();
        let err = parse_route_flags(&many).unwrap_err();
        assert!(err.contains("129 routes declared; at most 128"), "{err}");
        assert_eq!(parse_route_flags(&many[..MAX_ROUTES]).unwrap().len(), 128);
    }

    #[test]
    fn entries_refuse_unknown_keys_and_bad_prices_shapes() {
        let e: RouteEntry = serde_yaml_ng::from_str(
            "path: /a\nfreeQuota: 5\nprice: {perRequest: '1', perMTok: '2'}\n",
        )
        .unwrap();
        let problems = check_entry(&e).unwrap_err().join("; ");
        assert!(problems.contains("unknown key \"freeQuota\""), "{problems}");
        assert!(
            problems.contains("price.perMTok is not supported"),
            "{problems}"
        );
        let e: RouteEntry = serde_yaml_ng::from_str("path: /a\nprice: {}\n").unwrap();
        assert!(check_entry(&e).unwrap_err()[0].contains("no perRequest"));
        let long = RouteEntry {
            path: "/a".into(),
            summary: Some("é".repeat(MAX_SUMMARY_CHARS + 1)),
            ..Default::default()
        };
        assert!(check_entry(&long).unwrap_err()[0].contains("301 characters"));
        let ok = RouteEntry {
            summary: Some("é".repeat(MAX_SUMMARY_CHARS)),
            ..long
        };
        assert!(check_entry(&ok).is_ok());
    }
}
