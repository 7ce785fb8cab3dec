//! A paid OpenAI-like upstream (`tests/support/rail/paid_llm.mjs`: Express behind the npm
//! reference payment middleware `@x402/express`), for the buyer sidecar's tests. Killed on drop.
//!
//! `POST /v1/chat/completions` and `/v1/responses` cost `price_atomic` of the rail's token, paid
//! to `pay_to` on `eip155:31337`, and echo the model they received (SSE with `"stream": true`);
//! `/free/...` answers the same without payment (and can hold a stream open until
//! [`PaidLlm::release_streams`]). The price and failures can be changed while it runs.

use std::time::Duration;

use alloy_primitives::Address;
use serde_json::{Value, json};

use super::chain::Token;
use super::process::{ChildGuard, off_runtime};
use super::x402_rail::{Facilitator, spawn_paywalled_node};

pub struct PaidLlm {
    guard: ChildGuard,
    port: u16,
    pay_to: Address,
}

impl PaidLlm {
    /// Starts it against `facilitator`; ready once `GET /health` answers.
    pub fn start(
        facilitator: &Facilitator,
        token: &Token,
        pay_to: Address,
        price_atomic: u64,
    ) -> PaidLlm {
        let (guard, port) = spawn_paywalled_node(
            "paid-llm",
            "paid_llm.mjs",
            "/health",
            facilitator,
            token,
            pay_to,
            price_atomic,
        );
        PaidLlm {
            guard,
            port,
            pay_to,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40125` (the paid routes are under it).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `<url>/free`: the same routes without payment.
    pub fn free_url(&self) -> String {
        format!("{}/free", self.url())
    }

    pub fn pay_to(&self) -> Address {
        self.pay_to
    }

    fn admin(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url());
        off_runtime(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .expect("client")
                .post(&url)
                .json(&body)
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.json())
                .unwrap_or_else(|e| panic!("POST {url}: {e}"))
        })
    }

    /// From now on the 402 asks `amount` atomic units.
    pub fn set_price(&self, amount: u64) {
        self.admin("/admin/price", json!({"amount": amount.to_string()}));
    }

    /// The next `count` paid handler calls answer HTTP `status` (the middleware then does not
    /// settle).
    pub fn fail_next(&self, status: u16, count: u32) {
        self.admin("/admin/fail", json!({"status": status, "count": count}));
    }

    /// Lets every gated stream finish; returns how many were waiting.
    pub fn release_streams(&self) -> u64 {
        self.admin("/admin/release", json!({}))["released"]
            .as_u64()
            .unwrap_or(0)
    }

    /// `{"paid": n, "free": n, "models": [...], "price": "..."}`: what the handlers served.
    pub fn stats(&self) -> Value {
        let url = format!("{}/admin/stats", self.url());
        off_runtime(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .expect("client")
                .get(&url)
                .send()
                .and_then(|r| r.json())
                .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        })
    }

    pub fn log(&self) -> String {
        self.guard.log_contents()
    }

    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }
}
