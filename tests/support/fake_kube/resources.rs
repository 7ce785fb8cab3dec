//! The resource registry: which group/version/resource the fake serves, with scope, short names,
//! status subresource and printer columns. Built-in resources are fixed; custom resources appear
//! when a `CustomResourceDefinition` is stored and disappear when it is deleted.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::util::get_str;

/// Group + plural: the identity objects are stored under (versions share storage).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

/// How a table cell is computed.
#[derive(Clone)]
pub enum ColumnSource {
    /// A CRD `additionalPrinterColumns[].jsonPath` (simple JSONPath).
    JsonPath(String),
    /// A built-in printer.
    Builtin(fn(&Value) -> Value),
}

#[derive(Clone)]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub source: ColumnSource,
}

impl PrinterColumn {
    pub fn path(name: &str, type_: &str, path: &str) -> Self {
        PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            source: ColumnSource::JsonPath(path.into()),
        }
    }

    fn builtin(name: &str, type_: &str, f: fn(&Value) -> Value) -> Self {
        PrinterColumn {
            source: ColumnSource::Builtin(f),
            ..Self::path(name, type_, "")
        }
    }

    pub fn age() -> Self {
        Self::path("Age", "date", ".metadata.creationTimestamp")
    }
}

#[derive(Clone)]
pub struct ResourceVersion {
    pub name: String,
    pub status_subresource: bool,
    /// The `scale` subresource, when served.
    pub scale: Option<ScaleSubresource>,
    /// A CRD version's `schema.openAPIV3Schema` (`None` for built-ins).
    pub schema: Option<Value>,
    /// Columns after `Name`.
    pub columns: Vec<PrinterColumn>,
}

/// Where the `scale` subresource reads and writes (simple dotted paths, e.g. `.spec.replicas`).
#[derive(Clone, Debug)]
pub struct ScaleSubresource {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// Path of a string selector (CRDs); `None` for built-ins, whose selector is rendered from
    /// `.spec.selector.matchLabels`.
    pub label_selector: Option<String>,
}

impl ScaleSubresource {
    fn builtin() -> Self {
        ScaleSubresource {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        }
    }
}

#[derive(Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Served versions, most preferred first.
    pub versions: Vec<ResourceVersion>,
    /// Name of the CRD that registered it (`None` for built-ins).
    pub crd: Option<String>,
}

impl ResourceInfo {
    pub fn gr(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn version(&self, version: &str) -> Option<&ResourceVersion> {
        self.versions.iter().find(|v| v.name == version)
    }

    pub fn has_status(&self, version: &str) -> bool {
        self.version(version).is_some_and(|v| v.status_subresource)
    }

    pub fn scale(&self, version: &str) -> Option<&ScaleSubresource> {
        self.version(version).and_then(|v| v.scale.as_ref())
    }

    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }
}

/// Kubernetes version ordering: GA > beta > alpha > anything else, higher numbers first.
pub fn version_order(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> (u8, u64, u64, String) {
        let parse = |v: &str| -> Option<(u8, u64, u64)> {
            let rest = v.strip_prefix('v')?;
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let major: u64 = digits.parse().ok()?;
            let tail = &rest[digits.len()..];
            if tail.is_empty() {
                return Some((3, major, 0));
            }
            for (label, rank) in [("beta", 2u8), ("alpha", 1u8)] {
                if let Some(n) = tail.strip_prefix(label) {
                    return Some((rank, major, n.parse().ok()?));
                }
            }
            None
        };
        match parse(v) {
            Some((r, m, n)) => (r, m, n, String::new()),
            None => (0, 0, 0, v.to_string()),
        }
    }
    let (ka, kb) = (key(a), key(b));
    kb.0.cmp(&ka.0)
        .then(kb.1.cmp(&ka.1))
        .then(kb.2.cmp(&ka.2))
        .then(ka.3.cmp(&kb.3))
}

