//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Every object carries a list of managers, each (manager, operation, subresource) with the set of
//! leaf field paths it owns. A leaf is a scalar, a list or an empty map: lists are *atomic* here
//! (the real apiserver tracks associative lists such as `containers` per element; owning a list
//! means owning all of it in the fake). Ordinary writes (create/update/patch) take ownership of
//! the fields they change (operation `Update`), and drop fields they remove from every manager.
//! Apply (operation `Apply`) merges the applied configuration into the live object, detects
//! conflicts with fields other managers own with a different value (409 unless `force`), takes
//! over conflicting fields when forced, and removes fields the same manager applied before but
//! omits now, unless someone else also owns them.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

pub type FieldPath = Vec<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: String,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: String,
    pub fields: BTreeSet<FieldPath>,
}

/// Which part of the object a write may touch.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// The resource has a `status` subresource (main writes do not own `.status`).
    pub has_status: bool,
    /// This write goes through `/status` (it owns only `.status`).
    pub status_only: bool,
}

impl Scope {
    pub fn subresource(&self) -> &'static str {
        if self.status_only { "status" } else { "" }
    }
}

/// metadata fields the server owns.
pub const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn excluded(path: &[String], scope: Scope) -> bool {
    let Some(first) = path.first() else {
        return false;
    };
    if first == "apiVersion" || first == "kind" {
        return true;
    }
    if first == "metadata" && path.len() >= 2 && SYSTEM_METADATA.contains(&path[1].as_str()) {
        return true;
    }
    if scope.status_only {
        return first != "status";
    }
    scope.has_status && first == "status"
}

