//! Discovery documents, all built from the registry: `/version`, legacy discovery (`/api`,
//! `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`), aggregated discovery
//! (`apidiscovery.k8s.io/v2` and `v2beta1` `APIGroupDiscoveryList`, what kubectl ≥ 1.30 asks for
//! first), and a minimal OpenAPI v3 (`/openapi/v3` index + one document per group/version with
//! the PATCH operations and their `fieldValidation` parameter, so kubectl leaves field
//! validation to the server; no schemas).

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::resources::{Registry, ResourceInfo};

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const SUB_VERBS: [&str; 3] = ["get", "patch", "update"];

pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string() }],
    })
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v }))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": { "groupVersion": format!("{name}/{}", versions[0]), "version": versions[0] },
    })
}

pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(&g, &vs))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let (g, vs) = reg
        .groups()
        .into_iter()
        .find(|(g, _)| g == group && !g.is_empty())?;
    let mut v = group_json(&g, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

/// `APIResourceList` for `group/version` (`group` empty for `/api/v1`).
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.in_group_version(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in &resources {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        list.push(e);
        if r.has_status(version) {
            list.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": SUB_VERBS,
            }));
        }
        if r.scale(version).is_some() {
            list.push(json!({
                "name": format!("{}/scale", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": SUB_VERBS,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list }),
    )
}

fn discovery_resource(r: &ResourceInfo, version: &str) -> Value {
    let kind = json!({ "group": r.group, "version": version, "kind": r.kind });
    let mut e = json!({
        "resource": r.plural,
        "responseKind": kind,
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    let mut subs = Vec::new();
    if r.has_status(version) {
        subs.push(json!({ "subresource": "status", "responseKind": kind, "verbs": SUB_VERBS }));
    }
    if r.scale(version).is_some() {
        subs.push(json!({
            "subresource": "scale",
            "responseKind": { "group": "autoscaling", "version": "v1", "kind": "Scale" },
            "verbs": SUB_VERBS,
        }));
    }
    if !subs.is_empty() {
        e["subresources"] = Value::Array(subs);
    }
    e
}

/// `APIGroupDiscoveryList` for `/api` (`core`) or `/apis`, in `apidiscovery.k8s.io/<av>`.
pub fn aggregated(reg: &Registry, core: bool, av: &str) -> Value {
    let items: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = reg
                        .in_group_version(&g, v)
                        .iter()
                        .map(|r| discovery_resource(r, v))
                        .collect();
                    json!({ "version": v, "resources": rs, "freshness": "Current" })
                })
                .collect();
            json!({ "metadata": { "name": g, "creationTimestamp": null }, "versions": vs })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{av}"),
        "metadata": {},
        "items": items,
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(s: &str) -> String {
    // FNV-1a, stable across runs; only used as a cache key by clients.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

pub fn openapi_v3_index(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, versions) in reg.groups() {
        for v in versions {
            let p = gv_path(&g, &v);
            let doc = openapi_v3_doc(reg, &g, &v).unwrap_or(Value::Null);
            paths.insert(
                p.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc.to_string())) }),
            );
        }
    }
    json!({ "paths": paths })
}

pub fn openapi_v3_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.in_group_version(group, version);
    if resources.is_empty() {
        return None;
    }
    let param = |name: &str| json!({ "name": name, "in": "query", "schema": { "type": "string", "uniqueItems": true } });
    let mut paths = serde_json::Map::new();
    for r in &resources {
        let base = format!("/{}", gv_path(group, version));
        let item = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let gvk = json!({ "group": r.group, "version": version, "kind": r.kind });
        let op = |action: &str| {
            json!({
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                "responses": { "200": { "description": "OK" } },
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(item, json!({ "patch": op("patch"), "put": op("put") }));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0-fake" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
