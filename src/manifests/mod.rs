//! The Kubernetes objects `obol manifests` prints, as one YAML stream that
//! `kubectl apply -f -` accepts:
//!
//! 1. the CRDs `serviceoffers.obol.org` and `purchaserequests.obol.org` (from [`crate::k8s::crd`]);
//! 2. the verifier: Namespace, ServiceAccount, ClusterRole (ServiceOffers get/list/watch,
//!    `serviceoffers/status` patch, nothing else) and its binding, the ConfigMap `x402-pricing`
//!    (the base config: chain, facilitator, wallet), Deployment, Service `x402-verifier:8080`;
//! 3. the buyer sidecar's identity in namespace `llm`: ServiceAccount and Role `x402-buyer`
//!    (PurchaseRequests get/list/watch/patch, `purchaserequests/status` get/patch/update) and
//!    its binding, for `obol serve buyer --source kube`;
//! 4. monitoring (prometheus-operator): ServiceMonitor of the verifier, PodMonitor of the buyer
//!    pods (`app: x402-buyer`, port `buyer-http`), PrometheusRule whose groups are
//!    [`crate::earnings::RULES_YAML`];
//! 5. eRPC auth plumbing in namespace `erpc`: the Secret `obol-oauth-token` (no data: applying
//!    it again never clears a token), Role `oauth-token-writer` limited to that Secret, Role
//!    `erpc-restarter` limited to Deployment `erpc`, their bindings to ServiceAccount
//!    `obol-auth`, and the ConfigMap `erpc-obol-values` with the eRPC Helm values that read the
//!    token (`OBOL_OAUTH_TOKEN`) and send it upstream as `X-Nodecore-Token`.
//!
//! docs/kubernetes.md describes each object.

use serde_json::{Value, json};

use crate::k8s::crd;

/// Namespace of the eRPC release (obol-stack's).
pub const ERPC_NAMESPACE: &str = "erpc";
/// Secret holding the ID token eRPC sends upstream (key `token`).
pub const OAUTH_SECRET: &str = "obol-oauth-token";
/// Key of the token in [`OAUTH_SECRET`].
pub const OAUTH_SECRET_KEY: &str = "token";
/// Role allowed to write [`OAUTH_SECRET`] and nothing else.
pub const OAUTH_ROLE: &str = "oauth-token-writer";
/// Role allowed to restart the eRPC Deployment and nothing else.
pub const RESTART_ROLE: &str = "erpc-restarter";
/// ServiceAccount both roles are bound to (an in-cluster `obol auth refresh`).
pub const AUTH_SERVICE_ACCOUNT: &str = "obol-auth";
/// The eRPC Deployment restarted after a token change.
pub const ERPC_DEPLOYMENT: &str = "erpc";
/// Secret holding the OAuth client id/secret and refresh token for the in-cluster refresher.
pub const GRANT_SECRET: &str = "nodecore-oauth-refresh";
/// Role that may read and update only [`GRANT_SECRET`].
pub const GRANT_ROLE: &str = "oauth-grant-reader";
/// The in-cluster `obol auth refresh --watch` Deployment.
pub const AUTH_REFRESHER: &str = "obol-auth-refresher";
/// ConfigMap with the eRPC values snippet.
pub const ERPC_VALUES_CONFIGMAP: &str = "erpc-obol-values";
/// Environment variable eRPC reads the token from.
pub const TOKEN_ENV: &str = "OBOL_OAUTH_TOKEN";
/// Upstream header carrying the token (drpcorg/nodecore's static-token header).
pub const TOKEN_HEADER: &str = "X-Nodecore-Token";

/// Name of the verifier's Deployment, Service, ServiceAccount, ClusterRole, monitors.
pub const VERIFIER: &str = "x402-verifier";
/// Port of the verifier's Service and container (name `http`): the public listener (the paying
/// proxy), what an HTTPRoute may send buyers to.
pub const VERIFIER_PORT: u16 = 8080;
/// Port of the verifier's internal listener (name `internal`): ForwardAuth `/verify` and
/// `/metrics`, for the cluster network only (Traefik, Prometheus).
pub const VERIFIER_INTERNAL_PORT: u16 = 9090;
/// Label selecting the buyer pods the PodMonitor scrapes; also the name of the buyer's
/// ServiceAccount, Role and RoleBinding.
pub const BUYER_APP: &str = "x402-buyer";
/// Namespace of the buyer sidecar and its PurchaseRequests (obol-stack's `llm`).
pub const BUYER_NAMESPACE: &str = "llm";
/// Container port name of the buyer's metrics.
pub const BUYER_PORT_NAME: &str = "buyer-http";
/// Where the ConfigMap `x402-pricing` is mounted.
pub const PRICING_MOUNT: &str = "/config";

