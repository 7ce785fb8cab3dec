//! `meta.k8s.io/v1` Table rendering for `kubectl get` (Accept `as=Table`), from a resource's
//! printer columns, and the simple JSONPath CRD printer columns use.

use serde_json::{Map, Value, json};

use super::resources::{ColumnSource, PrinterColumn, ResourceInfo};
use super::util::{human_duration, parse_rfc3339, unix_now};

/// What each row's `object` carries (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// `PartialObjectMetadata` for an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn columns(res: &ResourceInfo, version: &str) -> Vec<PrinterColumn> {
    res.version(version)
        .map(|v| v.columns.clone())
        .unwrap_or_else(|| vec![PrinterColumn::age()])
}

fn column_definitions(cols: &[PrinterColumn]) -> Value {
    let mut defs = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0,
    })];
    for c in cols {
        let description = if c.description.is_empty() {
            match &c.source {
                ColumnSource::JsonPath(p) => {
                    format!("Custom resource definition column (in JSONPath format): {p}")
                }
                ColumnSource::Builtin(_) => c.name.clone(),
            }
        } else {
            c.description.clone()
        };
        defs.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": description,
            "priority": c.priority,
        }));
    }
    Value::Array(defs)
}

fn cell(col: &PrinterColumn, obj: &Value) -> Value {
    let raw = match &col.source {
        ColumnSource::Builtin(f) => return f(obj),
        ColumnSource::JsonPath(p) => match JsonPath::parse(p) {
            Ok(jp) => jp.eval(obj).into_iter().next(),
            Err(_) => None,
        },
    };
    let Some(v) = raw else { return Value::Null };
    match col.type_.as_str() {
        "date" => match v.as_str().and_then(parse_rfc3339) {
            Some(t) => Value::from(human_duration(unix_now() - t)),
            None => Value::from("<invalid>"),
        },
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        "number" => v.as_f64().map_or(Value::Null, Value::from),
        "boolean" => v.as_bool().map_or(Value::Null, Value::from),
        _ => Value::from(match v {
            Value::String(s) => s,
            other => other.to_string(),
        }),
    }
}

/// A Table of `objects`. `list_meta` is the list's `metadata` (resourceVersion, continue).
pub fn render(
    res: &ResourceInfo,
    version: &str,
    objects: &[Value],
    include: IncludeObject,
    list_meta: Value,
    headers: bool,
) -> Value {
    let cols = columns(res, version);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![Value::from(
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )];
            cells.extend(cols.iter().map(|c| cell(c, o)));
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row.insert("object".into(), partial_metadata(o));
                }
                IncludeObject::Object => {
                    row.insert("object".into(), o.clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "rows": rows,
    });
    if headers {
        t["columnDefinitions"] = column_definitions(&cols);
    } else {
        t["columnDefinitions"] = json!([]);
    }
    t
}

/// The JSONPath subset printer columns use: `.a.b`, `['a.b']`, `[0]`, `[*]`, `..` is not
/// supported, filters `[?(@.type=="Ready")]` (`==`/`!=` with a string, number or bool literal),
/// and `\.` escapes inside a name (`.metadata.annotations.obol\.org/paused`).
#[derive(Debug, Clone)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        eq: bool,
        value: Value,
    },
}

impl JsonPath {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let mut s = expr.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            s = inner.trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let c: Vec<char> = s.chars().collect();
        let mut i = 0;
        let mut steps = Vec::new();
        while i < c.len() {
            match c[i] {
                '.' => {
                    i += 1;
                    let mut name = String::new();
                    while i < c.len() && c[i] != '.' && c[i] != '[' {
                        if c[i] == '\\' && i + 1 < c.len() {
                            i += 1;
                        }
                        name.push(c[i]);
                        i += 1;
                    }
                    if name == "*" {
                        steps.push(Step::All);
                    } else if !name.is_empty() {
                        steps.push(Step::Key(name));
                    }
                }
                '[' => {
                    let end = c[i..].iter().position(|&x| x == ']').ok_or("unclosed [")? + i;
                    let inner: String = c[i + 1..end].iter().collect();
                    let inner = inner.trim();
                    i = end + 1;
                    if inner == "*" {
                        steps.push(Step::All);
                    } else if let Some(q) = inner
                        .strip_prefix('\'')
                        .and_then(|x| x.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
                    {
                        steps.push(Step::Key(q.to_string()));
                    } else if let Some(f) =
                        inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')'))
                    {
                        steps.push(parse_filter(f)?);
                    } else {
                        steps.push(Step::Index(
                            inner
                                .parse()
                                .map_err(|_| format!("unsupported index {inner:?}"))?,
                        ));
                    }
                }
                other => return Err(format!("unexpected {other:?} in JSONPath {expr:?}")),
            }
        }
        Ok(JsonPath { steps })
    }

    pub fn eval(&self, root: &Value) -> Vec<Value> {
        let mut cur = vec![root.clone()];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in cur {
                match step {
                    Step::Key(k) => {
                        if let Some(x) = v.get(k) {
                            next.push(x.clone());
                        }
                    }
                    Step::Index(i) => {
                        if let Some(x) = v.get(*i) {
                            next.push(x.clone());
                        }
                    }
                    Step::All => match v {
                        Value::Array(a) => next.extend(a),
                        Value::Object(m) => next.extend(m.into_iter().map(|(_, x)| x)),
                        _ => {}
                    },
                    Step::Filter { path, eq, value } => {
                        for item in v.as_array().into_iter().flatten() {
                            let got = path.iter().try_fold(item, |c, k| c.get(k));
                            if (got == Some(value)) == *eq {
                                next.push(item.clone());
                            }
                        }
                    }
                }
            }
            cur = next;
        }
        cur
    }
}

fn parse_filter(f: &str) -> Result<Step, String> {
    let (lhs, eq, rhs) = if let Some((l, r)) = f.split_once("==") {
        (l, true, r)
    } else if let Some((l, r)) = f.split_once("!=") {
        (l, false, r)
    } else {
        return Err(format!("unsupported filter {f:?}"));
    };
    let lhs = lhs
        .trim()
        .strip_prefix("@.")
        .ok_or_else(|| format!("unsupported filter {f:?}"))?;
    let rhs = rhs.trim();
    let value = if let Some(s) = rhs
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| rhs.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
    {
        Value::from(s)
    } else {
        serde_json::from_str(rhs).map_err(|_| format!("unsupported filter literal {rhs:?}"))?
    };
    Ok(Step::Filter {
        path: lhs.split('.').map(String::from).collect(),
        eq,
        value,
    })
}
