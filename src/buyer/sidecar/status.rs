//! `GET /status`: one entry per upstream. The obol-stack fields (`url`, `remote_model`,
//! `public_model`, `remaining`, `spent`, `network`) keep their names and meaning; the rest is
//! added.

use serde::Serialize;

use super::budget::format_day;
use super::state::StateStore;
use super::upstream::Upstream;

/// The budget of one upstream as of now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// The UTC day `spent_today` counts.
    pub day: String,
    /// Daily cap, atomic units (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_spend_per_day: Option<String>,
    pub spent_today: String,
    pub payments_today: u64,
    /// Cap on payments, ever (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total: Option<u64>,
    pub payments_total: u64,
    /// Atomic units, ever.
    pub spent_total: String,
}

/// One upstream in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamStatus {
    #[serde(skip)]
    pub name: String,
    pub url: String,
    pub remote_model: String,
    pub public_model: String,
    /// As configured.
    pub network: String,
    /// CAIP-2.
    pub chain: String,
    /// The agreed price per request, atomic units.
    pub price: String,
    /// Pre-signed auths left.
    pub remaining: usize,
    /// Pre-signed auths consumed (ever, as recorded in the state file).
    pub spent: usize,
    /// Auths out with a request right now.
    pub in_flight: usize,
    /// Authorizations a seller holds without a known outcome (it answered an error without a
    /// receipt, or the answer was lost): counted in the budget until provably unusable.
    pub handed_out: usize,
    /// Auths dropped because they expired before use.
    pub expired: u64,
    pub live_signing: bool,
    /// What may still be spent today (atomic units); absent without a daily cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_left_today: Option<String>,
    /// How many payments may still be made; absent without a total cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_left_total: Option<u64>,
    pub budget: BudgetStatus,
    /// Why the config could not be (re)loaded; this entry is the last good version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why live signing is configured but unusable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_signing_error: Option<String>,
}

/// Consumed − in flight: what the state file says was spent.
pub fn spent_count(up: &Upstream, store: &StateStore) -> usize {
    store
        .consumed_count(&up.name)
        .saturating_sub(up.pool.counts().held)
}

impl UpstreamStatus {
    pub fn of(up: &Upstream, store: &StateStore, now: u64) -> UpstreamStatus {
        let counts = up.pool.counts();
        let budget = store.budget(&up.name, now);
        UpstreamStatus {
            name: up.name.clone(),
            url: up.url.clone(),
            remote_model: up.remote_model.clone(),
            public_model: up.public_model.clone(),
            network: up.network_name.clone(),
            chain: up.chain.clone(),
            price: up.price.to_string(),
            remaining: counts.remaining,
            spent: store.consumed_count(&up.name).saturating_sub(counts.held),
            in_flight: counts.held,
            handed_out: store.handed_out_count(&up.name),
            expired: counts.expired,
            live_signing: up.live_signing,
            budget_left_today: budget.left_today(&up.limits, now).map(|v| v.to_string()),
            budget_left_total: budget.left_total(&up.limits),
            budget: BudgetStatus {
                day: format_day(budget.day),
                max_spend_per_day: up.limits.max_spend_per_day.map(|v| v.to_string()),
                spent_today: budget.spent_on(now).to_string(),
                payments_today: budget.payments_today,
                max_total: up.limits.max_total,
                payments_total: budget.payments_total,
                spent_total: budget.spent_total.to_string(),
            },
            error: up.issue.clone(),
            live_signing_error: up.live_check.as_ref().err().cloned(),
        }
    }
}
