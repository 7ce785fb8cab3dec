//! The payment-state store: one payment, one service, across restarts and replicas.
//!
//! It keeps, per authorization [`ReplayKey`] `(chain, asset, from, nonce)`, what the verifier
//! did with it, so that a payment buys exactly one service, once: in this process's memory,
//! durably (`--state <file>`) or shared between replicas (`--state redis://…`), with the same
//! rules in each. When the store cannot tell, the answer is an error and the gate grants
//! nothing.
//!
//! # State machine (per key)
//!
//! ```text
//! state       event                                    next
//! ─────────   ──────────────────────────────────────   ───────────────────────────────
//! absent      claim                                    InFlight
//! InFlight    settling()                               Settling
//! InFlight    consume(tx)                              Used
//! InFlight    mark_unsettled(tx)                       Unsettled
//! InFlight    release(), dropped                       absent
//! Settling    consume(tx)                              Used
//! Settling    mark_unsettled(tx), dropped              Unsettled
//! Settling    release() (nothing moved)                absent (a retry: Unsettled)
//! Unsettled   claim with the same Binding (a retry)    Settling
//! Used        validBefore passed                       absent (pruned, or the key expires)
//! Unsettled   validBefore passed                       absent (pruned, or the key expires)
//! ```
//!
//! - **absent** + claim → **InFlight**, owned by the claim's random owner token.
//! - **InFlight** or **Settling** + claim → [`Replayed::InFlight`] (Redis: while its lease
//!   lives; see below).
//! - **Used** + claim → [`Replayed::Used`] until the authorization's `validBefore`; after
//!   that the token contract refuses it anyway, and a claim is a new one.
//! - **Unsettled** + claim with another [`Binding`] → [`Replayed::Unresolved`]; with the same
//!   binding the claim succeeds with [`Claim::retry_of_unsettled`], carrying the transaction an
//!   earlier attempt recorded ([`Claim::earlier_transaction`]), and the entry is **Settling**
//!   from the start: a crash during the retry leaves it unsettled, never released.
//! - [`Claim::settling`] (InFlight → Settling) is recorded durably **before** the facilitator's
//!   `/settle` is called; if it fails, do not settle.
//! - [`Claim::consume`] → Used; [`Claim::mark_unsettled`] → Unsettled (an earlier transaction
//!   is kept when none is given); [`Claim::release`] → absent (the facilitator said clearly
//!   that nothing moved), except for a retry of an unsettled payment, which stays Unsettled.
//! - A claim dropped unfinished is released, unless `settling()` was recorded or it is a
//!   retry of an unsettled payment: then it becomes Unsettled.
//! - A finishing write applies only while the entry still carries the claim's owner token;
//!   otherwise it fails with [`StoreError::LostClaim`] and overwrites nothing.
//!
//! Record an outcome before acting on it: `settling()` before `/settle`; in verify-only mode,
//! `consume()` before the grant is answered. A failed write then means nothing was granted.
//!
//! # Backends ([`StoreSpec`], `--state`)
//!
//! - `memory`: this process only, forgotten on restart (tests, throwaway runs).
//! - a file path: an embedded [redb](https://www.redb.org) file for one verifier process;
//!   every change from settling on is committed (fsynced) before the call returns, changes
//!   queued together sharing one commit; claims in flight (nothing sent yet) stay in the
//!   process's memory, as a restart would release them anyway; a second verifier on the same
//!   file is refused; on open, settling entries a dead process left become unsettled (a
//!   settlement may have been broadcast).
//! - `redis://` / `rediss://` (TLS): shared by replicas. One hash per authorization at
//!   `{prefix}:auth:{chain_id}:{asset}:{from}:{nonce}` (lowercase 0x-hex; prefix `obol:x402`
//!   unless the URL says `?prefix=…`), every transition one Lua script. Open claims carry a
//!   30 s lease on Redis's clock, renewed every 10 s while the [`Claim`] lives: an in-flight
//!   entry whose lease ran out is taken over by the next claim; a settling one counts as
//!   unsettled. Operations time out after 2 s ([`StoreError::Unavailable`]); the connection
//!   comes back by itself when Redis does. Redis durability is the operator's: a Redis that
//!   loses its data (restart without persistence, failover to a lagging replica) forgets used
//!   payments: a settled one is still protected by the chain's nonce, but a verify-only one
//!   could be used again before its `validBefore`; run it with persistence (AOF) for
//!   verify-only offers.
//!
//! # Retention
//!
//! An entry lives until its authorization's `validBefore` (Redis: plus 5 minutes for clock
//! skew between the gates and Redis); file and memory entries are removed by
//! [`PaymentStore::prune`], Redis keys expire. Every entry is small (about 100 bytes), but an
//! authorization valid for years would be held for years: the gate refuses authorizations
//! valid for longer than [`MAX_RETENTION_SECS`].
//!
//! [`Replayed::InFlight`]: super::replay::Replayed::InFlight
//! [`Replayed::Used`]: super::replay::Replayed::Used
//! [`Replayed::Unresolved`]: super::replay::Replayed::Unresolved

