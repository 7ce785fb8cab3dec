//! `--state redis://…`: payment state shared by verifier replicas.
//!
//! One hash per authorization at `{prefix}:auth:{chain_id}:{asset}:{from}:{nonce}` (0x-prefixed
//! lowercase hex), with the fields
//!
//! | field | value |
//! |-------|-------|
//! | `v`   | format, `1` (an entry of another format is refused, never overwritten) |
//! | `s`   | `in_flight`, `settling`, `unsettled` or `used` |
//! | `b`   | the [`Binding`](super::super::replay::Binding), hex |
//! | `vb`  | `validBefore`, unix seconds |
//! | `o`   | owner token of the claim working with it (in flight, settling), hex |
//! | `l`   | that claim's lease: until when it is alive, unix **milliseconds of the Redis clock** |
//! | `t`   | settlement transaction recorded by an attempt, hex (optional) |
//! | `c`   | when first claimed, unix seconds |
//!
//! The key expires (`EXPIREAT`) at `validBefore` + [`EXPIRY_GRACE_SECS`]. Every transition is
//! one Lua script (sent as `EVALSHA`, loaded again after `NOSCRIPT`, e.g. when Redis restarted),
//! so checking the state and the owner and writing happen atomically.
//!
//! Leases: a replica can die with a claim open. An in-flight or settling entry carries a lease
//! of [`Lease::length`] that the claim's background task renews every [`Lease::renew_every`]
//! while the [`Claim`](super::Claim) lives. A claim that finds an **in-flight** entry whose
//! lease ran out takes it over (nothing was sent for it); a **settling** one whose lease ran
//! out is treated as unsettled (the same payment may retry, others are refused). Leases are
//! measured on Redis's clock (`TIME` in the scripts), so replicas with skewed clocks agree on
//! them; `validBefore` is compared with the gate's clock, as in the other backends.
//!
//! Every operation has a deadline ([`OP_TIMEOUT`]): an unreachable Redis is a fast
//! [`StoreError::Unavailable`]. The connection manager reconnects by itself once Redis is
//! back.

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use alloy_primitives::B256;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::super::replay::{ReplayKey, Replayed};
use super::entry::{ClaimRequest, Granted, Outcome, Owner};
use super::spec::RedisSpec;
use super::{ClaimError, StoreError};

/// The deadline of one Redis operation.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a key outlives `validBefore`: covers clock skew between the gates and Redis, so a
/// used payment is never forgotten while a gate whose clock lags still takes it as valid.
pub const EXPIRY_GRACE_SECS: u64 = 300;

/// How long a claim stays alive without renewal, and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub length: Duration,
    /// `None`: never renewed (tests of lease expiry).
    pub renew_every: Option<Duration>,
}

impl Lease {
    pub const DEFAULT: Lease = Lease {
        length: Duration::from_secs(30),
        renew_every: Some(Duration::from_secs(10)),
    };
}

/// `KEYS[1]`: the entry; `ARGV`: binding, valid_before, now, owner, lease_ms, expire_at.
/// Returns {'claimed', retry '0'|'1', valid_before, earlier tx or ''} | {'refused', why} |
/// {'unreadable', detail}.
const CLAIM_LUA: &str = r#"
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_until = string.format('%d', now_ms + tonumber(ARGV[5]))
local e = redis.call('HMGET', KEYS[1], 'v', 's', 'b', 'vb', 'l', 't')
local retry = false
if e[1] then
  if e[1] ~= '1' then return {'unreadable', 'entry format ' .. e[1]} end
  local state = e[2]
  local lease_live = tonumber(e[5] or '0') > now_ms
  if state == 'settling' and not lease_live then state = 'unsettled' end
  if state == 'in_flight' or state == 'settling' then
    if lease_live then return {'refused', 'in_flight'} end
  elseif state == 'used' then
    if tonumber(e[4]) > tonumber(ARGV[3]) then return {'refused', 'used'} end
  elseif state == 'unsettled' then
    if e[3] ~= ARGV[1] then return {'refused', 'unresolved'} end
    retry = true
  else
    return {'unreadable', 'entry state ' .. tostring(state)}
  end
