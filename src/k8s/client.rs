//! A Kubernetes client from `--kubeconfig` / `--context` / `-n`, `$KUBECONFIG`,
//! `~/.kube/config`, or the pod's service account, with errors that say which kubeconfig,
//! which context and what failed, plus a hint.
//!
//! Where the configuration comes from, first match wins:
//! 1. `--kubeconfig FILE` (it must exist);
//! 2. `$KUBECONFIG` (a `:`-separated list, merged like kubectl does; missing files are skipped,
//!    but at least one must exist);
//! 3. `~/.kube/config` when it exists;
//! 4. in-cluster (`KUBERNETES_SERVICE_HOST` + the service account token), unless `--context`
//!    was given (a context needs a kubeconfig).
//!
//! The context is `--context`, else the kubeconfig's `current-context`. The namespace is `-n`,
//! else the context's namespace, else the service account's, else `default`.
//!
//! Building a [`KubeClient`] makes no request; [`KubeClient::check_reachable`] does one
//! (`GET /version`) and turns a failure into [`K8sError::Unreachable`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};

use super::types::{PurchaseRequest, ServiceOffer};

/// What the user selected on the command line (or a pod's environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `--kubeconfig FILE`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context NAME`.
    pub context: Option<String>,
    /// `-n/--namespace NAME`.
    pub namespace: Option<String>,
}

/// Where a client's configuration came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Kubeconfig {
        /// The kubeconfig file(s) read.
        paths: Vec<PathBuf>,
        /// The context used.
        context: String,
    },
    /// The pod's service account.
    InCluster,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Kubeconfig { paths, context } => {
                write!(f, "context `{context}` of kubeconfig {}", join_paths(paths))
            }
            ConfigSource::InCluster => f.write_str("in-cluster service account"),
        }
    }
}

/// The kubeconfig context that would be used, read without contacting the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInfo {
    pub paths: Vec<PathBuf>,
    pub context: String,
    /// The cluster's server URL (empty if the kubeconfig names none).
    pub server: String,
    /// The context's namespace, if it sets one.
    pub namespace: Option<String>,
}

/// Why no usable client could be built, or a request failed. `Display` is one line naming the
/// kubeconfig, context and server involved; [`K8sError::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("kubeconfig {} does not exist (named by {origin})", path.display())]
    KubeconfigMissing { path: PathBuf, origin: &'static str },

    #[error("cannot use kubeconfig {path}: {detail}")]
    KubeconfigInvalid { path: String, detail: String },

    #[error("kubeconfig {path} has no current context")]
    NoCurrentContext { path: String, contexts: Vec<String> },

    #[error("context `{context}` is not in kubeconfig {path}")]
    UnknownContext {
        context: String,
        path: String,
        contexts: Vec<String>,
    },

    #[error(
        "--context {context} needs a kubeconfig, but there is none (no --kubeconfig, $KUBECONFIG or {})",
        default.display()
    )]
    ContextWithoutKubeconfig { context: String, default: PathBuf },

    #[error(
        "no Kubernetes cluster is configured: no kubeconfig (--kubeconfig, $KUBECONFIG, {}) and not in a pod ({detail})",
        default.display()
    )]
    NoConfig { default: PathBuf, detail: String },

    #[error("cannot reach the Kubernetes API server {server} ({origin}): {detail}")]
    Unreachable {
        server: String,
        origin: Box<ConfigSource>,
        detail: String,
    },

    #[error("{action}: the API server {server} ({origin}) answered {code} {reason}: {message}")]
    Api {
        action: String,
        server: String,
        origin: Box<ConfigSource>,
        code: u16,
        reason: String,
        message: String,
    },
}

impl K8sError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            K8sError::KubeconfigMissing { .. } => {
                "pass an existing file with --kubeconfig, or fix $KUBECONFIG".into()
            }
            K8sError::KubeconfigInvalid { path, .. } => {
                format!("check the file with `kubectl --kubeconfig {path} config view`")
            }
            K8sError::NoCurrentContext { contexts, .. } => format!(
                "pick one with --context ({}) or `kubectl config use-context NAME`",
                list_or_none(contexts)
            ),
            K8sError::UnknownContext { contexts, .. } => {
                format!("known contexts: {}", list_or_none(contexts))
            }
            K8sError::ContextWithoutKubeconfig { .. } => {
                "pass --kubeconfig FILE, or drop --context".into()
            }
            K8sError::NoConfig { .. } => "point --kubeconfig (or $KUBECONFIG) at your cluster's \
                 kubeconfig, or work without a cluster with --offers-file"
                .into(),
            K8sError::Unreachable { origin, .. } => match origin.as_ref() {
                ConfigSource::Kubeconfig { context, .. } => format!(
                    "is the cluster running? `kubectl --context {context} cluster-info` should \
                     answer; pick another cluster with --context or --kubeconfig"
                ),
                ConfigSource::InCluster => {
                    "check the pod's network policy and the API server's health".into()
                }
            },
            K8sError::Api {
                code,
                message,
                origin,
                ..
            } => match code {
                401 => format!("the cluster refused the credentials of {origin}; log in again"),
                403 => format!(
                    "the identity of {origin} lacks RBAC permission; `obol manifests` prints \
                     the roles obol needs"
                ),
                404 if message.contains("could not find the requested resource") => {
                    "install obol's CRDs: `obol manifests | kubectl apply -f -`".into()
                }
                404 => "check the name and the namespace (-n)".into(),
                409 => "the object changed meanwhile; run the command again".into(),
                422 => "the cluster rejected the object as invalid; see the message".into(),
                _ => "run again with -v for details".into(),
            },
        }
    }

    /// The HTTP status of an API answer, if this is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            K8sError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A 404 from the API server.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// `~/.kube/config`.