/// What `obol manifests` renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Namespace of the verifier (default `x402`).
    pub namespace: String,
    /// Container image of obol.
    pub image: String,
    /// `chain` of the base config (default: the verifier's, base-sepolia).
    pub chain: Option<String>,
    /// `facilitatorURL` of the base config (default: the verifier's).
    pub facilitator: Option<String>,
    /// `wallet` of the base config: payTo of offers that name none.
    pub wallet: Option<String>,
    /// Include ServiceMonitor, PodMonitor and PrometheusRule (needs prometheus-operator).
    pub monitoring: bool,
    /// Include the eRPC Secret, roles, bindings and values ConfigMap.
    pub erpc: bool,
    /// Include the in-cluster `obol auth refresh --watch` Deployment and its grant-reader Role.
    pub auth_refresher: bool,
    /// `verifyOnly: true` in the base config: forward-auth offers are granted without payment.
    pub verify_only: bool,
    /// Verifier replicas (more than one needs `state`).
    pub replicas: u16,
    /// A shared payment-state store (`redis://…`, `rediss://…`), put in a Secret; `None`: the
    /// embedded file on a PersistentVolumeClaim.
    pub state: Option<String>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            namespace: "x402".into(),
            image: default_image(),
            chain: None,
            facilitator: None,
            wallet: None,
            monitoring: true,
            erpc: true,
            auth_refresher: false,
            verify_only: false,
            replicas: 1,
            state: None,
        }
    }
}

/// `ghcr.io/obolnetwork/obol:<this version>`.
pub fn default_image() -> String {
    format!("ghcr.io/obolnetwork/obol:{}", env!("CARGO_PKG_VERSION"))
}

/// Bad options for `obol manifests`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("namespace `{0}` is not a valid name (lowercase letters, digits and '-', at most 63)")]
    Namespace(String),
    #[error("image `{0}` is not a container image reference")]
    Image(String),
    #[error("wallet `{0}` is not an address (0x and 40 hex digits)")]
    Wallet(String),
    #[error("the built-in rules file is not valid YAML with `groups`: {0}")]
    Rules(String),
    #[error("--state must be a redis:// or rediss:// URL ({0})")]
    State(String),
    #[error(
        "--replicas {0} needs a shared payment-state store: replicas on one file would each keep their own record of used payments"
    )]
    Replicas(u16),
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// One object of the stream with the comment printed above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub comment: &'static str,
    pub object: Value,
    /// The YAML printed for `object` when it is not plain serialization (it parses to
    /// `object`): the PrometheusRule keeps the rules file's text and comments.
    pub text: Option<String>,
}

