//! Kubernetes: obol's custom resources and the few cluster writes obol makes.
//!
//! - [`types`]: [`ServiceOffer`] (`so`) and [`PurchaseRequest`] (`pr`), `obol.org/v1alpha1`,
//!   with the obol-stack field names; effective-value helpers (path, namespace, port, paused).
//! - [`crd`]: their CRDs, generated from the types with the validation added; the same rules
//!   checked on the client ([`crd::validate_offer_spec`]).
//! - [`client`]: a [`KubeClient`] from `--kubeconfig`/`--context`/`-n`, `$KUBECONFIG`,
//!   `~/.kube/config` or in-cluster, with errors naming the kubeconfig, context and server.
//! - [`apply`]: server-side apply (manager `obol`, forced), Secret apply with `data`, status
//!   conditions, rollout restart.
//! - [`children`]: the Traefik Middleware and Gateway API HTTPRoute an offer owns.

pub mod apply;
pub mod children;
pub mod client;
pub mod crd;
pub mod types;

pub use client::{ClientOptions, ConfigSource, ContextInfo, K8sError, KubeClient, active_context};
pub use types::{
    Condition, PAUSED_ANNOTATION, PurchaseRequest, PurchaseRequestSpec, PurchaseRequestStatus,
    ServiceOffer, ServiceOfferSpec, ServiceOfferStatus,
};
