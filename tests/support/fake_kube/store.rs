//! The object store: objects per group/resource, the global `resourceVersion`, field ownership,
//! the bounded watch-event history and the live event broadcast. All writes go through here, so
//! the rules (uid, timestamps, generation, status subresource, Secret `stringData`, finalizers,
//! owner-reference cascade, CRD registration) live in one place.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::fields::{self, ManagerEntry, Scope};
use super::resources::{GroupResource, Registry, ResourceInfo};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, Subject};
use super::util::{meta_mut, meta_str, now_rfc3339, random_suffix, uuid_v4};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and broadcast to watches.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub namespace: String,
    pub kind: EventType,
    pub object: Value,
    /// The previous state, for MODIFIED (selector transitions).
    pub old: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub object: Value,
    pub managers: Vec<ManagerEntry>,
}

type Key = (String, String);

/// A write's identity: which resource, which version the client spoke, and the URL namespace.
#[derive(Clone)]
pub struct Target {
    pub res: Arc<ResourceInfo>,
    pub version: String,
    pub namespace: Option<String>,
}

impl Target {
    fn subject(&self, name: &str) -> Subject {
        Subject::new(&self.res.group, &self.res.plural, name)
    }
    fn key(&self, name: &str) -> Key {
        (self.namespace.clone().unwrap_or_default(), name.to_string())
    }
    fn api_version(&self) -> String {
        self.res.api_version(&self.version)
    }
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// The `fieldValidation` query parameter: what to do with fields a custom resource's schema
/// does not know. They are pruned in every mode; `Warn` (the default) adds a `Warning` header,
/// `Strict` fails the request with 400.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// What a PATCH body means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply { force: bool },
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `Background` (default), `Foreground` (treated like Background: dependents are deleted
    /// synchronously) or `Orphan`.
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

pub enum Deleted {
    /// Removed now; the final state.
    Gone(Value),
    /// Still there with `deletionTimestamp`, waiting for finalizers.
    Pending(Value),
}

pub struct Store {
    pub registry: Registry,
    /// `Warning` texts produced by the current request (drained by the server).
    pub warnings: Vec<String>,
    objects: BTreeMap<GroupResource, BTreeMap<Key, Stored>>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Events with `rv <= floor` have been dropped from the history.
    floor: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut s = Store {
            registry: Registry::with_builtins(),
            warnings: Vec::new(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 0,
            tx,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            s.ensure_namespace(ns);
        }
        s
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Oldest resourceVersion a watch can resume from.
    pub fn history_floor(&self) -> u64 {
        self.floor
    }

    /// Subscribes to live events; with the current rv, under the same lock, so that nothing is
    /// lost between history replay and live events.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Event>>, u64) {
        (self.tx.subscribe(), self.rv)
    }

    /// History events with `rv > after`.
    pub fn history_after(&self, after: u64) -> Vec<Arc<Event>> {
        self.history
            .iter()
            .filter(|e| e.rv > after)
            .cloned()
            .collect()
    }

    fn namespace_res(&self) -> Arc<ResourceInfo> {
        self.registry
            .find("", "v1", "namespaces")
            .expect("namespaces built in")
    }

    fn ensure_namespace(&mut self, ns: &str) {
        let gr = GroupResource {
            group: String::new(),
            resource: "namespaces".into(),
        };
        if self
            .objects
            .get(&gr)
            .is_some_and(|m| m.contains_key(&(String::new(), ns.to_string())))
        {
            return;
        }
        let t = Target {
            res: self.namespace_res(),
            version: "v1".into(),
            namespace: None,
        };
        let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        let _ = self.create(
            &t,
            body,
            &WriteOpts {
                manager: "fake-kube".into(),
                ..Default::default()
            },
        );
    }

    // ---- reads -------------------------------------------------------------------------------

    pub fn get(&self, t: &Target, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&t.res.gr())
            .and_then(|m| m.get(&t.key(name)))
            .map(|s| s.object.clone())
            .ok_or_else(|| ApiError::not_found(&t.subject(name)))
    }

    /// Matching objects sorted by namespace/name, starting after `continue_after`, at most
    /// `limit`. Returns (items, next continue key, remaining count).
    pub fn list(
        &self,
        t: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_after: Option<(String, String)>,
    ) -> (Vec<Value>, Option<(String, String)>, usize) {
        let Some(m) = self.objects.get(&t.res.gr()) else {
            return (vec![], None, 0);
        };
        let all: Vec<(&Key, &Stored)> = m
            .iter()
            .filter(|(k, _)| t.namespace.as_ref().is_none_or(|ns| &k.0 == ns))
            .filter(|(k, _)| continue_after.as_ref().is_none_or(|c| *k > c))
            .filter(|(_, s)| labels.matches_object(&s.object) && fields.matches(&s.object))
            .collect();
        let n = limit
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX)
            .min(all.len());
        let next = (n < all.len()).then(|| all[n - 1].0.clone());
        let remaining = all.len() - n;
        (
            all[..n].iter().map(|(_, s)| s.object.clone()).collect(),
            next,
            remaining,
        )
    }