/// Every object, in apply order (CRDs and Namespaces first).
pub fn objects(opts: &ManifestOptions) -> Result<Vec<Manifest>, ManifestError> {
    if !is_dns_label(&opts.namespace) {
        return Err(ManifestError::Namespace(opts.namespace.clone()));
    }
    if opts.image.is_empty() || opts.image.chars().any(char::is_whitespace) {
        return Err(ManifestError::Image(opts.image.clone()));
    }
    if let Some(w) = &opts.wallet
        && !crd::is_address(w)
    {
        return Err(ManifestError::Wallet(w.clone()));
    }
    let shared = match &opts.state {
        None => false,
        Some(url) => match crate::verifier::store::StoreSpec::parse(url) {
            Ok(crate::verifier::store::StoreSpec::Redis(_)) => true,
            Ok(other) => return Err(ManifestError::State(format!("got {other}"))),
            // The message names what is wrong, never the URL (it may hold a password).
            Err(e) => return Err(ManifestError::State(e.to_string())),
        },
    };
    if opts.replicas == 0 || (opts.replicas > 1 && !shared) {
        return Err(ManifestError::Replicas(opts.replicas));
    }
    let m = |comment, object| Manifest {
        comment,
        object,
        text: None,
    };
    let ns = opts.namespace.as_str();
    let mut out = Vec::new();
    for c in crd::all() {
        let object = serde_json::to_value(&c).expect("a CRD serializes");
        out.push(m("CRD generated from obol's Rust types (src/k8s).", object));
    }
    out.push(m("Namespace of the verifier.", namespace(ns)));
    out.extend([
        m("Identity of the verifier pod.", service_account(ns)),
        m(
            "The verifier reads ServiceOffers (all namespaces) and writes their status conditions; nothing else.",
            cluster_role(),
        ),
        m("", cluster_role_binding(ns)),
        m(
            "Base config of the verifier (chain, facilitator, wallet); routes come from ServiceOffers.",
            pricing_config_map(opts),
        ),
    ]);
    let mut verifier = deployment(ns, &opts.image);
    match &opts.state {
        None => out.push(m(
            "The verifier's payment state (used payments, settlements in flight), kept across pod restarts.",
            state_volume_claim(ns),
        )),
        Some(url) => {
            shared_state(&mut verifier, opts.replicas);
            out.push(m(
                "The URL of the payment-state store the verifier replicas share (may hold its password).",
                state_secret(ns, url),
            ));
            if opts.replicas > 1 {
                out.push(m(
                    "Keeps one verifier serving through voluntary disruptions (node drains).",
                    disruption_budget(ns),
                ));
            }
        }
    }
    out.extend([
        m(
            "The x402 payment gate: the paying proxy HTTPRoutes send buyers to (port 8080), Traefik forwardAuth /verify and /metrics (port 9090).",
            verifier,
        ),
        m(
            "Port http (8080): the paying proxy. Port internal (9090): forwardAuth /verify (what Traefik's Middlewares call: http://x402-verifier.<ns>.svc:9090/verify) and /metrics; never route buyers to it.",
            service(ns),
        ),
    ]);
    out.extend([
        m("Namespace of the buyer sidecar and its PurchaseRequests.", namespace(BUYER_NAMESPACE)),
        m(
            "Identity of the buyer sidecar pod (`obol serve buyer --source kube`).",
            buyer_service_account(),
        ),
        m(
            "The buyer reads its namespace's PurchaseRequests, writes their status and appends refilled authorizations; nothing else.",
            buyer_role(),
        ),
        m("", buyer_role_binding()),
    ]);
    if opts.monitoring {
        out.extend([
            m(
                "Prometheus (kube-prometheus-stack, release `monitoring`) scrapes the verifier.",
                service_monitor(ns),
            ),
            m(
                "Prometheus scrapes every buyer pod (label app: x402-buyer, port buyer-http) in any namespace.",
                pod_monitor(ns),
            ),
            prometheus_rule(ns)?,
        ]);
    }
    if opts.erpc {
        out.extend([
            m("Namespace of the eRPC release.", namespace(ERPC_NAMESPACE)),
            m(
                "The ID token `obol auth login` writes (key `token`). No data here: applying again never clears it.",
                oauth_secret(),
            ),
            m(
                "Who may run `obol auth refresh` in the cluster (bind your own users to the roles below too).",
                auth_service_account(),
            ),
            m(
                "May write the token Secret and nothing else.",
                oauth_role(),
            ),
            m("", role_binding(OAUTH_ROLE)),
            m(
                "May restart eRPC (so it re-reads ${OBOL_OAUTH_TOKEN}) and nothing else.",
                restart_role(),
            ),
            m("", role_binding(RESTART_ROLE)),
            m(
                "eRPC Helm values: merge values.yaml into your eRPC release (see docs/kubernetes.md).",
                erpc_values_config_map(),
            ),
        ]);
        if opts.auth_refresher {
            out.extend([
                m(
                    "May read the OAuth grant Secret (client id/secret, refresh token) and write back a rotated refresh token.",
                    grant_role(),
                ),
                m("", role_binding(GRANT_ROLE)),
                m(
                    "Keeps the ID token fresh: `obol auth refresh --watch --from-secret erpc/nodecore-oauth-refresh`.",
                    auth_refresher_deployment(&opts.image),
                ),
            ]);
        }
    }
    Ok(out)
}

/// The whole stream: a header comment, then each object as a YAML document.
pub fn render_yaml(opts: &ManifestOptions) -> Result<String, ManifestError> {
    let mut out = format!(
        "# Kubernetes manifests for obol {} (x402 payment gate, CRDs, monitoring, eRPC auth).\n\
         # Apply: obol manifests | kubectl apply -f -        Docs: docs/kubernetes.md\n",
        env!("CARGO_PKG_VERSION")
    );
    for doc in objects(opts)? {
        out.push_str("---\n");
        if !doc.comment.is_empty() {
            out.push_str("# ");
            out.push_str(doc.comment);
            out.push('\n');
        }
        match &doc.text {
            Some(text) => out.push_str(text),
            None => {
                out.push_str(&serde_yaml_ng::to_string(&doc.object).expect("JSON values serialize"))
            }
        }
    }
    Ok(out)
}

fn labels(app: &str) -> Value {
    json!({
        "app": app,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "obol",
        "app.kubernetes.io/managed-by": "obol-manifests",
    })
}

fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name},
    })
}

fn service_account(ns: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": VERIFIER, "namespace": ns, "labels": labels(VERIFIER)},
    })
}

fn cluster_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": VERIFIER, "labels": labels(VERIFIER)},
        "rules": [
            {
                "apiGroups": ["obol.org"],
                "resources": ["serviceoffers"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "apiGroups": ["obol.org"],
                "resources": ["serviceoffers/status"],
                "verbs": ["patch"],
            },
        ],
    })
}