mod entry;
mod error;
mod file;
mod memory;
mod redis;
mod spec;

#[cfg(test)]
mod test_redis;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Weak};

use alloy_primitives::B256;

use self::entry::{ClaimRequest, Granted, Lost, Outcome, Owner};
pub use self::error::{ClaimError, StoreError};
use self::file::FileStore;
use self::memory::MemoryStore;
use self::redis::{Lease, RedisStore, Renewal};
pub use self::spec::{DEFAULT_REDIS_PREFIX, RedisSpec, StoreSpec};
use super::replay::{Binding, ReplayKey};

/// The longest an authorization may stay valid (`validBefore - now`) for the gate to accept
/// it: how long the store may have to remember it. 30 days of validity plus a day of slack for
/// clocks and clients that round up. The gate enforces it; the store only keeps what it is
/// given until `validBefore`.
pub const MAX_RETENTION_SECS: u64 = 30 * 24 * 3600 + 24 * 3600;

/// Where payment state lives, opened. Shared as `Arc<PaymentStore>`; claims hold a weak
/// reference, so dropping the store closes it (a file store releases its lock) even while
/// claims are open.
pub struct PaymentStore {
    backend: Backend,
    description: String,
}

enum Backend {
    Memory(MemoryStore),
    File(Arc<FileStore>),
    Redis(Arc<RedisStore>),
}

impl std::fmt::Debug for PaymentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PaymentStore({})", self.description)
    }
}

fn lost(_: Lost) -> StoreError {
    StoreError::LostClaim
}

impl PaymentStore {
    /// Opens the store `spec` names: creates or recovers the file, or connects to Redis and
    /// checks that it takes writes.
    pub async fn open(spec: &StoreSpec) -> Result<Arc<PaymentStore>, StoreError> {
        Self::open_with_lease(spec, Lease::DEFAULT).await
    }

    async fn open_with_lease(
        spec: &StoreSpec,
        lease: Lease,
    ) -> Result<Arc<PaymentStore>, StoreError> {
        let description = spec.to_string();
        let backend = match spec {
            StoreSpec::Memory => Backend::Memory(MemoryStore::default()),
            StoreSpec::File(path) => {
                let path = path.clone();
                let file = tokio::task::spawn_blocking(move || FileStore::open(&path)).await??;
                Backend::File(Arc::new(file))
            }
            StoreSpec::Redis(redis) => Backend::Redis(Arc::new(
                RedisStore::connect(redis, description.clone(), lease).await?,
            )),
        };
        Ok(Arc::new(PaymentStore {
            backend,
            description,
        }))
    }

    /// A store in this process's memory (`--state memory`), opened at once.
    pub fn memory() -> Arc<PaymentStore> {
        Arc::new(PaymentStore {
            backend: Backend::Memory(MemoryStore::default()),
            description: StoreSpec::Memory.to_string(),
        })
    }