pub struct Registry {
    resources: Vec<Arc<ResourceInfo>>,
    /// Group names in discovery order (built-in groups first, then CRD groups as registered).
    group_order: Vec<String>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let resources: Vec<Arc<ResourceInfo>> = builtins().into_iter().map(Arc::new).collect();
        let mut group_order = Vec::new();
        for r in &resources {
            if !group_order.contains(&r.group) {
                group_order.push(r.group.clone());
            }
        }
        Registry {
            resources,
            group_order,
        }
    }

    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.resources
    }

    /// The resource serving `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural && r.version(version).is_some())
            .cloned()
    }

    /// The resource of `kind` served in `group/version`.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.kind == kind && r.version(version).is_some())
            .cloned()
    }

    pub fn by_gr(&self, gr: &GroupResource) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.group == gr.group && r.plural == gr.resource)
            .cloned()
    }

    /// Groups with their served versions (most preferred first), in discovery order. The core
    /// group is `""`.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        self.group_order
            .iter()
            .filter_map(|g| {
                let mut versions: Vec<String> = Vec::new();
                for r in self.resources.iter().filter(|r| &r.group == g) {
                    for v in &r.versions {
                        if !versions.contains(&v.name) {
                            versions.push(v.name.clone());
                        }
                    }
                }
                versions.sort_by(|a, b| version_order(a, b));
                (!versions.is_empty()).then(|| (g.clone(), versions))
            })
            .collect()
    }

    /// Resources served in `group/version`.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .filter(|r| r.group == group && r.version(version).is_some())
            .cloned()
            .collect()
    }

    /// Registers (or re-registers) the resource a CRD object describes. Errors are the CRD's
    /// validation failures as (field, message).
    pub fn register_crd(
        &mut self,
        crd: &Value,
    ) -> Result<Arc<ResourceInfo>, Vec<(String, String)>> {
        let info = Arc::new(parse_crd(crd)?);
        let name = info.crd.clone();
        if self
            .resources
            .iter()
            .any(|r| r.group == info.group && r.plural == info.plural && r.crd != name)
        {
            return Err(vec![(
                "spec.names.plural".into(),
                format!(
                    "{:?} is already served in group {:?}",
                    info.plural, info.group
                ),
            )]);
        }
        self.resources.retain(|r| r.crd.is_none() || r.crd != name);
        if !self.group_order.contains(&info.group) {
            self.group_order.push(info.group.clone());
        }
        self.resources.push(info.clone());
        Ok(info)
    }

    /// Removes the resource registered by the CRD named `crd_name`; returns it.
    pub fn unregister_crd(&mut self, crd_name: &str) -> Option<Arc<ResourceInfo>> {
        let pos = self
            .resources
            .iter()
            .position(|r| r.crd.as_deref() == Some(crd_name))?;
        let info = self.resources.remove(pos);
        if !self.resources.iter().any(|r| r.group == info.group) {
            self.group_order.retain(|g| g != &info.group);
        }
        Some(info)
    }
}