fn cluster_role_binding(ns: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": VERIFIER, "labels": labels(VERIFIER)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": VERIFIER,
        },
        "subjects": [{"kind": "ServiceAccount", "name": VERIFIER, "namespace": ns}],
    })
}

fn pricing_config_map(opts: &ManifestOptions) -> Value {
    let mut text = String::from(
        "# Base config of `obol serve verifier --route-source kube`: routes come from\n\
         # ServiceOffers; these keys apply to offers that leave them empty.\n",
    );
    if let Some(w) = &opts.wallet {
        text.push_str(&format!("wallet: \"{w}\"\n"));
    }
    if let Some(c) = &opts.chain {
        text.push_str(&format!("chain: {}\n", yaml_scalar(c)));
    }
    if let Some(f) = &opts.facilitator {
        text.push_str(&format!("facilitatorURL: {}\n", yaml_scalar(f)));
    }
    if opts.verify_only {
        text.push_str(
            "# verifyOnly: true grants forward-auth offers WITHOUT payment (nothing is settled).\n\
             verifyOnly: true\n",
        );
    } else {
        text.push_str(
            "# Forward-auth offers are settled before they are granted; proxy offers (the\n\
             # default) after the upstream answered 2xx.\n\
             verifyOnly: false\n",
        );
    }
    text.push_str("routes: []\n");
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x402-pricing", "namespace": opts.namespace, "labels": labels(VERIFIER)},
        "data": {"pricing.yaml": text},
    })
}

fn yaml_scalar(s: &str) -> String {
    serde_yaml_ng::to_string(s)
        .map(|y| y.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// The PersistentVolumeClaim of the verifier's payment-state file.
const STATE_CLAIM: &str = "x402-verifier-state";
const STATE_MOUNT: &str = "/var/lib/obol";

fn state_volume_claim(ns: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": STATE_CLAIM, "namespace": ns, "labels": labels(VERIFIER)},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "256Mi"}},
        },
    })
}

/// The Secret holding `--state` for the replicas (`OBOL_STATE`).
const STATE_SECRET: &str = "x402-verifier-state";

fn state_secret(ns: &str, url: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": STATE_SECRET, "namespace": ns, "labels": labels(VERIFIER)},
        "type": "Opaque",
        "stringData": {"url": url},
    })
}

fn disruption_budget(ns: &str) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": VERIFIER, "namespace": ns, "labels": labels(VERIFIER)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": VERIFIER}}},
    })
}

/// Turns the one-replica Deployment with the state file into `replicas` sharing the store named
/// by the Secret: no state volume, `OBOL_STATE` from the Secret, rolling updates.
fn shared_state(d: &mut Value, replicas: u16) {
    d["spec"]["replicas"] = json!(replicas);
    d["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    let pod = &mut d["spec"]["template"]["spec"];
    if let Some(v) = pod["volumes"].as_array_mut() {
        v.retain(|v| v["name"] != "state");
    }
    let c = &mut pod["containers"][0];
    if let Some(m) = c["volumeMounts"].as_array_mut() {
        m.retain(|m| m["name"] != "state");
    }
    if let Some(args) = c["args"].as_array_mut()
        && let Some(i) = args.iter().position(|a| a == "--state")
    {
        args.drain(i..i + 2);
    }
    if let Some(env) = c["env"].as_array_mut() {
        env.push(json!({
            "name": "OBOL_STATE",
            "valueFrom": {"secretKeyRef": {"name": STATE_SECRET, "key": "url"}},
        }));
    }
}

fn deployment(ns: &str, image: &str) -> Value {
    let selector = json!({"app": VERIFIER});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": VERIFIER,
            "namespace": ns,
            "labels": labels(VERIFIER),
        },
        "spec": {
            // One replica with the embedded payment-state file (one writer: Recreate, never two
            // pods on the file); several replicas need a shared store (--state redis://).
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(VERIFIER)},
                "spec": {
                    "serviceAccountName": VERIFIER,
                    "automountServiceAccountToken": true,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                        // The state volume is writable by the verifier's group.
                        "fsGroup": 65532,
                    },
                    "containers": [{
                        "name": "verifier",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": [
                            "serve", "verifier",
                            "--route-source", "kube",
                            "--listen", format!(":{VERIFIER_PORT}"),
                            "--internal-listen", format!(":{VERIFIER_INTERNAL_PORT}"),
                            "--state", format!("{STATE_MOUNT}/payment-state.redb"),
                        ],
                        "env": [
                            {"name": "OBOL_OFFERS_FILE", "value": format!("{PRICING_MOUNT}/pricing.yaml")},
                            {"name": "OBOL_LOG_FORMAT", "value": "json"},
                            {"name": "HOME", "value": "/tmp"},
                        ],
                        "ports": [
                            {"name": "http", "containerPort": VERIFIER_PORT, "protocol": "TCP"},
                            {"name": "internal", "containerPort": VERIFIER_INTERNAL_PORT, "protocol": "TCP"},
                        ],
                        "readinessProbe": {
                            "httpGet": {"path": "/readyz", "port": "http"},
                            "initialDelaySeconds": 3,
                            "periodSeconds": 5,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "initialDelaySeconds": 10,
                            "periodSeconds": 10,
                        },
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "32Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [
                            {"name": "pricing", "mountPath": PRICING_MOUNT, "readOnly": true},
                            {"name": "tmp", "mountPath": "/tmp"},
                            {"name": "state", "mountPath": STATE_MOUNT},
                        ],
                    }],
                    "volumes": [
                        {"name": "pricing", "configMap": {"name": "x402-pricing", "optional": true}},
                        {"name": "state", "persistentVolumeClaim": {"claimName": STATE_CLAIM}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    })
}