end
if retry then
  redis.call('HSET', KEYS[1], 's', 'settling', 'o', ARGV[4], 'l', lease_until)
  return {'claimed', '1', e[4], e[6] or ''}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', '1', 's', 'in_flight', 'b', ARGV[1], 'vb', ARGV[2],
  'o', ARGV[4], 'l', lease_until, 'c', ARGV[3])
redis.call('EXPIREAT', KEYS[1], ARGV[6])
return {'claimed', '0', ARGV[2], ''}
"#;

/// `KEYS[1]`: the entry; `ARGV`: owner, new state ('settling' or '' to keep it), lease_ms.
/// Returns 1, or 0 when the entry is not this owner's open claim.
const LEASE_LUA: &str = r#"
local e = redis.call('HMGET', KEYS[1], 's', 'o')
if (e[1] ~= 'in_flight' and e[1] ~= 'settling') or e[2] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'l', string.format('%d', now_ms + tonumber(ARGV[3])))
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[2]) end
return 1
"#;

/// `KEYS[1]`: the entry; `ARGV`: owner, outcome ('used', 'unsettled', 'released'), tx or ''.
/// Returns 1, or 0 when the entry is not this owner's open claim.
const FINISH_LUA: &str = r#"
local e = redis.call('HMGET', KEYS[1], 's', 'o')
if (e[1] ~= 'in_flight' and e[1] ~= 'settling') or e[2] ~= ARGV[1] then return 0 end
if ARGV[2] == 'released' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 's', ARGV[2])
redis.call('HDEL', KEYS[1], 'o', 'l')
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 't', ARGV[3]) end
return 1
"#;

pub(super) struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    description: String,
    /// The password in the forms it could come back in, removed from any error text.
    password_forms: Vec<String>,
    lease: Lease,
    claim_script: Script,
    lease_script: Script,
    finish_script: Script,
}

/// Renews a claim's lease in the background until dropped.
#[derive(Debug)]
pub(super) struct Renewal(tokio::task::AbortHandle);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RedisStore {
    /// Connects and checks that Redis answers and takes writes: a verifier does not start on a
    /// store it cannot use (a wrong address or password shows at startup).
    pub async fn connect(
        spec: &RedisSpec,
        description: String,
        lease: Lease,
    ) -> Result<RedisStore, StoreError> {
        let password_forms = spec.password_forms();
        let scrubbed = |text: String| scrub(text, &password_forms);
        let client = redis::Client::open(spec.connection_url()).map_err(|e| {
            StoreError::BadSpec(scrubbed(format!("the Redis URL is not usable: {e}")))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            StoreError::BadSpec(scrubbed(format!("cannot set up the Redis client: {e}")))
        })?;
        let store = RedisStore {
            connection,
            prefix: spec.prefix().to_string(),
            description,
            password_forms,
            lease,
            claim_script: Script::new(CLAIM_LUA),
            lease_script: Script::new(LEASE_LUA),
            finish_script: Script::new(FINISH_LUA),
        };
        store.check().await?;
        Ok(store)
    }

    fn unavailable(&self, detail: String) -> StoreError {
        StoreError::Unavailable {
            store: self.description.clone(),
            detail: scrub(detail, &self.password_forms),
        }
    }