/// A `ResourceInfo` from an `apiextensions.k8s.io/v1` CustomResourceDefinition object.
pub fn parse_crd(crd: &Value) -> Result<ResourceInfo, Vec<(String, String)>> {
    let mut errs = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    if group.is_empty() {
        errs.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        errs.push(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        errs.push(("spec.names.kind".into(), "Required value".into()));
    }
    let expected = format!("{plural}.{group}");
    let name = get_str(crd, &["metadata", "name"]).unwrap_or_default();
    if errs.is_empty() && name != expected {
        errs.push((
            "metadata.name".into(),
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = spec["scope"].as_str().unwrap_or("Namespaced");
    if scope != "Namespaced" && scope != "Cluster" {
        errs.push((
            "spec.scope".into(),
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let mut versions = Vec::new();
    for (i, v) in spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(vname) = v["name"].as_str() else {
            errs.push((format!("spec.versions[{i}].name"), "Required value".into()));
            continue;
        };
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let mut columns: Vec<PrinterColumn> = Vec::new();
        if let Some(cols) = v["additionalPrinterColumns"].as_array() {
            for c in cols {
                let mut col = PrinterColumn::path(
                    c["name"].as_str().unwrap_or_default(),
                    c["type"].as_str().unwrap_or("string"),
                    c["jsonPath"].as_str().unwrap_or_default(),
                );
                col.format = c["format"].as_str().unwrap_or_default().into();
                col.description = c["description"].as_str().unwrap_or_default().into();
                col.priority = c["priority"].as_i64().unwrap_or(0);
                columns.push(col);
            }
        } else {
            // The apiserver's default when a CRD declares no printer columns.
            columns.push(PrinterColumn::age());
        }
        let schema = &v["schema"]["openAPIV3Schema"];
        if !schema.is_object() {
            errs.push((
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required".into(),
            ));
            continue;
        }
        versions.push(ResourceVersion {
            name: vname.to_string(),
            status_subresource: v["subresources"]["status"].is_object(),
            scale: v["subresources"]["scale"]
                .as_object()
                .map(|sc| ScaleSubresource {
                    spec_replicas: sc
                        .get("specReplicasPath")
                        .and_then(Value::as_str)
                        .unwrap_or(".spec.replicas")
                        .into(),
                    status_replicas: sc
                        .get("statusReplicasPath")
                        .and_then(Value::as_str)
                        .unwrap_or(".status.replicas")
                        .into(),
                    label_selector: sc
                        .get("labelSelectorPath")
                        .and_then(Value::as_str)
                        .map(String::from),
                }),
            schema: Some(schema.clone()),
            columns,
        });
    }
    if spec["versions"].as_array().is_none_or(|v| v.is_empty()) {
        errs.push((
            "spec.versions".into(),
            "Required value: must have exactly one version marked as storage version".into(),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    versions.sort_by(|a, b| version_order(&a.name, &b.name));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ResourceInfo {
        list_kind: names["listKind"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}List")),
        singular: names["singular"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        namespaced: scope == "Namespaced",
        crd: Some(name.to_string()),
        group,
        kind,
        plural,
        versions,
    })
}

// ---- built-ins -------------------------------------------------------------------------------

fn count_keys(obj: &Value, key: &str) -> Value {
    let n = obj[key].as_object().map_or(0, |m| m.len())
        + if key == "data" {
            obj["binaryData"].as_object().map_or(0, |m| m.len())
        } else {
            0
        };
    Value::from(n as i64)
}

fn secret_columns() -> Vec<PrinterColumn> {
    vec![
        PrinterColumn::path("Type", "string", ".type"),
        PrinterColumn::builtin("Data", "integer", |o| count_keys(o, "data")),
        PrinterColumn::age(),
    ]
}

fn configmap_columns() -> Vec<PrinterColumn> {
    vec![
        PrinterColumn::builtin("Data", "integer", |o| count_keys(o, "data")),
        PrinterColumn::age(),
    ]
}

fn deployment_columns() -> Vec<PrinterColumn> {
    vec![
        PrinterColumn::builtin("Ready", "string", |o| {
            let ready = o["status"]["readyReplicas"].as_i64().unwrap_or(0);
            let want = o["spec"]["replicas"].as_i64().unwrap_or(1);
            Value::from(format!("{ready}/{want}"))
        }),
        PrinterColumn::builtin("Up-to-date", "integer", |o| {
            Value::from(o["status"]["updatedReplicas"].as_i64().unwrap_or(0))
        }),
        PrinterColumn::builtin("Available", "integer", |o| {
            Value::from(o["status"]["availableReplicas"].as_i64().unwrap_or(0))
        }),
        PrinterColumn::age(),
    ]
}

fn namespace_columns() -> Vec<PrinterColumn> {
    vec![
        PrinterColumn::path("Status", "string", ".status.phase"),
        PrinterColumn::age(),
    ]
}

fn crd_columns() -> Vec<PrinterColumn> {
    vec![PrinterColumn::path(
        "Created At",
        "string",
        ".metadata.creationTimestamp",
    )]
}

struct B {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    columns: fn() -> Vec<PrinterColumn>,
}

fn default_columns() -> Vec<PrinterColumn> {
    vec![PrinterColumn::age()]
}

fn builtins() -> Vec<ResourceInfo> {
    #[rustfmt::skip]
    let table = [
        B { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, short: &["ns"], all: false, status: true, columns: namespace_columns },
        B { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, short: &[], all: false, status: false, columns: secret_columns },
        B { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, short: &["cm"], all: false, status: false, columns: configmap_columns },
        B { group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, short: &["svc"], all: true, status: true, columns: default_columns },
        B { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, short: &["sa"], all: false, status: false, columns: default_columns },
        B { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, short: &["po"], all: true, status: true, columns: default_columns },
        B { group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], all: false, status: false, columns: default_columns },
        B { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true, short: &["pvc"], all: false, status: true, columns: default_columns },
        B { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, short: &["deploy"], all: true, status: true, columns: deployment_columns },
        B { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, short: &["sts"], all: true, status: true, columns: default_columns },
        B { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true, short: &["ds"], all: true, status: true, columns: default_columns },
        B { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", namespaced: true, short: &["rs"], all: true, status: true, columns: default_columns },
        B { group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: true, short: &[], all: true, status: true, columns: default_columns },
        B { group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs", namespaced: true, short: &["cj"], all: true, status: true, columns: default_columns },
        B { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true, short: &[], all: false, status: false, columns: default_columns },
        B { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true, short: &[], all: false, status: false, columns: default_columns },
        B { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false, short: &[], all: false, status: false, columns: default_columns },
        B { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false, short: &[], all: false, status: false, columns: default_columns },
        B { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, short: &[], all: false, status: false, columns: default_columns },
        B { group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], all: false, status: false, columns: default_columns },
        B { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses", namespaced: true, short: &["ing"], all: false, status: true, columns: default_columns },
        B { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, short: &["crd", "crds"], all: false, status: true, columns: crd_columns },
    ];
    table
        .into_iter()
        .map(|b| ResourceInfo {
            group: b.group.into(),
            kind: b.kind.into(),
            list_kind: format!("{}List", b.kind),
            plural: b.plural.into(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| s.to_string()).collect(),
            categories: if b.all { vec!["all".into()] } else { vec![] },
            versions: vec![ResourceVersion {
                name: b.version.into(),
                status_subresource: b.status,
                scale: matches!(b.plural, "deployments" | "statefulsets" | "replicasets")
                    .then(ScaleSubresource::builtin),
                schema: None,
                columns: (b.columns)(),
            }],
            crd: None,
        })
        .collect()
}