    /// What the store is, for logs and `/readyz`: `memory`, `file /path`, or
    /// `redis redis://host:port/db` (a password shown as `***`).
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// Claims `key` for the payment `binding`, valid until `valid_before` (unix seconds), at
    /// `now` (unix seconds, the gate's clock), atomically across everything sharing the store.
    pub async fn claim(
        self: &Arc<Self>,
        key: ReplayKey,
        binding: Binding,
        valid_before: u64,
        now: u64,
    ) -> Result<Claim, ClaimError> {
        let request = ClaimRequest {
            key,
            binding,
            valid_before,
            now,
            owner: Owner::random(),
        };
        let (granted, renewal): (Granted, Option<Renewal>) = match &self.backend {
            Backend::Memory(memory) => (memory.claim(&request)?, None),
            Backend::File(file) => (file.claim(request).await??, None),
            Backend::Redis(redis) => {
                let granted = redis.claim(&request).await?;
                (granted, RedisStore::keep_leased(redis, key, request.owner))
            }
        };
        Ok(Claim {
            store: Arc::downgrade(self),
            key,
            owner: request.owner,
            retry_of_unsettled: granted.retry_of_unsettled,
            earlier_transaction: granted.earlier_transaction,
            settling_recorded: false,
            finished: false,
            _renewal: renewal,
        })
    }

    /// For `/readyz`: the store is reachable and takes writes (file: the file is open and
    /// readable; Redis: a write answered).
    pub async fn check(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::File(file) => {
                let file = Arc::clone(file);
                tokio::task::spawn_blocking(move || file.check()).await?
            }
            Backend::Redis(redis) => redis.check().await,
        }
    }

    /// Forgets used and unsettled entries whose `validBefore` is not after `now`; returns how
    /// many. Open claims are untouched. Redis keys expire by themselves (0).
    pub async fn prune(&self, now: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.prune(now)),
            Backend::File(file) => file.prune(now).await,
            Backend::Redis(_) => Ok(0),
        }
    }

    async fn settling(&self, key: &ReplayKey, owner: Owner) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(memory) => memory.settling(key, owner).map_err(lost),
            Backend::File(file) => file.settling(*key, owner).await,
            Backend::Redis(redis) => redis.settling(key, owner).await,
        }
    }

    async fn finish(
        &self,
        key: &ReplayKey,
        owner: Owner,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(memory) => memory.finish(key, owner, outcome).map_err(lost),
            Backend::File(file) => file.finish(*key, owner, outcome).await,
            Backend::Redis(redis) => redis.finish(key, owner, outcome).await,
        }
    }

    /// The end of a claim dropped unfinished, from `Drop`: memory now; file queued to its
    /// writer (its answer awaited by a task, or inline when there is no runtime); Redis as a task (without a runtime the lease
    /// runs out, which ends the claim the same way). Failures are logged: the next open (file)
    /// or the lease (Redis) settles the entry as this write would have.
    fn finish_in_background(self: Arc<Self>, key: ReplayKey, owner: Owner, outcome: Outcome) {
        let report = |store: &PaymentStore, result: Result<(), StoreError>| {
            if let Err(e) = result {
                tracing::warn!(state = %store.description, error = %e, "could not record the end of an unfinished payment claim");
            }
        };
        match &self.backend {
            Backend::Memory(memory) => {
                report(&self, memory.finish(&key, owner, outcome).map_err(lost))
            }
            Backend::File(file) => {
                let pending = file.finish_later(key, owner, outcome);
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => drop(runtime.spawn(async move {
                        let result = pending.wait().await;
                        report(&self, result);
                    })),
                    Err(_) => report(&self, pending.wait_blocking()),
                }
            }
            Backend::Redis(redis) => {
                let redis = Arc::clone(redis);
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => drop(runtime.spawn(async move {
                        let result = redis.finish(&key, owner, outcome).await;
                        report(&self, result);
                    })),
                    Err(_) => tracing::warn!(
                        state = %self.description,
                        "a payment claim ended outside the runtime; its lease will run out"
                    ),
                }
            }
        }
    }

    #[cfg(test)]
    fn memory_len(&self) -> Option<usize> {
        match &self.backend {
            Backend::Memory(memory) => Some(memory.len()),
            _ => None,
        }
    }
}