fn service(ns: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": VERIFIER, "namespace": ns, "labels": labels(VERIFIER)},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": VERIFIER},
            "ports": [
                {"name": "http", "port": VERIFIER_PORT, "targetPort": "http", "protocol": "TCP"},
                {"name": "internal", "port": VERIFIER_INTERNAL_PORT, "targetPort": "internal", "protocol": "TCP"},
            ],
        },
    })
}

fn monitor_labels(app: &str) -> Value {
    json!({"release": "monitoring", "app": app})
}

fn service_monitor(ns: &str) -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": VERIFIER, "namespace": ns, "labels": monitor_labels(VERIFIER)},
        "spec": {
            "selector": {"matchLabels": {"app": VERIFIER}},
            "endpoints": [{"port": "internal", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}],
        },
    })
}

fn pod_monitor(ns: &str) -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": BUYER_APP, "namespace": ns, "labels": monitor_labels(BUYER_APP)},
        "spec": {
            "namespaceSelector": {"any": true},
            "selector": {"matchLabels": {"app": BUYER_APP}},
            "podMetricsEndpoints": [{"port": BUYER_PORT_NAME, "path": "/metrics", "interval": "30s"}],
        },
    })
}

/// The `groups` of [`crate::earnings::RULES_YAML`].
pub fn rule_groups() -> Result<Value, ManifestError> {
    let rules: Value = serde_yaml_ng::from_str(crate::earnings::RULES_YAML)
        .map_err(|e| ManifestError::Rules(e.to_string()))?;
    match rules.get("groups") {
        Some(g @ Value::Array(_)) => Ok(g.clone()),
        _ => Err(ManifestError::Rules("no `groups` list".into())),
    }
}

/// The PrometheusRule: its `spec` is the rules file itself, printed byte for byte (indented
/// under `spec:`, comments included), so the rules in the cluster are the ones
/// `promtool test rules` checks.
fn prometheus_rule(ns: &str) -> Result<Manifest, ManifestError> {
    let mut object = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": VERIFIER, "namespace": ns, "labels": monitor_labels(VERIFIER)},
    });
    let mut text = serde_yaml_ng::to_string(&object).expect("JSON values serialize");
    text.push_str("spec:\n");
    for line in crate::earnings::RULES_YAML.lines() {
        if !line.is_empty() {
            text.push_str("  ");
            text.push_str(line);
        }
        text.push('\n');
    }
    object["spec"] = json!({"groups": rule_groups()?});
    Ok(Manifest {
        comment: "Recording and alerting rules: src/earnings/rules.yaml, verbatim.",
        object,
        text: Some(text),
    })
}

fn buyer_service_account() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": BUYER_APP, "namespace": BUYER_NAMESPACE, "labels": labels(BUYER_APP)},
    })
}

fn buyer_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": BUYER_APP, "namespace": BUYER_NAMESPACE, "labels": labels(BUYER_APP)},
        "rules": [
            {
                "apiGroups": ["obol.org"],
                "resources": ["purchaserequests"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {
                "apiGroups": ["obol.org"],
                "resources": ["purchaserequests/status"],
                "verbs": ["get", "patch", "update"],
            },
        ],
    })
}

fn buyer_role_binding() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": BUYER_APP, "namespace": BUYER_NAMESPACE, "labels": labels(BUYER_APP)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BUYER_APP},
        "subjects": [{"kind": "ServiceAccount", "name": BUYER_APP, "namespace": BUYER_NAMESPACE}],
    })
}

fn oauth_secret() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": OAUTH_SECRET, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
        "type": "Opaque",
    })
}

fn auth_service_account() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": AUTH_SERVICE_ACCOUNT, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
    })
}

