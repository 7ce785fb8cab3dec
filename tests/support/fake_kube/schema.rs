//! What the apiserver does with a custom resource's structural schema (`openAPIV3Schema`) on
//! every write: prune fields the schema does not know (unless
//! `x-kubernetes-preserve-unknown-fields` or `additionalProperties`), drop `null`s of
//! non-nullable fields, apply `default`s, and validate `type`, `required`, `enum`, `minimum`/
//! `maximum`, `minLength`/`maxLength`, `minItems`/`maxItems` (and `x-kubernetes-int-or-string`).
//! Not covered: `pattern`, `format`, `anyOf`/`oneOf`/`allOf`/`not`, CEL
//! `x-kubernetes-validations`, list-type/map-type uniqueness. `metadata` is left alone.

use serde_json::{Map, Value};

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

/// Prunes and defaults the object in place (`apiVersion`, `kind` and `metadata` are kept as
/// they are). Returns the pruned unknown fields (`spec.bogus`), for `fieldValidation`.
pub fn prune_and_default(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    walk(obj, schema, "", &mut unknown);
    unknown
}

fn add_defaults(m: &mut Map<String, Value>, schema: &Value, path: &str) {
    if let Some(props) = schema["properties"].as_object() {
        for (k, s) in props {
            if !m.contains_key(k)
                && let Some(d) = s.get("default")
                && !(path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
            {
                let mut d = d.clone();
                walk(&mut d, s, &join(path, k), &mut Vec::new());
                m.insert(k.clone(), d);
            }
        }
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn walk(v: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if schema["x-kubernetes-embedded-resource"].as_bool() == Some(true) && preserves(schema)
            {
                return;
            }
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties");
            let keep_unknown =
                preserves(schema) || additional.is_some_and(|a| a == &Value::Bool(true));
            m.retain(|k, child| {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    return true;
                }
                let s = props
                    .and_then(|p| p.get(k))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match s {
                    Some(s) => {
                        if child.is_null() && s["nullable"].as_bool() != Some(true) {
                            return false;
                        }
                        walk(child, s, &join(path, k), unknown);
                        true
                    }
                    None if keep_unknown => true,
                    None => {
                        unknown.push(join(path, k));
                        false
                    }
                }
            });
            add_defaults(m, schema, path);
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, s, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Validation failures as (field path, message), in the apiserver's wording.
pub fn validate(obj: &Value, schema: &Value) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    if let (Some(m), Some(props)) = (obj.as_object(), schema["properties"].as_object()) {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(s) = props.get(k) {
                check(v, s, k, &mut errs);
            }
        }
        for r in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !m.contains_key(r) {
                errs.push((r.to_string(), "Required value".into()));
            }
        }
    }
    errs
}

fn check(v: &Value, s: &Value, path: &str, errs: &mut Vec<(String, String)>) {
    if v.is_null() {
        return;
    }
    let int_or_string = s["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if let Some(want) = s["type"].as_str() {
        let got = type_name(v);
        let ok = got == want
            || (want == "number" && got == "integer")
            || (int_or_string && (got == "integer" || got == "string"));
        if !ok {
            errs.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {path} in body must be of type {want}: {:?}",
                    show(v),
                    got
                ),
            ));
            return;
        }
    }
    if let Some(allowed) = s["enum"].as_array()
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(show).collect();
        errs.push((
            path.to_string(),
            format!(
                "Unsupported value: {}: supported values: {}",
                show(v),
                list.join(", ")
            ),
        ));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s["minimum"].as_f64()
            && n < min
        {
            errs.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {path} in body should be greater than or equal to {}",
                    show(v),
                    s["minimum"]
                ),
            ));
        }
        if let Some(max) = s["maximum"].as_f64()
            && n > max
        {
            errs.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {path} in body should be less than or equal to {}",
                    show(v),
                    s["maximum"]
                ),
            ));
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = s["minLength"].as_u64()
            && len < min
        {
            errs.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {path} in body should be at least {min} chars long",
                    show(v)
                ),
            ));
        }
        if let Some(max) = s["maxLength"].as_u64()
            && len > max
        {
            errs.push((
                path.to_string(),
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
    }
    match v {
        Value::Object(m) => {
            let props = s["properties"].as_object();
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                if let Some(cs) = props.and_then(|p| p.get(k)).or(additional) {
                    check(child, cs, &format!("{path}.{k}"), errs);
                }
            }
            for r in s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !m.contains_key(r) {
                    errs.push((format!("{path}.{r}"), "Required value".into()));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = s["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                errs.push((
                    path.to_string(),
                    format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        items.len()
                    ),
                ));
            }
            if let Some(max) = s["maxItems"].as_u64()
                && (items.len() as u64) > max
            {
                errs.push((
                    path.to_string(),
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item, is, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}