/// A successful claim: this request, and no other, works with the payment until the claim
/// ends. End it with [`Claim::consume`], [`Claim::mark_unsettled`] or [`Claim::release`];
/// dropping it unfinished releases the payment, or leaves it unsettled when a settlement may
/// have been sent (see the module doc).
#[derive(Debug)]
pub struct Claim {
    store: Weak<PaymentStore>,
    key: ReplayKey,
    owner: Owner,
    retry_of_unsettled: bool,
    earlier_transaction: Option<B256>,
    settling_recorded: bool,
    finished: bool,
    /// Redis: keeps the lease alive while the claim lives.
    _renewal: Option<Renewal>,
}

impl Claim {
    pub fn key(&self) -> &ReplayKey {
        &self.key
    }

    /// True when an earlier attempt with this payment ended with an unknown settlement outcome.
    pub fn retry_of_unsettled(&self) -> bool {
        self.retry_of_unsettled
    }

    /// The settlement transaction an earlier attempt recorded, if any.
    pub fn earlier_transaction(&self) -> Option<B256> {
        self.earlier_transaction
    }

    fn store(&self) -> Result<Arc<PaymentStore>, StoreError> {
        self.store.upgrade().ok_or(StoreError::Closed)
    }

    /// Records durably that the settlement is about to be sent. Call it before the
    /// facilitator's `/settle`, and do not settle when it fails.
    pub async fn settling(&mut self) -> Result<(), StoreError> {
        self.store()?.settling(&self.key, self.owner).await?;
        self.settling_recorded = true;
        Ok(())
    }

    /// The payment was used (granted or settled, `transaction` when known): refused until
    /// `validBefore`.
    pub async fn consume(self, transaction: Option<B256>) -> Result<(), StoreError> {
        self.end(Outcome::Used(transaction)).await
    }

    /// The settlement's outcome is unknown: keep the payment; only the same payment (same
    /// [`Binding`]) may retry. A `None` transaction keeps one recorded earlier.
    pub async fn mark_unsettled(self, transaction: Option<B256>) -> Result<(), StoreError> {
        self.end(Outcome::Unsettled(transaction)).await
    }

    /// Nothing moved (also after `settling()`, when the facilitator said so clearly): forget
    /// the payment. A retry of an unsettled payment stays unsettled: the first attempt's
    /// settlement may still go through.
    pub async fn release(self) -> Result<(), StoreError> {
        let outcome = match self.retry_of_unsettled {
            true => Outcome::Unsettled(None),
            false => Outcome::Released,
        };
        self.end(outcome).await
    }

    async fn end(mut self, outcome: Outcome) -> Result<(), StoreError> {
        self.finished = true;
        self.store()?.finish(&self.key, self.owner, outcome).await
    }

    /// What dropping the claim unfinished records.
    fn outcome_if_dropped(&self) -> Outcome {
        if self.settling_recorded || self.retry_of_unsettled {
            Outcome::Unsettled(None)
        } else {
            Outcome::Released
        }
    }

    /// Test-only: stop renewing the lease (then leak the claim to play a dead replica).
    #[cfg(test)]
    fn stop_renewal(&mut self) {
        self._renewal = None;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A closed store has nothing to write to; reopening recovers the entry (file), or the
        // lease runs out (Redis), with the same result.
        if let Some(store) = self.store.upgrade() {
            store.finish_in_background(self.key, self.owner, self.outcome_if_dropped());
        }
    }
}