    // ---- writes ------------------------------------------------------------------------------

    fn check_type(t: &Target, body: &Value) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let kind = body["kind"].as_str().unwrap_or_default();
        let api_version = body["apiVersion"].as_str().unwrap_or_default();
        if (!kind.is_empty() && kind != t.res.kind)
            || (!api_version.is_empty() && api_version != t.api_version())
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({}) or the kind ({kind}) does not match {}",
                t.api_version(),
                t.res.kind
            )));
        }
        Ok(())
    }

    fn validate_name(t: &Target, name: &str) -> Result<(), ApiError> {
        let ok = if t.res.group == "rbac.authorization.k8s.io" {
            !name.is_empty()
                && !name.contains('/')
                && !name.contains('%')
                && name != "."
                && name != ".."
        } else if t.res.plural == "namespaces" {
            is_dns_label(name)
        } else {
            is_dns_subdomain(name)
        };
        if ok {
            return Ok(());
        }
        Err(ApiError::invalid(
            &t.subject(name),
            &t.res.kind,
            vec![(
                "metadata.name".into(),
                format!(
                    "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            )],
        ))
    }

    /// Kind-specific normalisation and validation, applied to every write's result.
    fn normalize(
        &mut self,
        t: &Target,
        obj: &mut Value,
        name: &str,
        fv: FieldValidation,
    ) -> Result<(), ApiError> {
        if let Some(schema) = t.res.version(&t.version).and_then(|v| v.schema.as_ref()) {
            let unknown = super::schema::prune_and_default(obj, schema);
            if !unknown.is_empty() {
                let fields: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                match fv {
                    FieldValidation::Strict => {
                        return Err(ApiError::bad_request(format!(
                            "{kind} in version {v:?} cannot be handled as a {kind}: strict decoding error: {}",
                            fields.join(", "),
                            kind = t.res.kind,
                            v = t.version,
                        )));
                    }
                    FieldValidation::Warn => self.warnings.extend(fields),
                    FieldValidation::Ignore => {}
                }
            }
            let errs = super::schema::validate(obj, schema);
            if !errs.is_empty() {
                let kind = format!("{}.{}", t.res.kind, t.res.group);
                return Err(ApiError::invalid(&t.subject(name), &kind, errs));
            }
        }
        match (t.res.group.as_str(), t.res.plural.as_str()) {
            ("", "secrets") => {
                if let Some(Value::Object(sd)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    let data = obj
                        .as_object_mut()
                        .expect("object")
                        .entry("data")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !data.is_object() {
                        *data = Value::Object(Map::new());
                    }
                    let data = data.as_object_mut().expect("object");
                    for (k, v) in sd {
                        let s = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        data.insert(k, Value::from(B64.encode(s.as_bytes())));
                    }
                }
                if let Some(data) = obj["data"].as_object() {
                    for (k, v) in data {
                        let ok = v.as_str().is_some_and(|s| B64.decode(s).is_ok());
                        if !ok {
                            return Err(ApiError::bad_request(format!(
                                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{k:?}]"
                            )));
                        }
                    }
                }
                if obj["type"].as_str().is_none_or(str::is_empty) {
                    obj["type"] = json!("Opaque");
                }
            }
            ("", "namespaces") => {
                if obj["status"]["phase"].is_null() {
                    obj["status"] = json!({ "phase": "Active" });
                }
                // The apiserver labels every namespace with its name.
                super::util::object_at(obj, &["metadata", "labels"])
                    .insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            ("apps", "deployments" | "statefulsets" | "replicasets")
                if obj["spec"].is_object() && obj["spec"]["replicas"].is_null() =>
            {
                obj["spec"]["replicas"] = json!(1);
            }
            ("", "services") if obj["spec"].is_object() && obj["spec"]["type"].is_null() => {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let info = super::resources::parse_crd(obj).map_err(|causes| {
                    ApiError::invalid(&t.subject(name), "CustomResourceDefinition", causes)
                })?;
                let storage = obj["spec"]["versions"]
                    .as_array()
                    .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
                    .and_then(|v| v["name"].as_str())
                    .unwrap_or(&info.versions[0].name)
                    .to_string();
                let now = now_rfc3339();
                let mut stored: Vec<Value> = obj["status"]["storedVersions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if !stored.contains(&json!(storage)) {
                    stored.push(json!(storage));
                }
                let keep_time = |ty: &str| -> String {
                    obj["status"]["conditions"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
                        .and_then(|c| c["lastTransitionTime"].as_str())
                        .map(String::from)
                        .unwrap_or_else(|| now.clone())
                };
                let status = json!({
                    "acceptedNames": {
                        "kind": info.kind,
                        "listKind": info.list_kind,
                        "plural": info.plural,
                        "singular": info.singular,
                        "shortNames": info.short_names,
                        "categories": info.categories,
                    },
                    "conditions": [
                        { "type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": keep_time("NamesAccepted") },
                        { "type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": keep_time("Established") },
                    ],
                    "storedVersions": stored,
                });
                obj["status"] = status;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `generation` should move from `old` to `new`: any change outside metadata (and
    /// outside status for resources with a status subresource).
    fn spec_changed(old: &Value, new: &Value, has_status: bool) -> bool {
        let strip = |v: &Value| -> Value {
            let mut m = v.as_object().cloned().unwrap_or_default();
            m.remove("metadata");
            m.remove("apiVersion");
            m.remove("kind");
            if has_status {
                m.remove("status");
            }
            Value::Object(m)
        };
        strip(old) != strip(new)
    }

    fn uses_generation(t: &Target, obj: &Value) -> bool {
        t.res.is_custom() || obj.get("spec").is_some()
    }

    /// POST.
    pub fn create(
        &mut self,
        t: &Target,
        mut body: Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        Self::check_type(t, &body)?;
        let name = match meta_str(&body, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&body, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", random_suffix(5)),
                None => {
                    return Err(ApiError::invalid(
                        &t.subject(""),
                        &t.res.kind,
                        vec![(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            },
        };
        Self::validate_name(t, &name)?;
        if t.res.namespaced {
            let url_ns = t.namespace.clone().unwrap_or_default();
            match meta_str(&body, "namespace").filter(|n| !n.is_empty()) {
                Some(ns) if ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
        }
        let key = t.key(&name);
        if self
            .objects
            .get(&t.res.gr())
            .is_some_and(|m| m.contains_key(&key))
        {
            return Err(ApiError::already_exists(&t.subject(&name)));
        }
        let has_status = t.res.has_status(&t.version);
        {
            let m = body.as_object_mut().expect("object");
            m.insert("apiVersion".into(), json!(t.api_version()));
            m.insert("kind".into(), json!(t.res.kind));
            if has_status {
                m.remove("status");
            }
        }
        let now = now_rfc3339();
        {
            let meta = meta_mut(&mut body);
            for k in fields::SYSTEM_METADATA {
                meta.remove(*k);
            }
            meta.insert("name".into(), json!(name));
            if t.res.namespaced {
                meta.insert("namespace".into(), json!(key.0));
            }
            meta.insert("uid".into(), json!(uuid_v4()));
            meta.insert("creationTimestamp".into(), json!(now));
        }
        if Self::uses_generation(t, &body) {
            meta_mut(&mut body).insert("generation".into(), json!(1));
        }
        self.normalize(t, &mut body, &name, opts.field_validation)?;
        let mut managers = Vec::new();
        let scope = Scope {
            has_status,
            status_only: false,
        };
        fields::record_update(
            &mut managers,
            None,
            &body,
            &opts.manager,
            &t.api_version(),
            scope,
            &now,
        );
        if opts.dry_run {
            return Ok(finish_object(body, &managers, self.rv));
        }
        if t.res.namespaced {
            self.ensure_namespace(&key.0);
        }
        Ok(self.commit(t, key, None, body, managers))
    }

    /// Creates from a server-side apply on a missing object.
    fn create_by_apply(
        &mut self,
        t: &Target,
        name: &str,
        cfg: &Value,
        opts: &WriteOpts,
        force: bool,
    ) -> Result<Value, ApiError> {
        let has_status = t.res.has_status(&t.version);
        let scope = Scope {
            has_status,
            status_only: false,
        };
        let mut managers = Vec::new();
        let now = now_rfc3339();
        let merged = fields::apply(
            &json!({}),
            &mut managers,
            cfg,
            &opts.manager,
            force,
            &t.api_version(),
            scope,
            &now,
        )
        .map_err(|c| apply_conflict(t, name, &c))?;
        let mut body = merged;
        meta_mut(&mut body).insert("name".into(), json!(name));
        // create() resets server metadata and records an Update; keep the Apply record instead.
        let created = self.create(
            t,
            body,
            &WriteOpts {
                dry_run: true,
                ..opts.clone()
            },
        )?;
        let mut obj = created;
        if opts.dry_run {
            return Ok(finish_object(obj, &managers, self.rv));
        }
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
            m.remove("resourceVersion");
        }
        let key = t.key(name);
        if t.res.namespaced {
            self.ensure_namespace(&key.0);
        }
        Ok(self.commit(t, key, None, obj, managers))
    }

    /// Stores `obj` (new or replacing `old`), bumps the resourceVersion and emits the event.
    fn commit(
        &mut self,
        t: &Target,
        key: Key,
        old: Option<Value>,
        obj: Value,
        managers: Vec<ManagerEntry>,
    ) -> Value {
        self.rv += 1;
        let obj = finish_object(obj, &managers, self.rv);
        let gr = t.res.gr();
        self.objects.entry(gr.clone()).or_default().insert(
            key.clone(),
            Stored {
                object: obj.clone(),
                managers,
            },
        );
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(gr, key.0, kind, obj.clone(), old);
        if t.res.crd.is_none() && t.res.plural == "customresourcedefinitions" {
            // The apiserver validated it in normalize(); register (or re-register) it.
            let _ = self.registry.register_crd(&obj);
        }
        obj
    }

    fn emit(
        &mut self,
        gr: GroupResource,
        namespace: String,
        kind: EventType,
        object: Value,
        old: Option<Value>,
    ) {
        let ev = Arc::new(Event {
            rv: self.rv,
            gr,
            namespace,
            kind,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.floor = e.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// PUT (`status_only` for `/status`).
    pub fn replace(
        &mut self,
        t: &Target,
        name: &str,
        body: Value,
        opts: &WriteOpts,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        Self::check_type(t, &body)?;
        if let Some(n) = meta_str(&body, "name").filter(|n| !n.is_empty())
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if t.res.namespaced
            && let Some(ns) = meta_str(&body, "namespace").filter(|n| !n.is_empty())
            && Some(ns) != t.namespace.as_deref()
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let stored = self.stored(t, name)?;
        if let Some(rv) = meta_str(&body, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&stored.object, "resourceVersion")
        {
            return Err(ApiError::stale(&t.subject(name)));
        }
        let scope = Scope {
            has_status: t.res.has_status(&t.version),
            status_only,
        };
        let mut managers = stored.managers.clone();
        let new = self.compose(t, &stored.object, body, scope, opts.field_validation)?;
        fields::record_update(
            &mut managers,
            Some(&stored.object),
            &new,
            &opts.manager,
            &t.api_version(),
            scope,
            &now_rfc3339(),
        );
        self.finish_update(t, name, stored, new, managers, opts.dry_run)
    }

    fn stored(&self, t: &Target, name: &str) -> Result<Stored, ApiError> {
        self.objects
            .get(&t.res.gr())
            .and_then(|m| m.get(&t.key(name)))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.subject(name)))
    }

    /// The object an update of `old` with `body` produces: server metadata kept, status or
    /// everything-but-status taken from `body` depending on `scope`.
    fn compose(
        &mut self,
        t: &Target,
        old: &Value,
        body: Value,
        scope: Scope,
        fv: FieldValidation,
    ) -> Result<Value, ApiError> {
        let mut new = if scope.status_only {
            let mut n = old.clone();
            match body.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    n.as_object_mut().expect("object").remove("status");
                }
            }
            n
        } else {
            let mut n = body;
            if scope.has_status {
                let m = n.as_object_mut().expect("object");
                match old.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
            n
        };
        let m = new.as_object_mut().expect("object");
        m.insert("apiVersion".into(), json!(t.api_version()));
        m.insert("kind".into(), json!(t.res.kind));
        let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
        let meta = meta_mut(&mut new);
        for k in fields::SYSTEM_METADATA {
            match old_meta.get(*k) {
                Some(v) => {
                    meta.insert((*k).to_string(), v.clone());
                }
                None => {
                    meta.remove(*k);
                }
            }
        }
        let name = old_meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.normalize(t, &mut new, &name, fv)?;
        Ok(new)
    }

    fn finish_update(
        &mut self,
        t: &Target,
        name: &str,
        stored: Stored,
        mut new: Value,
        managers: Vec<ManagerEntry>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = stored.object;
        let has_status = t.res.has_status(&t.version);
        if Self::uses_generation(t, &new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
            let g = if Self::spec_changed(&old, &new, has_status) || g == 0 {
                g + 1
            } else {
                g
            };
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let same = comparable(&old) == comparable(&new) && managers == stored.managers;
        if same {
            return Ok(old);
        }
        if dry_run {
            return Ok(finish_object(new, &managers, self.rv));
        }
        let finalizing = !new["metadata"]["deletionTimestamp"].is_null()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        if finalizing {
            // The last finalizer went: the object is deleted, watchers see only DELETED.
            if let Some(s) = self
                .objects
                .get_mut(&t.res.gr())
                .and_then(|m| m.get_mut(&t.key(name)))
            {
                s.object = finish_object(new, &managers, self.rv);
                s.managers = managers;
            }
            return Ok(self.remove_now(t, name, "Background"));
        }
        Ok(self.commit(t, t.key(name), Some(old), new, managers))
    }

    /// The `autoscaling/v1` Scale of a resource with a scale subresource.
    pub fn get_scale(&self, t: &Target, name: &str) -> Result<Value, ApiError> {
        let sc = t.res.scale(&t.version).ok_or_else(ApiError::no_route)?;
        let obj = self.get(t, name)?;
        let at = |path: &str| -> Value {
            path.trim_start_matches('.')
                .split('.')
                .fold(&obj, |v, k| &v[k])
                .clone()
        };
        let selector = match &sc.label_selector {
            Some(p) => at(p).as_str().unwrap_or_default().to_string(),
            None => obj["spec"]["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        };
        let meta = &obj["metadata"];
        let mut scale = json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": { "replicas": at(&sc.spec_replicas).as_i64().unwrap_or(0) },
            "status": { "replicas": at(&sc.status_replicas).as_i64().unwrap_or(0) },
        });
        if t.res.namespaced {
            scale["metadata"]["namespace"] = meta["namespace"].clone();
        }
        if !selector.is_empty() {
            scale["status"]["selector"] = json!(selector);
        }
        Ok(scale)
    }

    /// Writes `scale.spec.replicas` (and its resourceVersion precondition) back to the object.
    pub fn set_scale(
        &mut self,
        t: &Target,
        name: &str,
        scale: &Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        let sc = t
            .res
            .scale(&t.version)
            .cloned()
            .ok_or_else(ApiError::no_route)?;
        let stored = self.stored(t, name)?;
        if let Some(rv) = meta_str(scale, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&stored.object, "resourceVersion")
        {
            return Err(ApiError::stale(&t.subject(name)));
        }
        let replicas = scale["spec"]["replicas"].as_i64().ok_or_else(|| {
            ApiError::invalid(
                &t.subject(name),
                "Scale",
                vec![("spec.replicas".into(), "Required value".into())],
            )
        })?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                &t.subject(name),
                "Scale",
                vec![(
                    "spec.replicas".into(),
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                )],
            ));
        }
        let mut new = stored.object.clone();
        let keys: Vec<&str> = sc
            .spec_replicas
            .trim_start_matches('.')
            .split('.')
            .collect();
        let (last, parents) = keys.split_last().expect("non-empty path");
        super::util::object_at(&mut new, parents).insert(last.to_string(), json!(replicas));
        let scope = Scope {
            has_status: t.res.has_status(&t.version),
            status_only: false,
        };
        let mut managers = stored.managers.clone();
        fields::record_update(
            &mut managers,
            Some(&stored.object),
            &new,
            &opts.manager,
            &t.api_version(),
            scope,
            &now_rfc3339(),
        );
        self.finish_update(t, name, stored, new, managers, opts.dry_run)?;
        self.get_scale(t, name)
    }

    /// PATCH (`status_only` for `/status`). `patch` is the parsed body.
    pub fn patch(
        &mut self,
        t: &Target,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        opts: &WriteOpts,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let scope = Scope {
            has_status: t.res.has_status(&t.version),
            status_only,
        };
        let stored = match self.stored(t, name) {
            Ok(s) => s,
            Err(e) => {
                if let PatchKind::Apply { force } = kind
                    && !status_only
                {
                    Self::check_apply_body(t, name, patch)?;
                    return self.create_by_apply(t, name, patch, opts, force);
                }
                return Err(e);
            }
        };
        let old = &stored.object;
        let now = now_rfc3339();
        let mut managers = stored.managers.clone();
        let new = match kind {
            PatchKind::Apply { force } => {
                Self::check_apply_body(t, name, patch)?;
                if let Some(rv) = meta_str(patch, "resourceVersion").filter(|s| !s.is_empty())
                    && Some(rv) != meta_str(old, "resourceVersion")
                {
                    return Err(ApiError::stale(&t.subject(name)));
                }
                let merged = fields::apply(
                    old,
                    &mut managers,
                    patch,
                    &opts.manager,
                    force,
                    &t.api_version(),
                    scope,
                    &now,
                )
                .map_err(|c| apply_conflict(t, name, &c))?;
                self.compose(t, old, merged, scope, opts.field_validation)?
            }
            _ => {
                let mut target = old.clone();
                match kind {
                    PatchKind::Merge => super::patch::merge_patch(&mut target, patch),
                    PatchKind::Strategic => {
                        if t.res.is_custom() {
                            return Err(ApiError::unsupported_media_type("application/strategic-merge-patch+json"));
                        }
                        super::patch::strategic_merge_patch(&mut target, patch)
                            .map_err(|e| ApiError::invalid(&t.subject(name), &t.res.kind, vec![("patch".into(), e)]))?
                    }
                    PatchKind::Json => super::patch::json_patch(&mut target, patch)
                        .map_err(|e| ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}")))?,
                    PatchKind::Apply { .. } => unreachable!(),
                }
                if !target.is_object() {
                    return Err(ApiError::bad_request(
                        "the patch turned the object into a non-object",
                    ));
                }
                if meta_str(&target, "name") != Some(name) {
                    return Err(ApiError::invalid(
                        &t.subject(name),
                        &t.res.kind,
                        vec![(
                            "metadata.name".into(),
                            "Invalid value: field is immutable".into(),
                        )],
                    ));
                }
                if meta_str(&target, "resourceVersion") != meta_str(old, "resourceVersion") {
                    return Err(ApiError::stale(&t.subject(name)));
                }
                let new = self.compose(t, old, target, scope, opts.field_validation)?;
                fields::record_update(
                    &mut managers,
                    Some(old),
                    &new,
                    &opts.manager,
                    &t.api_version(),
                    scope,
                    &now,
                );
                new
            }
        };
        self.finish_update(t, name, stored, new, managers, opts.dry_run)
    }

    fn check_apply_body(t: &Target, name: &str, cfg: &Value) -> Result<(), ApiError> {
        if !cfg.is_object() {
            return Err(ApiError::bad_request("apply patch must be an object"));
        }
        let kind = cfg["kind"].as_str().unwrap_or_default();
        let av = cfg["apiVersion"].as_str().unwrap_or_default();
        if kind.is_empty() || av.is_empty() {
            return Err(ApiError::bad_request(format!(
                "invalid object type: {av}, Kind={kind}"
            )));
        }
        Self::check_type(t, cfg)?;
        if let Some(n) = meta_str(cfg, "name").filter(|n| !n.is_empty())
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        Ok(())
    }

    /// DELETE.
    pub fn delete(
        &mut self,
        t: &Target,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Deleted, ApiError> {
        let stored = self.stored(t, name)?;
        let obj = stored.object.clone();
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta_str(&obj, "uid")
        {
            return Err(ApiError::conflict(
                &t.subject(name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&obj, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != meta_str(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.subject(name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&obj, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        let has_finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if !obj["metadata"]["deletionTimestamp"].is_null() || opts.dry_run {
                return Ok(Deleted::Pending(obj));
            }
            let mut new = obj.clone();
            let meta = meta_mut(&mut new);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            let o = self.commit(t, t.key(name), Some(obj), new, stored.managers);
            return Ok(Deleted::Pending(o));
        }
        if opts.dry_run {
            return Ok(Deleted::Gone(obj));
        }
        let propagation = opts
            .propagation
            .clone()
            .unwrap_or_else(|| "Background".into());
        Ok(Deleted::Gone(self.remove_now(t, name, &propagation)))
    }

    /// Removes an object at once and cascades: CRD → its custom resources, Namespace → its
    /// objects, owner → dependents (deleted, or orphaned with `Orphan`).
    fn remove_now(&mut self, t: &Target, name: &str, propagation: &str) -> Value {
        let gr = t.res.gr();
        let key = t.key(name);
        let Some(stored) = self.objects.get_mut(&gr).and_then(|m| m.remove(&key)) else {
            return Value::Null;
        };
        self.rv += 1;
        let mut obj = stored.object;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.emit(
            gr.clone(),
            key.0.clone(),
            EventType::Deleted,
            obj.clone(),
            None,
        );

        if t.res.crd.is_none()
            && gr.resource == "customresourcedefinitions"
            && gr.group == "apiextensions.k8s.io"
            && let Some(info) = self.registry.unregister_crd(name)
        {
            let keys: Vec<Key> = self
                .objects
                .get(&info.gr())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let ct = Target {
                res: info.clone(),
                version: info.versions[0].name.clone(),
                namespace: None,
            };
            for k in keys {
                let ct = Target {
                    namespace: (!k.0.is_empty()).then(|| k.0.clone()),
                    ..ct.clone()
                };
                self.remove_now(&ct, &k.1, "Background");
            }
            self.objects.remove(&info.gr());
        }
        if gr.group.is_empty() && gr.resource == "namespaces" {
            let victims: Vec<(GroupResource, Key)> = self
                .objects
                .iter()
                .flat_map(|(g, m)| {
                    m.keys()
                        .filter(|k| k.0 == name)
                        .map(move |k| (g.clone(), k.clone()))
                })
                .collect();
            for (g, k) in victims {
                if let Some(res) = self.registry.by_gr(&g) {
                    let vt = Target {
                        version: res.versions[0].name.clone(),
                        res,
                        namespace: Some(k.0.clone()),
                    };
                    self.remove_now(&vt, &k.1, "Background");
                }
            }
        }
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
        let dependents: Vec<(GroupResource, Key)> = self
            .objects
            .iter()
            .flat_map(|(g, m)| {
                m.iter()
                    .filter(|(_, s)| {
                        s.object["metadata"]["ownerReferences"]
                            .as_array()
                            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == json!(uid)))
                    })
                    .map(move |(k, _)| (g.clone(), k.clone()))
            })
            .collect();
        for (g, k) in dependents {
            let Some(res) = self.registry.by_gr(&g) else {
                continue;
            };
            let dt = Target {
                version: res.versions[0].name.clone(),
                res,
                namespace: (!k.0.is_empty()).then(|| k.0.clone()),
            };
            if propagation == "Orphan" {
                let Ok(stored) = self.stored(&dt, &k.1) else {
                    continue;
                };
                let mut new = stored.object.clone();
                if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != json!(uid));
                    if refs.is_empty() {
                        meta_mut(&mut new).remove("ownerReferences");
                    }
                }
                let mut managers = stored.managers.clone();
                fields::record_update(
                    &mut managers,
                    Some(&stored.object),
                    &new,
                    "kube-controller-manager",
                    &dt.api_version(),
                    Scope {
                        has_status: dt.res.has_status(&dt.version),
                        status_only: false,
                    },
                    &now_rfc3339(),
                );
                let _ = self.finish_update(&dt, &k.1, stored, new, managers, false);
            } else {
                let _ = self.delete(
                    &dt,
                    &k.1,
                    &DeleteOpts {
                        propagation: Some("Background".into()),
                        ..Default::default()
                    },
                );
            }
        }
        obj
    }

    /// DELETE on a collection: deletes every match; returns the deleted objects.
    pub fn delete_collection(
        &mut self,
        t: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOpts,
    ) -> Vec<Value> {
        let (items, _, _) = self.list(t, labels, fields, None, None);
        let mut out = Vec::new();
        for item in items {
            let name = meta_str(&item, "name").unwrap_or_default().to_string();
            let ns = meta_str(&item, "namespace").map(String::from);
            let it = Target {
                namespace: ns,
                ..t.clone()
            };
            match self.delete(&it, &name, opts) {
                Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => out.push(o),
                Err(_) => {}
            }
        }
        out
    }
}

/// The object without the fields that change on every write.
fn comparable(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    c
}

/// Puts the rendered `managedFields` and the `resourceVersion` into the object.
fn finish_object(mut obj: Value, managers: &[ManagerEntry], rv: u64) -> Value {
    let meta = meta_mut(&mut obj);
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if managers.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), fields::render(managers));
    }
    obj
}

fn apply_conflict(t: &Target, name: &str, conflicts: &[fields::Conflict]) -> ApiError {
    let mut e = ApiError::new(409, "Conflict", fields::conflict_message(conflicts));
    let mut details = json!({ "name": name, "kind": t.res.plural });
    if !t.res.group.is_empty() {
        details["group"] = json!(t.res.group);
    }
    details["causes"] = Value::Array(
        conflicts
            .iter()
            .map(|c| json!({ "reason": "FieldManagerConflict", "message": c.with(), "field": c.field() }))
            .collect(),
    );
    e.details = Some(details);
    e
}