pub fn default_kubeconfig_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".kube").join("config")
}

/// A connected-to-be client with the namespace and origin it was configured from.
#[derive(Clone)]
pub struct KubeClient {
    client: Client,
    namespace: String,
    server: String,
    source: ConfigSource,
}

impl fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("source", &self.source)
            .finish()
    }
}

impl KubeClient {
    /// Builds a client as described in the module docs. Makes no request. Must run inside a
    /// tokio runtime.
    pub async fn new(opts: &ClientOptions) -> Result<KubeClient, K8sError> {
        let (mut config, source) = match load_kubeconfig(opts)? {
            Some((kubeconfig, paths)) => {
                let path = join_paths(&paths);
                let context = select_context(&kubeconfig, opts.context.as_deref(), &path)?;
                let options = KubeConfigOptions {
                    context: Some(context.clone()),
                    ..Default::default()
                };
                let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| K8sError::KubeconfigInvalid {
                        path: path.clone(),
                        detail: format!("context `{context}`: {}", error_chain(&e)),
                    })?;
                (config, ConfigSource::Kubeconfig { paths, context })
            }
            None => {
                if let Some(context) = &opts.context {
                    return Err(K8sError::ContextWithoutKubeconfig {
                        context: context.clone(),
                        default: default_kubeconfig_path(),
                    });
                }
                let config = Config::incluster().map_err(|e| K8sError::NoConfig {
                    default: default_kubeconfig_path(),
                    detail: error_chain(&e),
                })?;
                (config, ConfigSource::InCluster)
            }
        };
        if let Some(ns) = opts.namespace.as_deref().filter(|n| !n.is_empty()) {
            config.default_namespace = ns.to_string();
        }
        if config.default_namespace.is_empty() {
            config.default_namespace = "default".into();
        }
        let server = config.cluster_url.to_string();
        let server = server.trim_end_matches('/').to_string();
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| K8sError::Unreachable {
            server: server.clone(),
            origin: Box::new(source.clone()),
            detail: error_chain(&e),
        })?;
        Ok(KubeClient {
            client,
            namespace,
            server,
            source,
        })
    }

    /// Wraps an existing client (tests, or callers with their own config).
    pub fn from_client(client: Client, namespace: impl Into<String>, source: ConfigSource) -> Self {
        let namespace = namespace.into();
        KubeClient {
            server: String::new(),
            client,
            namespace,
            source,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn into_client(self) -> Client {
        self.client
    }

    /// The namespace commands work in: `-n`, else the context's, else `default`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// One `GET /version`, within `timeout`. An API answer (even 401/403) means reachable
    /// only when it is a success; a refused credential is reported as an [`K8sError::Api`].
    pub async fn check_reachable(&self, timeout: Duration) -> Result<(), K8sError> {
        match tokio::time::timeout(timeout, self.client.apiserver_version()).await {
            Err(_) => Err(K8sError::Unreachable {
                server: self.server.clone(),
                origin: Box::new(self.source.clone()),
                detail: format!("no answer within {}s", timeout.as_secs_f64()),
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.error("contacting the cluster", e)),
        }
    }

    /// Turns a request error into a [`K8sError`] naming the server and context: an API
    /// answer becomes [`K8sError::Api`] (with `action`, e.g. "applying ServiceOffer llm/qwen"),
    /// anything else (connection refused, DNS, TLS, timeout) [`K8sError::Unreachable`].
    pub fn error(&self, action: impl Into<String>, err: kube::Error) -> K8sError {
        match err {
            kube::Error::Api(status) => K8sError::Api {
                action: action.into(),
                server: self.server.clone(),
                origin: Box::new(self.source.clone()),
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => K8sError::Unreachable {
                server: self.server.clone(),
                origin: Box::new(self.source.clone()),
                detail: error_chain(&other),
            },
        }
    }

    /// A failed kube-rs `watcher` as a [`K8sError`], as [`KubeClient::error`] does for a
    /// request (`action`, e.g. "watching ServiceOffers").
    pub fn watch_error(
        &self,
        action: impl Into<String>,
        err: &kube::runtime::watcher::Error,
    ) -> K8sError {
        use kube::runtime::watcher::Error as W;
        let status = match err {
            W::InitialListFailed(kube::Error::Api(s))
            | W::WatchStartFailed(kube::Error::Api(s))
            | W::WatchFailed(kube::Error::Api(s)) => Some(s.as_ref()),
            W::WatchError(s) => Some(s.as_ref()),
            _ => None,
        };
        match status {
            Some(s) => K8sError::Api {
                action: action.into(),
                server: self.server.clone(),
                origin: Box::new(self.source.clone()),
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            None => K8sError::Unreachable {
                server: self.server.clone(),
                origin: Box::new(self.source.clone()),
                detail: error_chain(err),
            },
        }
    }

    /// `Api<K>` in the client's namespace.
    pub fn namespaced<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// `Api<K>` in namespace `ns`.
    pub fn namespaced_in<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// `Api<K>` across all namespaces (list/watch), or a cluster-scoped resource.
    pub fn all<K>(&self) -> Api<K>
    where
        K: Resource,
        <K as Resource>::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }

    /// ServiceOffers in `ns` (`None`: the client's namespace).
    pub fn service_offers(&self, ns: Option<&str>) -> Api<ServiceOffer> {
        self.namespaced_in(ns.unwrap_or(&self.namespace))
    }

    /// PurchaseRequests in `ns` (`None`: the client's namespace).
    pub fn purchase_requests(&self, ns: Option<&str>) -> Api<PurchaseRequest> {
        self.namespaced_in(ns.unwrap_or(&self.namespace))
    }
}

/// The kubeconfig context a client would use, read from `--kubeconfig`, `$KUBECONFIG` or
/// `~/.kube/config` without contacting the cluster. `Ok(None)` when there is no kubeconfig
/// (nor `--kubeconfig`) or it selects no context: "no cluster selected". `obol sell` uses this
/// to decide between the cluster and the local offers file.
pub fn active_context(opts: &ClientOptions) -> Result<Option<ContextInfo>, K8sError> {
    let Some((kubeconfig, paths)) = load_kubeconfig(opts)? else {
        return Ok(None);
    };
    let path = join_paths(&paths);
    let context = match select_context(&kubeconfig, opts.context.as_deref(), &path) {
        Ok(c) => c,
        Err(K8sError::NoCurrentContext { .. }) if opts.context.is_none() => return Ok(None),
        Err(e) => return Err(e),
    };
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
        .unwrap_or_default();
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    Ok(Some(ContextInfo {
        paths,
        context,
        server,
        namespace: ctx.namespace.filter(|n| !n.is_empty()),
    }))
}

/// Reads the kubeconfig the options select; `None` when there is none to read.
fn load_kubeconfig(opts: &ClientOptions) -> Result<Option<(Kubeconfig, Vec<PathBuf>)>, K8sError> {
    if let Some(path) = &opts.kubeconfig {
        if !path.exists() {
            return Err(K8sError::KubeconfigMissing {
                path: path.clone(),
                origin: "--kubeconfig",
            });
        }
        return read(path).map(|k| Some((k, vec![path.clone()])));
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let listed: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let existing: Vec<PathBuf> = listed.iter().filter(|p| p.exists()).cloned().collect();
        if existing.is_empty() {
            if let Some(first) = listed.into_iter().next() {
                return Err(K8sError::KubeconfigMissing {
                    path: first,
                    origin: "$KUBECONFIG",
                });
            }
        } else {
            let mut merged = Kubeconfig::default();
            for p in &existing {
                let next = read(p)?;
                merged = merged
                    .merge(next)
                    .map_err(|e| K8sError::KubeconfigInvalid {
                        path: p.display().to_string(),
                        detail: error_chain(&e),
                    })?;
            }
            return Ok(Some((merged, existing)));
        }
    }
    let default = default_kubeconfig_path();
    if default.is_file() {
        return read(&default).map(|k| Some((k, vec![default])));
    }
    Ok(None)
}

fn read(path: &Path) -> Result<Kubeconfig, K8sError> {
    Kubeconfig::read_from(path).map_err(|e| K8sError::KubeconfigInvalid {
        path: path.display().to_string(),
        detail: error_chain(&e),
    })
}

fn select_context(kc: &Kubeconfig, wanted: Option<&str>, path: &str) -> Result<String, K8sError> {
    let contexts: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    let name = match wanted.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => match kc.current_context.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => {
                return Err(K8sError::NoCurrentContext {
                    path: path.to_string(),
                    contexts,
                });
            }
        },
    };
    if !contexts.contains(&name) {
        return Err(K8sError::UnknownContext {
            context: name,
            path: path.to_string(),
            contexts,
        });
    }
    Ok(name)
}

/// `outer: inner: innermost`, without the duplicates some error types repeat.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
        let path = dir.join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {{server: {server}}}
users:
- name: u1
  user: {{token: t}}
contexts:
- name: one
  context: {{cluster: c1, user: u1, namespace: shop}}
- name: two
  context: {{cluster: c1, user: u1}}
current-context: one
"
            ),
        )
        .unwrap();
        path
    }

    fn opts(path: &Path, context: Option<&str>) -> ClientOptions {
        ClientOptions {
            kubeconfig: Some(path.to_path_buf()),
            context: context.map(String::from),
            namespace: None,
        }
    }

    #[tokio::test]
    async fn missing_kubeconfig_names_the_file_and_the_flag() {
        let err = KubeClient::new(&ClientOptions {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(matches!(err, K8sError::KubeconfigMissing { .. }));
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/kubeconfig"), "{msg}");
        assert!(msg.contains("--kubeconfig"), "{msg}");
        assert!(err.hint().contains("--kubeconfig"));
    }

    #[tokio::test]
    async fn unknown_context_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "http://127.0.0.1:1");
        let err = KubeClient::new(&opts(&path, Some("prod")))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`prod`"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(err.hint(), "known contexts: one, two");
    }

    #[tokio::test]
    async fn no_current_context_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {cluster: x}\n",
        )
        .unwrap();
        let err = KubeClient::new(&opts(&path, None)).await.unwrap_err();
        assert!(matches!(err, K8sError::NoCurrentContext { .. }), "{err}");
        assert!(err.to_string().contains("no current context"));
        assert!(err.hint().contains("--context (a)"), "{}", err.hint());
        // Not an error for the "is a cluster selected?" question.
        assert_eq!(active_context(&opts(&path, None)).unwrap(), None);
    }

    #[tokio::test]
    async fn unreadable_kubeconfig_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "clusters: [[[").unwrap();
        let err = KubeClient::new(&opts(&path, None)).await.unwrap_err();
        assert!(matches!(err, K8sError::KubeconfigInvalid { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[tokio::test]
    async fn unreachable_server_names_server_context_and_kubeconfig() {
        // A port nobody listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let server = format!("http://127.0.0.1:{port}");
        let path = kubeconfig(dir.path(), &server);
        let client = KubeClient::new(&opts(&path, Some("two"))).await.unwrap();
        assert_eq!(client.namespace(), "default");
        assert_eq!(client.server(), server);
        let err = client
            .check_reachable(Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, K8sError::Unreachable { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&server), "{msg}");
        assert!(msg.contains("context `two`"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(err.hint().contains("kubectl --context two cluster-info"));
    }

    #[tokio::test]
    async fn namespace_comes_from_flag_then_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "http://127.0.0.1:1");
        let c = KubeClient::new(&opts(&path, None)).await.unwrap();
        assert_eq!(c.namespace(), "shop");
        assert_eq!(
            c.source(),
            &ConfigSource::Kubeconfig {
                paths: vec![path.clone()],
                context: "one".into()
            }
        );
        let mut o = opts(&path, None);
        o.namespace = Some("x402".into());
        let c = KubeClient::new(&o).await.unwrap();
        assert_eq!(c.namespace(), "x402");
        assert_eq!(
            c.service_offers(None).resource_url(),
            "/apis/obol.org/v1alpha1/namespaces/x402/serviceoffers"
        );

        let info = active_context(&opts(&path, None)).unwrap().unwrap();
        assert_eq!(info.context, "one");
        assert_eq!(info.server, "http://127.0.0.1:1");
        assert_eq!(info.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn api_errors_get_hints_by_status() {
        let src = Box::new(ConfigSource::InCluster);
        let e = |code: u16, message: &str| K8sError::Api {
            action: "listing ServiceOffers".into(),
            server: "https://k".into(),
            origin: src.clone(),
            code,
            reason: "NotFound".into(),
            message: message.into(),
        };
        assert!(
            e(404, "the server could not find the requested resource")
                .hint()
                .contains("obol manifests")
        );
        assert!(e(403, "forbidden").hint().contains("RBAC"));
        assert!(e(404, "x").is_not_found());
        assert!(
            e(404, "x")
                .to_string()
                .starts_with("listing ServiceOffers: the API server https://k")
        );
    }
}