fn oauth_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": OAUTH_ROLE, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
        "rules": [{
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [OAUTH_SECRET],
            "verbs": ["get", "patch", "update"],
        }],
    })
}

fn restart_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": RESTART_ROLE, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
        "rules": [{
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": [ERPC_DEPLOYMENT],
            "verbs": ["get", "patch"],
        }],
    })
}

fn grant_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": GRANT_ROLE, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
        "rules": [{
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [GRANT_SECRET],
            "verbs": ["get", "patch"],
        }],
    })
}

fn auth_refresher_deployment(image: &str) -> Value {
    let selector = json!({"app.kubernetes.io/name": AUTH_REFRESHER});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": AUTH_REFRESHER, "namespace": ERPC_NAMESPACE, "labels": labels(AUTH_REFRESHER)},
        "spec": {
            "replicas": 1,
            // Never two refreshers sharing one rotating refresh token.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "serviceAccountName": AUTH_SERVICE_ACCOUNT,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "refresher",
                        "image": image,
                        "args": ["auth", "refresh", "--watch", "--from-secret",
                                 format!("{ERPC_NAMESPACE}/{GRANT_SECRET}"), "--log-format", "json"],
                        "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                    }],
                },
            },
        },
    })
}

fn role_binding(role: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": AUTH_SERVICE_ACCOUNT, "namespace": ERPC_NAMESPACE}],
    })
}

/// The Helm values (chart `ethereum/erpc`) that hand the token to eRPC: env
/// `OBOL_OAUTH_TOKEN` from Secret `obol-oauth-token` key `token`, and the upstream header
/// `X-Nodecore-Token: ${OBOL_OAUTH_TOKEN}` (eRPC expands `${VAR}` in its config at start-up).
pub fn erpc_values_yaml() -> String {
    format!(
        r#"# eRPC Helm values (chart ethereum/erpc): send the Obol Stack ID token upstream.
# `obol auth login` / `obol auth refresh` write the token into Secret {ERPC_NAMESPACE}/{OAUTH_SECRET}
# (key `{OAUTH_SECRET_KEY}`) and restart Deployment {ERPC_NAMESPACE}/{ERPC_DEPLOYMENT}: eRPC reads env vars
# and expands ${{VAR}} in its config only at start-up.
#
# The token is the secret env {TOKEN_ENV}. It comes from the existing Secret through
# `extraEnv` (valueFrom), not through the chart's `secretEnv`, which would copy a literal
# value into a second Secret.
extraEnv:
  - name: {TOKEN_ENV}
    valueFrom:
      secretKeyRef:
        name: {OAUTH_SECRET}
        key: {OAUTH_SECRET_KEY}
        optional: true
# Optional, with Stakater Reloader installed: restart on token change without obol.
# annotations:
#   secret.reloader.stakater.com/reload: {OAUTH_SECRET}
#
# Merge into your eRPC config (`config:`): the upstream that checks the token.
config: |
  projects:
    - id: rpc
      upstreams:
        - id: obol-nodecore
          endpoint: https://erpc.gcp.obol.tech/mainnet/evm/1
          jsonRpc:
            headers:
              {TOKEN_HEADER}: "${{{TOKEN_ENV}}}"
"#
    )
}