    /// Runs one operation under [`OP_TIMEOUT`].
    async fn run<T>(
        &self,
        what: &str,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(OP_TIMEOUT, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.unavailable(format!("{what}: {e}"))),
            Err(_) => Err(self.unavailable(format!("{what}: no answer within {OP_TIMEOUT:?}"))),
        }
    }

    pub fn entry_key(&self, key: &ReplayKey) -> String {
        format!(
            "{}:auth:{}:{:#x}:{:#x}:{:#x}",
            self.prefix, key.chain_id, key.asset, key.from, key.nonce
        )
    }

    pub async fn claim(&self, request: &ClaimRequest) -> Result<Granted, ClaimError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.claim_script.key(self.entry_key(&request.key));
        invocation
            .arg(hex(request.binding.0.as_slice()))
            .arg(request.valid_before)
            .arg(request.now)
            .arg(hex(&request.owner.0))
            .arg(millis(self.lease.length))
            .arg(request.valid_before.saturating_add(EXPIRY_GRACE_SECS));
        let reply: Vec<String> = self
            .run("claim", invocation.invoke_async(&mut connection))
            .await?;
        let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or("");
        match field(0) {
            "claimed" => Ok(Granted {
                retry_of_unsettled: field(1) == "1",
                valid_before: field(2)
                    .parse()
                    .map_err(|_| self.unreadable(format!("validBefore {:?}", field(2))))?,
                earlier_transaction: match field(3) {
                    "" => None,
                    tx => Some(
                        B256::from_str(tx)
                            .map_err(|_| self.unreadable("a transaction hash".to_string()))?,
                    ),
                },
            }),
            "refused" => Err(ClaimError::Replayed(match field(1) {
                "in_flight" => Replayed::InFlight,
                "used" => Replayed::Used,
                _ => Replayed::Unresolved,
            })),
            "unreadable" => Err(self.unreadable(field(1).to_string()).into()),
            other => Err(self
                .unreadable(format!("the claim script answered {other:?}"))
                .into()),
        }
    }

    fn unreadable(&self, detail: String) -> StoreError {
        StoreError::Unreadable {
            store: self.description.clone(),
            detail: scrub(detail, &self.password_forms),
        }
    }

    /// Sets the claim's lease anew, and its state to `settling` when asked. `Ok(false)`: the
    /// entry is not this claim's any more.
    async fn lease(
        &self,
        key: &ReplayKey,
        owner: Owner,
        settling: bool,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.lease_script.key(self.entry_key(key));
        invocation
            .arg(hex(&owner.0))
            .arg(if settling { "settling" } else { "" })
            .arg(millis(self.lease.length));
        let done: i64 = self
            .run(
                "renewing the lease",
                invocation.invoke_async(&mut connection),
            )
            .await?;
        Ok(done == 1)
    }

    pub async fn settling(&self, key: &ReplayKey, owner: Owner) -> Result<(), StoreError> {
        match self.lease(key, owner, true).await? {
            true => Ok(()),
            false => Err(StoreError::LostClaim),
        }
    }

    pub async fn finish(
        &self,
        key: &ReplayKey,
        owner: Owner,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let (state, tx) = match outcome {
            Outcome::Used(tx) => ("used", tx),
            Outcome::Unsettled(tx) => ("unsettled", tx),
            Outcome::Released => ("released", None),
        };
        let mut connection = self.connection.clone();
        let mut invocation = self.finish_script.key(self.entry_key(key));
        invocation
            .arg(hex(&owner.0))
            .arg(state)
            .arg(tx.map(|tx| format!("{tx:#x}")).unwrap_or_default());
        let done: i64 = self
            .run(
                "recording the outcome",
                invocation.invoke_async(&mut connection),
            )
            .await?;
        match done {
            1 => Ok(()),
            _ => Err(StoreError::LostClaim),
        }
    }

    /// Redis answers and takes a write (a read-only replica or a full Redis is not ready).
    pub async fn check(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let mut set = redis::cmd("SET");
        set.arg(format!("{}:readyz", self.prefix))
            .arg("1")
            .arg("PX")
            .arg(10_000);
        let _: () = self
            .run("checking", set.query_async(&mut connection))
            .await?;
        Ok(())
    }

    /// Starts renewing the lease of the claim `owner` holds on `key`, for as long as the
    /// returned [`Renewal`] lives and the store is open.
    pub fn keep_leased(this: &Arc<RedisStore>, key: ReplayKey, owner: Owner) -> Option<Renewal> {
        let every = this.lease.renew_every?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let store: Weak<RedisStore> = Arc::downgrade(this);
        let task = runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                match store.lease(&key, owner, false).await {
                    Ok(true) => {}
                    // Taken over or finished: the claim's next write reports it.
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew a payment claim's lease; retrying")
                    }
                }
            }
        });
        Some(Renewal(task.abort_handle()))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    alloy_primitives::hex::encode(bytes)
}

/// `text` with every form of the password replaced by `***`.
fn scrub(mut text: String, password_forms: &[String]) -> String {
    for form in password_forms {
        if !form.is_empty() {
            text = text.replace(form.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_form_of_the_password() {
        let forms = vec!["p%40ss".to_string(), "p@ss".to_string()];
        assert_eq!(
            scrub("auth p@ss failed for p%40ss".to_string(), &forms),
            "auth *** failed for ***"
        );
    }
}
