//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!key`, `>`/`<`) and field selectors
//! (`=`, `==`, `!=` on a per-resource allow-list of fields), parsed from the query string.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Scanner {
            s: s.as_bytes(),
            i: 0,
        };
        let mut reqs = Vec::new();
        p.skip_ws();
        if p.eof() {
            return Ok(LabelSelector::default());
        }
        loop {
            p.skip_ws();
            let negated = p.eat("!");
            p.skip_ws();
            let key = p.ident();
            if key.is_empty() {
                return Err(format!(
                    "unable to parse requirement: invalid label key in {s:?}"
                ));
            }
            validate_key(&key)?;
            p.skip_ws();
            let op = if negated {
                LabelOp::DoesNotExist
            } else if p.eat("==") || p.eat("=") {
                p.skip_ws();
                LabelOp::Eq(value(&p.ident())?)
            } else if p.eat("!=") {
                p.skip_ws();
                LabelOp::NotEq(value(&p.ident())?)
            } else if p.eat(">") {
                p.skip_ws();
                LabelOp::Gt(
                    p.ident()
                        .parse()
                        .map_err(|_| format!("invalid selector {s:?}: `>` needs an integer"))?,
                )
            } else if p.eat("<") {
                p.skip_ws();
                LabelOp::Lt(
                    p.ident()
                        .parse()
                        .map_err(|_| format!("invalid selector {s:?}: `<` needs an integer"))?,
                )
            } else if p.eat_word("notin") {
                LabelOp::NotIn(p.set(s)?)
            } else if p.eat_word("in") {
                LabelOp::In(p.set(s)?)
            } else {
                LabelOp::Exists
            };
            reqs.push((key, op));
            p.skip_ws();
            if p.eof() {
                break;
            }
            if !p.eat(",") {
                return Err(format!(
                    "unable to parse requirement: found unexpected input in {s:?} at {}",
                    p.i
                ));
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = labels.get(k);
            match op {
                LabelOp::Eq(x) => v == Some(x),
                LabelOp::NotEq(x) => v != Some(x),
                LabelOp::In(xs) => v.is_some_and(|v| xs.contains(v)),
                LabelOp::NotIn(xs) => v.is_none_or(|v| !xs.contains(v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::DoesNotExist => v.is_none(),
                LabelOp::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                LabelOp::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    pub fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(&labels_of(obj))
    }
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn validate_key(k: &str) -> Result<(), String> {
    let name = k.rsplit('/').next().unwrap_or(k);
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "invalid label key {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.'"
        ));
    }
    Ok(())
}

fn value(v: &str) -> Result<String, String> {
    if v.len() > 63
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("invalid label value: {v:?}"));
    }
    Ok(v.to_string())
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while !self.eof() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    /// `in`/`notin` followed by whitespace or `(`.
    fn eat_word(&mut self, w: &str) -> bool {
        let rest = &self.s[self.i..];
        if rest.starts_with(w.as_bytes())
            && rest
                .get(w.len())
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'(')
        {
            self.i += w.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> String {
        let start = self.i;
        while !self.eof() && !b" \t,()=!<>".contains(&self.s[self.i]) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn set(&mut self, whole: &str) -> Result<Vec<String>, String> {
        self.skip_ws();
        if !self.eat("(") {
            return Err(format!(
                "unable to parse requirement: expected '(' in {whole:?}"
            ));
        }
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(")") {
                break;
            }
            let v = self.ident();
            out.push(value(&v)?);
            self.skip_ws();
            if self.eat(")") {
                break;
            }
            if !self.eat(",") {
                return Err(format!(
                    "unable to parse requirement: expected ',' or ')' in {whole:?}"
                ));
            }
        }
        Ok(out)
    }
}

/// A field selector: conjunction of `field=value`, `field==value`, `field!=value`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses `s`; each field must be in `allowed` (the apiserver answers 400 otherwise).
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_unescaped(s, ',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, eq, val) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if !allowed.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), eq, unescape(val.trim())));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, want)| {
            let mut cur = obj;
            for k in field.split('.') {
                cur = &cur[k];
            }
            let got = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }

    /// The `metadata.name` this selector pins, if any (used by watches on a single object).
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut esc = false;
    for c in s.chars() {
        if esc {
            out.last_mut().unwrap().push('\\');
            out.last_mut().unwrap().push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Fields the apiserver accepts in `fieldSelector` for a resource (`metadata.name` and
/// `metadata.namespace` everywhere, plus a few per-kind ones).
pub fn allowed_fields(group: &str, resource: &str) -> Vec<&'static str> {
    let mut v = vec!["metadata.name", "metadata.namespace"];
    match (group, resource) {
        ("", "secrets") => v.push("type"),
        ("", "pods") => v.extend([
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ]),
        ("", "namespaces") => v.push("status.phase"),
        ("", "events") | ("events.k8s.io", "events") => v.extend([
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
            "regarding.uid",
        ]),
        _ => {}
    }
    v
}