/// `value` with the parts outside `scope` removed (identity, server-owned metadata, status).
pub fn scoped(value: &Value, scope: Scope) -> Value {
    let Some(m) = value.as_object() else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for (k, v) in m {
        let p = vec![k.clone()];
        if excluded(&p, scope) {
            continue;
        }
        if k == "metadata" {
            let meta: Map<String, Value> = v
                .as_object()
                .map(|mm| {
                    mm.iter()
                        .filter(|(mk, _)| !SYSTEM_METADATA.contains(&mk.as_str()))
                        .map(|(mk, mv)| (mk.clone(), mv.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if !meta.is_empty() {
                out.insert(k.clone(), Value::Object(meta));
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The leaf paths of an (already scoped) value.
pub fn leaf_paths(v: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect_leaves(v, &mut Vec::new(), &mut out);
    out
}

fn collect_leaves(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                collect_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(k)) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Removes maps left empty below depth 1 along `path` (e.g. `metadata.labels` after its last
/// label went), keeping top-level fields.
fn prune_empty_parents(v: &mut Value, path: &[String]) {
    for depth in (2..path.len()).rev() {
        let parent = &path[..depth];
        if get(v, parent).is_some_and(|p| p.as_object().is_some_and(Map::is_empty)) {
            remove_path(v, parent);
        } else {
            break;
        }
    }
}

/// Deep merge for apply: maps merge recursively, everything else replaces; `null` removes.
fn apply_merge(target: &mut Value, cfg: &Value) {
    let Value::Object(c) = cfg else {
        *target = cfg.clone();
        return;
    };
    if !target.is_object() || c.is_empty() {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if c.is_empty() {
            return;
        }
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in c {
        if v.is_null() {
            t.remove(k);
        } else {
            apply_merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn diff(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Vec<String>,
    changed: &mut Vec<FieldPath>,
    removed: &mut Vec<FieldPath>,
) {
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n))) if !o.is_empty() && !n.is_empty() => {
            for (k, nv) in n {
                path.push(k.clone());
                diff(o.get(k), Some(nv), path, changed, removed);
                path.pop();
            }
            for (k, ov) in o {
                if !n.contains_key(k) {
                    path.push(k.clone());
                    diff(Some(ov), None, path, changed, removed);
                    path.pop();
                }
            }
        }
        (Some(o), Some(n)) => {
            if o != n {
                if o.as_object().is_some_and(|m| !m.is_empty()) {
                    let mut sub = leaf_paths(o)
                        .into_iter()
                        .map(|p| [path.clone(), p].concat())
                        .collect();
                    removed.append(&mut sub);
                }
                let leaves = leaf_paths(n);
                if leaves.is_empty() {
                    changed.push(path.clone());
                } else {
                    changed.extend(leaves.into_iter().map(|p| [path.clone(), p].concat()));
                }
            }
        }
        (None, Some(n)) => {
            let leaves = leaf_paths(n);
            if leaves.is_empty() {
                changed.push(path.clone());
            } else {
                changed.extend(leaves.into_iter().map(|p| [path.clone(), p].concat()));
            }
        }
        (Some(o), None) => {
            let leaves = leaf_paths(o);
            if leaves.is_empty() {
                removed.push(path.clone());
            } else {
                removed.extend(leaves.into_iter().map(|p| [path.clone(), p].concat()));
            }
        }
        (None, None) => {}
    }
}

/// Records an `Update` by `manager` that turned `old` into `new`.
pub fn record_update(
    entries: &mut Vec<ManagerEntry>,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    api_version: &str,
    scope: Scope,
    now: &str,
) {
    let old_s = old.map(|o| scoped(o, scope));
    let new_s = scoped(new, scope);
    let (mut changed, mut removed) = (Vec::new(), Vec::new());
    diff(
        old_s.as_ref(),
        Some(&new_s),
        &mut Vec::new(),
        &mut changed,
        &mut removed,
    );
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    let sub = scope.subresource();
    for e in entries.iter_mut() {
        let other = e.manager != manager;
        e.fields.retain(|q| {
            let gone = removed.iter().any(|p| q.starts_with(p));
            let taken = other && changed.iter().any(|p| overlaps(p, q));
            !gone && !taken
        });
    }
    let pos = entries.iter().position(|e| {
        e.manager == manager && e.operation == Operation::Update && e.subresource == sub
    });
    let entry = match pos {
        Some(i) => &mut entries[i],
        None => {
            entries.push(ManagerEntry {
                manager: manager.into(),
                operation: Operation::Update,
                api_version: api_version.into(),
                time: now.into(),
                subresource: sub.into(),
                fields: BTreeSet::new(),
            });
            entries.last_mut().expect("pushed")
        }
    };
    entry.fields.extend(changed);
    entry.time = now.into();
    entry.api_version = api_version.into();
    entries.retain(|e| !e.fields.is_empty());
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub path: FieldPath,
}

impl Conflict {
    pub fn field(&self) -> String {
        format!(".{}", self.path.join("."))
    }

    pub fn with(&self) -> String {
        match self.operation {
            Operation::Apply => format!("conflict with {:?}", self.manager),
            Operation::Update => format!(
                "conflict with {:?} using {}",
                self.manager, self.api_version
            ),
        }
    }
}

/// Server-side apply of `config` by `manager` onto `live` (an empty object when creating).
/// Returns the merged object (server-owned metadata untouched), or the conflicts.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: &Value,
    entries: &mut Vec<ManagerEntry>,
    config: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    scope: Scope,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let cfg = scoped(config, scope);
    let new_set = leaf_paths(&cfg);
    let sub = scope.subresource();
    let is_self = |e: &ManagerEntry| {
        e.manager == manager && e.operation == Operation::Apply && e.subresource == sub
    };

    let mut conflicts = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !is_self(e) && e.manager != manager)
    {
        for q in &e.fields {
            for p in new_set.iter().filter(|p| overlaps(p, q)) {
                if get(live, p) != get(&cfg, p)
                    && !conflicts
                        .iter()
                        .any(|c: &Conflict| &c.path == p && c.manager == e.manager)
                {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        operation: e.operation,
                        api_version: e.api_version.clone(),
                        path: p.clone(),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for c in &conflicts {
        for e in entries.iter_mut().filter(|e| e.manager == c.manager) {
            e.fields.retain(|q| !overlaps(q, &c.path));
        }
    }

    let previous: BTreeSet<FieldPath> = entries
        .iter()
        .find(|e| is_self(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut result = live.clone();
    for p in previous.difference(&new_set) {
        let kept_by_other = entries
            .iter()
            .filter(|e| !is_self(e))
            .any(|e| e.fields.iter().any(|q| overlaps(p, q)));
        let still_applied = new_set.iter().any(|q| overlaps(p, q));
        if !kept_by_other && !still_applied {
            remove_path(&mut result, p);
            prune_empty_parents(&mut result, p);
        }
    }
    apply_merge(&mut result, &cfg);

    match entries.iter_mut().find(|e| is_self(e)) {
        Some(e) => {
            if e.fields != new_set {
                e.time = now.into();
            }
            e.fields = new_set;
            e.api_version = api_version.into();
        }
        None => entries.push(ManagerEntry {
            manager: manager.into(),
            operation: Operation::Apply,
            api_version: api_version.into(),
            time: now.into(),
            subresource: sub.into(),
            fields: new_set,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(result)
}

/// `metadata.managedFields` as the apiserver renders it (`fieldsType: FieldsV1`).
pub fn render(entries: &[ManagerEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut tree = Map::new();
                for p in &e.fields {
                    let mut cur = &mut tree;
                    for k in p {
                        cur = cur
                            .entry(format!("f:{k}"))
                            .or_insert_with(|| Value::Object(Map::new()))
                            .as_object_mut()
                            .expect("object");
                    }
                }
                let mut v = json!({
                    "manager": e.manager,
                    "operation": match e.operation { Operation::Apply => "Apply", Operation::Update => "Update" },
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": Value::Object(tree),
                });
                if !e.subresource.is_empty() {
                    v["subresource"] = json!(e.subresource);
                }
                v
            })
            .collect(),
    )
}

/// Human message for a 409 apply conflict, in the apiserver's wording.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    let n = conflicts.len();
    if n == 1 {
        let c = &conflicts[0];
        return format!("Apply failed with 1 conflict: {}: {}", c.with(), c.field());
    }
    let mut s = format!("Apply failed with {n} conflicts: ");
    let parts: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{}: {}", c.with(), c.field()))
        .collect();
    s.push_str(&parts.join("\n"));
    s
}
