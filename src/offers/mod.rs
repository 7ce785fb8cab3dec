//! Offers: the offer model, the offers file (pricing.yaml) and the route matcher.
//!
//! - [`config`]: the file's model (keys of the obol-stack `pricing.yaml`), loading and
//!   atomic saving.
//! - [`matcher`]: route patterns (exact, `/x/*` prefix, segment glob) and the indexed
//!   first-match-wins [`Matcher`].
//! - [`declared`]: an offer's declared routes (`routes:`, `spec.routes`, `--route`): per-path
//!   prices and free paths; the other paths of such an offer are refused.
//! - [`resolve`]: a rule becomes a resolved [`Route`] (CAIP-2 network, asset, atomic price,
//!   payTo, x402 requirement); [`validate`] is what every write passes first.
//! - [`store`]: `sell create|list|delete|pause|resume` on the local offers file.
//! - [`kube`]: a ServiceOffer as a route rule (what the verifier serves from a cluster).
//! - [`cluster`]: `sell create|list|delete|pause|resume` on ServiceOffers in a cluster.

pub mod cluster;
pub mod config;
pub mod declared;
pub mod kube;
pub mod matcher;
pub mod resolve;
pub mod store;

pub use config::{
    DEFAULT_CHAIN, DEFAULT_FACILITATOR_URL, FileError, LOCAL_NAMESPACE, PricingConfig, RouteRule,
};
pub use declared::{Gate, RouteEntry, RoutePrice};
pub use kube::{OfferProblem, Rendered, from_service_offer};
pub use matcher::{Matcher, Pattern, path_of};
pub use resolve::{InvalidOffers, Problem, Route, resolve, resolve_owned, validate};
pub use store::{Created, OfferError, OfferSpec, OfferStore, OfferView};

/// The default offers file: `$XDG_CONFIG_HOME/obol/pricing.yaml`.
pub fn default_file() -> std::path::PathBuf {
    crate::paths::config_dir().join("pricing.yaml")
}
