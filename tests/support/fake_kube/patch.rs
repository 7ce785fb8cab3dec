//! The three PATCH flavours besides server-side apply:
//!
//! - JSON merge patch (RFC 7386), `application/merge-patch+json`;
//! - JSON patch (RFC 6902), `application/json-patch+json`: add, remove, replace, move, copy, test;
//! - strategic merge patch, `application/strategic-merge-patch+json`, for built-in kinds only
//!   (the apiserver rejects it for custom resources with 415). It is a merge patch plus: lists of
//!   objects with a known merge key (containers/env/volumes/... by `name`, volumeMounts by
//!   `mountPath`, ports by `containerPort`/`port`, ownerReferences by `uid`, conditions by
//!   `type`) are merged element-wise, `finalizers` is merged as a set, and the directives
//!   `$patch: replace|delete|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
//!   `$setElementOrder/<f>` are understood (the order directive is ignored). Other lists are
//!   replaced, as JSON merge patch does. The real merge keys come from Go struct tags; the table
//!   here covers the kinds obol writes.

use serde_json::{Map, Value};

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6902. Errors are human-readable and map to 422 (apply failure) by the caller.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch
        .as_array()
        .ok_or_else(|| "json patch must be an array of operations".to_string())?;
    for (i, op) in ops.iter().enumerate() {
        let name = op["op"]
            .as_str()
            .ok_or_else(|| format!("operation {i}: missing \"op\""))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| format!("operation {i}: missing \"path\""))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {i} ({name}): missing \"value\""))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| format!("operation {i} ({name}): missing \"from\""))
        };
        match name {
            "add" => pointer_add(target, path, value()?)?,
            "remove" => {
                pointer_remove(target, path)?;
            }
            "replace" => {
                let slot = target.pointer_mut(path).ok_or_else(|| {
                    format!("replace operation does not apply: doc is missing key: {path}")
                })?;
                *slot = value()?;
            }
            "move" => {
                let v = pointer_remove(target, from()?)?;
                pointer_add(target, path, v)?;
            }
            "copy" => {
                let v = target.pointer(from()?).cloned().ok_or_else(|| {
                    format!(
                        "copy operation does not apply: doc is missing from path: {}",
                        from().unwrap_or_default()
                    )
                })?;
                pointer_add(target, path, v)?;
            }
            "test" => {
                let want = value()?;
                if target.pointer(path) != Some(&want) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Err("empty path: cannot patch the whole document".into());
    }
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn pointer_add(target: &mut Value, path: &str, v: Value) -> Result<(), String> {
    let (parent, key) = split_pointer(path)?;
    let p = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("add operation does not apply: doc is missing path: {path:?}"))?;
    match p {
        Value::Object(m) => {
            m.insert(key, v);
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(v);
            } else {
                let i: usize = key
                    .parse()
                    .map_err(|_| format!("invalid array index {key:?}"))?;
                if i > a.len() {
                    return Err(format!(
                        "add operation does not apply: index {i} out of bounds"
                    ));
                }
                a.insert(i, v);
            }
        }
        _ => {
            return Err(format!(
                "add operation does not apply: {parent:?} is not a container"
            ));
        }
    }
    Ok(())
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, key) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path:?}");
    match target.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&key).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = key.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

/// The merge key of a list field, for strategic merge patch.
fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => {
            if sample.get("containerPort").is_some() {
                "containerPort"
            } else {
                "port"
            }
        }
        "ownerReferences" => "uid",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars merged as sets.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Strategic merge patch of `patch` into `target` (built-in kinds).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    smp_object(target, patch)
}

fn smp_object(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = strip_directives(&Value::Object(clean));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(cur @ Value::Object(_)), Value::Object(_)) => {
                smp_object(cur, v)?;
                if cur.is_null() {
                    t.remove(k);
                }
            }
            (Some(Value::Array(cur)), Value::Array(items)) => {
                merge_list(k, cur, items)?;
            }
            (_, Value::Object(o)) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            _ => {
                t.insert(k.clone(), strip_directives(v));
            }
        }
    }
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn merge_list(field: &str, cur: &mut Vec<Value>, items: &[Value]) -> Result<(), String> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *cur = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    if is_set_list(field) {
        for i in items {
            if !cur.contains(i) {
                cur.push(i.clone());
            }
        }
        return Ok(());
    }
    let key = items.first().and_then(|s| merge_key(field, s));
    let Some(key) = key.filter(|_| items.iter().all(Value::is_object)) else {
        *cur = items.iter().map(strip_directives).collect();
        return Ok(());
    };
    for item in items {
        let id = item.get(key).cloned().unwrap_or(Value::Null);
        let pos = cur.iter().position(|c| c.get(key) == Some(&id));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(pos) = pos {
                cur.remove(pos);
            }
            continue;
        }
        match pos {
            Some(pos) => smp_object(&mut cur[pos], item)?,
            None => cur.push(strip_directives(item)),
        }
    }
    Ok(())
}

/// A value with every `$...` directive key removed (for parts that are inserted wholesale).
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}
