//! The first phase of every request, shared by the proxy and ForwardAuth: is the verifier
//! ready, does the request path have one meaning, which route does it lead to, may that route
//! be served now. Everything after it (payment, forwarding, settlement) starts from an
//! [`Admitted`] request and its canonical [`RequestPath`].

use std::sync::Arc;

use super::AppState;
use super::refusal::Refusal;
use super::request_path::RequestPath;
use super::routes::{LiveRoute, Lookup, RouteTable};
use crate::offers::Gate;

/// A request the verifier will handle: its route table generation, canonical path and route.
pub struct Admitted {
    pub table: Arc<RouteTable>,
    pub path: RequestPath,
    pub live: Arc<LiveRoute>,
}

/// Admits the request target `target` (origin form: `/path?query`), or says why not.
///
/// Fails closed: before the first route load, for a path without one meaning, for a path no
/// offer covers, for a broken or paused offer, for a path its offer does not declare.
pub fn admit(app: &AppState, target: &str) -> Result<Admitted, Refusal> {
    let table = app.table.load_full();
    if !table.loaded {
        return Err(Refusal::NotReady);
    }
    let path = RequestPath::parse(target).map_err(Refusal::BadPath)?;
    let live = match table.lookup(path.path()) {
        Lookup::Route(live) => Arc::clone(live),
        Lookup::Unavailable(u) => return Err(u.refusal()),
        Lookup::None => return Err(Refusal::NoRoute),
    };
    if live.route.paused {
        return Err(Refusal::Paused);
    }
    if live.route.gate == Gate::Undeclared {
        return Err(Refusal::Undeclared);
    }
    Ok(Admitted { table, path, live })
}

impl Admitted {
    /// Whether the route is declared free (served without payment).
    pub fn free(&self) -> bool {
        self.live.route.gate == Gate::Free
    }
}