fn erpc_values_config_map() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": ERPC_VALUES_CONFIGMAP, "namespace": ERPC_NAMESPACE, "labels": labels("erpc")},
        "data": {"values.yaml": erpc_values_yaml()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(docs: &'a [Manifest], kind: &str, name: &str) -> &'a Value {
        &docs
            .iter()
            .find(|d| d.object["kind"] == kind && d.object["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .object
    }

    #[test]
    fn verifier_cluster_role_grants_exactly_the_watch_and_status_patch() {
        let docs = objects(&ManifestOptions::default()).unwrap();
        let role = find(&docs, "ClusterRole", VERIFIER);
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": ["obol.org"], "resources": ["serviceoffers"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["obol.org"], "resources": ["serviceoffers/status"], "verbs": ["patch"]},
            ])
        );
        let binding = find(&docs, "ClusterRoleBinding", VERIFIER);
        assert_eq!(binding["subjects"][0]["namespace"], "x402");
    }

    #[test]
    fn deployment_runs_the_verifier_from_kube_with_probes() {
        let opts = ManifestOptions {
            namespace: "pay".into(),
            image: "example.com/obol:dev".into(),
            ..Default::default()
        };
        let docs = objects(&opts).unwrap();
        let d = find(&docs, "Deployment", VERIFIER);
        assert_eq!(d["metadata"]["namespace"], "pay");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "example.com/obol:dev");
        assert_eq!(
            c["args"],
            json!([
                "serve",
                "verifier",
                "--route-source",
                "kube",
                "--listen",
                ":8080",
                "--internal-listen",
                ":9090",
                "--state",
                "/var/lib/obol/payment-state.redb"
            ])
        );
        // The payment state survives a pod restart: a claimed volume, one writer at a time.
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        assert_eq!(d["spec"]["replicas"], 1);
        let volumes = &d["spec"]["template"]["spec"]["volumes"];
        assert!(
            volumes
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "state"
                    && v["persistentVolumeClaim"]["claimName"] == "x402-verifier-state"),
            "{volumes}"
        );
        let pvc = find(&docs, "PersistentVolumeClaim", "x402-verifier-state");
        assert_eq!(pvc["metadata"]["namespace"], "pay");
        assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteOnce");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(
            d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
        assert!(c["resources"]["requests"].is_object());
        let svc = find(&docs, "Service", VERIFIER);
        assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
        assert_eq!(svc["spec"]["ports"][1]["name"], "internal");
        assert_eq!(svc["spec"]["ports"][1]["port"], 9090);
        let sm = find(&docs, "ServiceMonitor", VERIFIER);
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "internal");
    }

    #[test]
    fn prometheus_rule_groups_are_the_rules_file() {
        let docs = objects(&ManifestOptions::default()).unwrap();
        let rule = find(&docs, "PrometheusRule", VERIFIER);
        let file: Value = serde_yaml_ng::from_str(crate::earnings::RULES_YAML).unwrap();
        assert_eq!(rule["spec"]["groups"], file["groups"]);
        assert_eq!(rule["metadata"]["labels"]["release"], "monitoring");
    }

    #[test]
    fn auth_refresher_is_optional_and_reads_only_its_grant_secret() {
        let without = objects(&ManifestOptions::default()).unwrap();
        assert!(
            without
                .iter()
                .all(|d| d.object["metadata"]["name"] != AUTH_REFRESHER)
        );
        let opts = ManifestOptions {
            auth_refresher: true,
            ..ManifestOptions::default()
        };
        let docs = objects(&opts).unwrap();
        let d = find(&docs, "Deployment", AUTH_REFRESHER);
        let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[0], "auth");
        assert_eq!(args[4], "erpc/nodecore-oauth-refresh");
        assert_eq!(
            d["spec"]["template"]["spec"]["serviceAccountName"],
            AUTH_SERVICE_ACCOUNT
        );
        let role = find(&docs, "Role", GRANT_ROLE);
        assert_eq!(role["rules"][0]["resourceNames"], json!([GRANT_SECRET]));
        assert_eq!(role["rules"].as_array().unwrap().len(), 1);
        let binding = find(&docs, "RoleBinding", GRANT_ROLE);
        assert_eq!(binding["subjects"][0]["name"], AUTH_SERVICE_ACCOUNT);
    }

    #[test]
    fn buyer_role_grants_purchase_requests_status_and_refill_in_its_namespace() {
        let docs = objects(&ManifestOptions::default()).unwrap();
        let role = find(&docs, "Role", BUYER_APP);
        assert_eq!(role["metadata"]["namespace"], BUYER_NAMESPACE);
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": ["obol.org"], "resources": ["purchaserequests"],
                 "verbs": ["get", "list", "watch", "patch"]},
                {"apiGroups": ["obol.org"], "resources": ["purchaserequests/status"],
                 "verbs": ["get", "patch", "update"]},
            ])
        );
        let binding = find(&docs, "RoleBinding", BUYER_APP);
        assert_eq!(binding["roleRef"]["name"], BUYER_APP);
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "name": BUYER_APP, "namespace": BUYER_NAMESPACE})
        );
        find(&docs, "ServiceAccount", BUYER_APP);
    }

    #[test]
    fn oauth_role_is_limited_to_the_token_secret() {
        let docs = objects(&ManifestOptions::default()).unwrap();
        let role = find(&docs, "Role", OAUTH_ROLE);
        assert_eq!(role["metadata"]["namespace"], "erpc");
        assert_eq!(
            role["rules"],
            json!([{
                "apiGroups": [""], "resources": ["secrets"],
                "resourceNames": ["obol-oauth-token"], "verbs": ["get", "patch", "update"],
            }])
        );
        let secret = find(&docs, "Secret", OAUTH_SECRET);
        assert!(secret.get("data").is_none() && secret.get("stringData").is_none());
        let values = find(&docs, "ConfigMap", ERPC_VALUES_CONFIGMAP)["data"]["values.yaml"]
            .as_str()
            .unwrap();
        let v: Value = serde_yaml_ng::from_str(values).unwrap();
        assert_eq!(v["extraEnv"][0]["name"], "OBOL_OAUTH_TOKEN");
        assert_eq!(
            v["extraEnv"][0]["valueFrom"]["secretKeyRef"],
            json!({"name": "obol-oauth-token", "key": "token", "optional": true})
        );
        let config: Value = serde_yaml_ng::from_str(v["config"].as_str().unwrap()).unwrap();
        assert_eq!(
            config["projects"][0]["upstreams"][0]["jsonRpc"]["headers"]["X-Nodecore-Token"],
            "${OBOL_OAUTH_TOKEN}"
        );
    }

    #[test]
    fn optional_parts_and_bad_options() {
        let opts = ManifestOptions {
            monitoring: false,
            erpc: false,
            wallet: Some(format!("0x{}", "1".repeat(40))),
            chain: Some("base".into()),
            ..Default::default()
        };
        let docs = objects(&opts).unwrap();
        assert!(docs.iter().all(|d| {
            let api = d.object["apiVersion"].as_str().unwrap();
            !api.starts_with("monitoring.coreos.com") && d.object["metadata"]["namespace"] != "erpc"
        }));
        let pricing = find(&docs, "ConfigMap", "x402-pricing")["data"]["pricing.yaml"]
            .as_str()
            .unwrap();
        let p: Value = serde_yaml_ng::from_str(pricing).unwrap();
        assert_eq!(p["chain"], "base");
        assert_eq!(p["wallet"], format!("0x{}", "1".repeat(40)));
        assert_eq!(p["routes"], json!([]));
        assert_eq!(
            p["verifyOnly"], false,
            "by default every served request is paid"
        );
        let verify_only = objects(&ManifestOptions {
            verify_only: true,
            ..Default::default()
        })
        .unwrap();
        let text = find(&verify_only, "ConfigMap", "x402-pricing")["data"]["pricing.yaml"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("WITHOUT payment"), "{text}");
        let p: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(p["verifyOnly"], true, "only when asked for");

        // Replicas share a Redis, named in a Secret, never in the Deployment.
        let url = "redis://:s3cret@redis.x402:6379/0";
        let docs = objects(&ManifestOptions {
            replicas: 3,
            state: Some(url.into()),
            ..Default::default()
        })
        .unwrap();
        let d = find(&docs, "Deployment", VERIFIER);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert!(!d.to_string().contains("s3cret"), "{d}");
        assert!(!d.to_string().contains("payment-state.redb"), "{d}");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "OBOL_STATE"
                    && e["valueFrom"]["secretKeyRef"]["name"] == "x402-verifier-state"),
            "{c}"
        );
        assert_eq!(
            find(&docs, "Secret", "x402-verifier-state")["stringData"]["url"],
            url
        );
        assert_eq!(
            find(&docs, "PodDisruptionBudget", VERIFIER)["spec"]["minAvailable"],
            1
        );
        assert!(
            !docs
                .iter()
                .any(|d| d.object["kind"] == "PersistentVolumeClaim")
        );

        let bad = |o: ManifestOptions| objects(&o).unwrap_err();
        assert!(matches!(
            bad(ManifestOptions {
                replicas: 2,
                ..Default::default()
            }),
            ManifestError::Replicas(2)
        ));
        let e = bad(ManifestOptions {
            state: Some("http://:hunter2@x:1".into()),
            ..Default::default()
        });
        assert!(matches!(e, ManifestError::State(_)), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(matches!(
            bad(ManifestOptions {
                namespace: "X402".into(),
                ..Default::default()
            }),
            ManifestError::Namespace(_)
        ));
        assert!(matches!(
            bad(ManifestOptions {
                image: "a b".into(),
                ..Default::default()
            }),
            ManifestError::Image(_)
        ));
        assert!(matches!(
            bad(ManifestOptions {
                wallet: Some("0x12".into()),
                ..Default::default()
            }),
            ManifestError::Wallet(_)
        ));
    }

    #[test]
    fn custom_text_parses_to_its_object() {
        for doc in objects(&ManifestOptions::default()).unwrap() {
            if let Some(text) = &doc.text {
                let parsed: Value = serde_yaml_ng::from_str(text).unwrap();
                assert_eq!(parsed, doc.object);
                assert!(text.contains(crate::earnings::RULES_YAML.lines().nth(1).unwrap()));
            }
        }
    }

    #[test]
    fn render_is_a_yaml_stream_of_every_object() {
        let text = render_yaml(&ManifestOptions::default()).unwrap();
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect();
        assert_eq!(
            docs.len(),
            objects(&ManifestOptions::default()).unwrap().len()
        );
        assert_eq!(docs[0]["metadata"]["name"], "serviceoffers.obol.org");
        assert_eq!(docs[1]["metadata"]["name"], "purchaserequests.obol.org");
        assert_eq!(
            default_image(),
            format!("ghcr.io/obolnetwork/obol:{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
