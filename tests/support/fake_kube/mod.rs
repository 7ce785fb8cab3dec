//! An in-memory Kubernetes API server for integration tests (no kube-apiserver can be installed
//! here). It speaks the real REST protocol over plain HTTP on 127.0.0.1 so that unmodified
//! clients work against it: kubectl (discovery, Table output, client- and server-side apply,
//! patch, delete --wait) and kube-rs (typed and dynamic APIs, `runtime::watcher`).
//! What it supports and what it does not: `docs/testing-kube.md`.
//!
//! ```ignore
//! let kube = FakeKube::start();
//! let out = kube.kubectl().args(["get", "ns"]).output().unwrap();
//! let client = kube.client();            // inside a tokio runtime
//! ```
//!
//! Modules: [`store`] (objects, resourceVersion, history, cascade), [`resources`] (registry of
//! built-in and CRD-defined resources), [`discovery`], [`fields`] (managedFields and server-side
//! apply), [`patch`], [`selectors`], [`table`], [`watch`], [`server`] (HTTP), [`target`]
//! (`OBOL_TEST_KUBECONFIG` switch).

pub mod discovery;
pub mod fields;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod target;
pub mod util;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;

use serde_json::Value;

pub use server::{Options, RequestRecord};
pub use target::KubeTarget;

/// A running fake API server; stopped (and its temp dir removed) on drop.
pub struct FakeKube {
    app: Arc<server::App>,
    url: String,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeKube {
    /// Starts a server with default [`Options`] on a free port. Ready on return (the socket is
    /// bound before the call returns), usable from `#[test]` and `#[tokio::test]` alike: it runs
    /// on its own thread and tokio runtime.
    pub fn start() -> FakeKube {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> FakeKube {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let app = Arc::new(server::App::new(addr, opts));
        let router = server::router(app.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("fake-kube-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-kube-worker")
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let serve = axum::serve(listener, router).into_future();
                    tokio::select! {
                        r = serve => { if let Err(e) = r { eprintln!("fake-kube: server error: {e}"); } }
                        _ = rx => {}
                    }
                });
                // Open watch connections die with the runtime.
                rt.shutdown_background();
            })
            .expect("spawn fake-kube thread");

        let dir = tempfile::Builder::new()
            .prefix("fake-kube-")
            .tempdir()
            .expect("temp dir");
        let url = format!("http://{addr}");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&url, "default")).expect("write kubeconfig");
        FakeKube {
            app,
            url,
            dir,
            kubeconfig,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig whose current context `fake` points at this server (dummy bearer token,
    /// namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A per-server directory for kubectl's discovery/HTTP cache (so that a later server on the
    /// same port never sees stale discovery).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("kube-cache")
    }

    /// `kubectl --kubeconfig <ours> --cache-dir <ours>`, with `KUBECONFIG` removed from the
    /// environment. Add the subcommand and run it.
    pub fn kubectl(&self) -> Command {
        kubectl_command(&self.kubeconfig, &self.cache_dir())
    }

    /// A kube-rs client for this server (default namespace `default`). Must be called inside a
    /// tokio runtime (kube's client spawns its buffer task there).
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("url"));
        config.default_namespace = "default".into();
        kube::Client::try_from(config).expect("kube client")
    }

    /// A kube-rs client built from [`Self::kubeconfig_path`], the way obol loads configs.
    pub async fn client_from_kubeconfig(&self) -> kube::Client {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.app
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn clear_requests(&self) {
        self.app
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The stored object `group`/`resource` (plural) `namespace`/`name`, read directly.
    pub fn object(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self
            .app
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let res = store.registry.by_gr(&resources::GroupResource {
            group: group.into(),
            resource: resource.into(),
        })?;
        let t = store::Target {
            version: res.versions[0].name.clone(),
            res,
            namespace: namespace.map(String::from),
        };
        store.get(&t, name).ok()
    }

    /// All stored objects of `group`/`resource`, in every namespace.
    pub fn objects(&self, group: &str, resource: &str) -> Vec<Value> {
        let store = self
            .app
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(res) = store.registry.by_gr(&resources::GroupResource {
            group: group.into(),
            resource: resource.into(),
        }) else {
            return vec![];
        };
        let t = store::Target {
            version: res.versions[0].name.clone(),
            res,
            namespace: None,
        };
        store
            .list(&t, &Default::default(), &Default::default(), None, None)
            .0
    }

    /// Server-side applies every document of `manifests` (YAML, `---`-separated, or JSON) with
    /// field manager `fake-kube-seed`, forced: a quick way to preload CRDs and objects without
    /// kubectl. Namespaced objects without a namespace go to `default`. Panics on any failure.
    pub fn apply(&self, manifests: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(manifests) {
            let v: Value = serde::Deserialize::deserialize(doc).expect("manifest is YAML or JSON");
            if v.is_null() {
                continue;
            }
            let av = v["apiVersion"].as_str().expect("apiVersion").to_string();
            let kind = v["kind"].as_str().expect("kind");
            let (group, version) = av.rsplit_once('/').unwrap_or(("", &av));
            let name = v["metadata"]["name"].as_str().expect("metadata.name");
            let mut store = self
                .app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let res = store
                .registry
                .by_kind(group, version, kind)
                .unwrap_or_else(|| panic!("{av} {kind} is not served (apply its CRD first)"));
            let namespace = res.namespaced.then(|| {
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string()
            });
            let t = store::Target {
                res,
                version: version.to_string(),
                namespace,
            };
            let opts = store::WriteOpts {
                manager: "fake-kube-seed".into(),
                ..Default::default()
            };
            let obj = store
                .patch(
                    &t,
                    name,
                    store::PatchKind::Apply { force: true },
                    &v,
                    &opts,
                    false,
                )
                .unwrap_or_else(|e| panic!("applying {kind} {name}: {}", e.message));
            out.push(obj);
        }
        out
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.app
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .resource_version()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// obol's own CRDs (ServiceOffer, PurchaseRequest), as `obol manifests` installs them.
pub fn obol_crds() -> String {
    obol::k8s::crd::all()
        .iter()
        .map(|c| serde_yaml_ng::to_string(c).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Minimal CRDs of the routing children obol creates for an offer (Traefik Middleware, Gateway
/// API HTTPRoute and ReferenceGrant), schema-less like a cluster that only needs them to exist.
pub const ROUTING_CRDS: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: middlewares.traefik.io}
spec:
  group: traefik.io
  scope: Namespaced
  names: {kind: Middleware, plural: middlewares, singular: middleware, listKind: MiddlewareList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {kind: HTTPRoute, plural: httproutes, singular: httproute, listKind: HTTPRouteList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: referencegrants.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {kind: ReferenceGrant, plural: referencegrants, singular: referencegrant, listKind: ReferenceGrantList}
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

pub fn kubeconfig_yaml(server: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {server}
users:
- name: fake
  user:
    token: fake-token
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: {namespace}
current-context: fake
preferences: {{}}
"
    )
}

pub fn kubectl_command(kubeconfig: &Path, cache_dir: &Path) -> Command {
    let mut c = Command::new("kubectl");
    c.env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache_dir);
    c
}

pub async fn client_from_kubeconfig(path: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).expect("read kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kube config from kubeconfig");
    kube::Client::try_from(config).expect("kube client")
}
