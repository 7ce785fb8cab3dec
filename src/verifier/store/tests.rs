//! The store's state machine, run against every backend (memory, file, a real redis-server),
//! and what only one backend does: the file's restarts and lock, Redis's replicas, leases and
//! outages. Redis tests start their own `redis-server` (see `test_redis`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};

use super::super::replay::Replayed;
use super::test_redis::RedisServer;
use super::*;

const A: Binding = Binding(B256::repeat_byte(0xa1));
const B: Binding = Binding(B256::repeat_byte(0xb2));

fn key(n: u8) -> ReplayKey {
    ReplayKey {
        chain_id: 31337,
        asset: Address::repeat_byte(0xaa),
        from: Address::repeat_byte(0xbb),
        nonce: B256::repeat_byte(n),
    }
}

/// The gate's clock. Real time, because Redis expires keys at `validBefore` on its own clock.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn tx(n: u8) -> B256 {
    B256::repeat_byte(n)
}

fn refused(result: Result<Claim, ClaimError>) -> Replayed {
    match result {
        Err(ClaimError::Replayed(r)) => r,
        Err(ClaimError::Store(e)) => panic!("store error instead of a refusal: {e}"),
        Ok(_) => panic!("claimed, expected a refusal"),
    }
}

fn claimed(result: Result<Claim, ClaimError>) -> Claim {
    match result {
        Ok(claim) => claim,
        Err(e) => panic!("expected a claim: {e}"),
    }
}

/// Claims once the entry is no longer in flight: a dropped claim is finished in the
/// background (file, Redis), so its end shows up a moment later.
async fn claim_when_settled(
    store: &Arc<PaymentStore>,
    key: ReplayKey,
    binding: Binding,
    valid_before: u64,
    now: u64,
) -> Result<Claim, ClaimError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.claim(key, binding, valid_before, now).await {
            Err(ClaimError::Replayed(Replayed::InFlight)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

async fn open(spec: &str) -> Arc<PaymentStore> {
    let spec = StoreSpec::parse(spec).expect("valid spec");
    PaymentStore::open(&spec)
        .await
        .unwrap_or_else(|e| panic!("open {spec}: {e}"))
}

async fn open_file(path: &Path) -> Arc<PaymentStore> {
    PaymentStore::open(&StoreSpec::File(path.to_path_buf()))
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

async fn open_redis(server: &RedisServer, lease: Lease) -> Arc<PaymentStore> {
    let spec = StoreSpec::parse(&server.url("")).expect("valid spec");
    PaymentStore::open_with_lease(&spec, lease)
        .await
        .unwrap_or_else(|e| panic!("open {spec}: {e}"))
}

// --- the state machine, on every backend --------------------------------------------------

async fn a_consumed_payment_is_refused_until_valid_before(store: Arc<PaymentStore>) {
    let now = unix_now();
    let vb = now + 1_000;
    let c = claimed(store.claim(key(1), A, vb, now).await);
    assert_eq!(c.key(), &key(1));
    assert!(!c.retry_of_unsettled());
    assert_eq!(
        refused(store.claim(key(1), A, vb, now).await),
        Replayed::InFlight
    );
    c.consume(Some(tx(1))).await.expect("consume");
    assert_eq!(
        refused(store.claim(key(1), A, vb, now + 500).await),
        Replayed::Used
    );
    assert_eq!(
        refused(store.claim(key(1), B, vb, now + 999).await),
        Replayed::Used
    );
    // Another nonce, asset or chain is another payment.
    claimed(store.claim(key(2), A, vb, now).await);
    let mut other_chain = key(1);
    other_chain.chain_id = 8453;
    claimed(store.claim(other_chain, A, vb, now).await);
    let mut other_asset = key(1);
    other_asset.asset = Address::repeat_byte(0xcc);
    claimed(store.claim(other_asset, A, vb, now).await);
    let mut other_payer = key(1);
    other_payer.from = Address::repeat_byte(0xdd);
    claimed(store.claim(other_payer, A, vb, now).await);
    // From validBefore on, the token refuses it anyway; the store lets go.
    let again = claimed(store.claim(key(1), A, vb + 1_000, vb).await);
    assert!(!again.retry_of_unsettled());
    assert_eq!(again.earlier_transaction(), None);
}

async fn a_dropped_claim_releases_the_payment(store: Arc<PaymentStore>) {
    let now = unix_now();
    let vb = now + 1_000;
    drop(claimed(store.claim(key(1), A, vb, now).await));
    // Released: any payment with this nonce may claim it, not only the same one.
    let c = claimed(claim_when_settled(&store, key(1), B, vb, now).await);
    assert!(!c.retry_of_unsettled());
    c.release().await.expect("release");
    claimed(store.claim(key(1), A, vb, now).await);
}

async fn a_claim_dropped_after_settling_is_unsettled(store: Arc<PaymentStore>) {
    let now = unix_now();
    let vb = now + 1_000;
    let mut c = claimed(store.claim(key(1), A, vb, now).await);
    c.settling().await.expect("settling");
    assert_eq!(
        refused(store.claim(key(1), A, vb, now).await),
        Replayed::InFlight
    );
    drop(c);
    // Another payment reusing the nonce is refused; the same payment may retry.
    assert_eq!(
        refused(claim_when_settled(&store, key(1), B, vb, now).await),
        Replayed::Unresolved
    );
    let retry = claimed(store.claim(key(1), A, vb, now + 10).await);
    assert!(retry.retry_of_unsettled());
    assert_eq!(retry.earlier_transaction(), None);
    // One retry at a time.
    assert_eq!(
        refused(store.claim(key(1), A, vb, now + 10).await),
        Replayed::InFlight
    );
    retry
        .mark_unsettled(Some(tx(7)))
        .await
        .expect("mark_unsettled");

    // The next retry learns the transaction; dropping it leaves the payment unsettled.
    let retry = claimed(store.claim(key(1), A, vb, now + 20).await);
    assert!(retry.retry_of_unsettled());
    assert_eq!(retry.earlier_transaction(), Some(tx(7)));
    drop(retry);
    assert_eq!(
        refused(claim_when_settled(&store, key(1), B, vb, now + 30).await),
        Replayed::Unresolved
    );
    let mut retry = claimed(store.claim(key(1), A, vb, now + 30).await);
    assert_eq!(retry.earlier_transaction(), Some(tx(7)));
    retry.settling().await.expect("settling a retry");
    // Marking unsettled without a transaction keeps the recorded one.
    retry.mark_unsettled(None).await.expect("mark_unsettled");
    let retry = claimed(store.claim(key(1), A, vb, now + 40).await);
    assert_eq!(retry.earlier_transaction(), Some(tx(7)));
    retry.consume(None).await.expect("consume");
    assert_eq!(
        refused(store.claim(key(1), A, vb, now + 50).await),
        Replayed::Used
    );
}

async fn release_after_settling_forgets_the_payment(store: Arc<PaymentStore>) {
    let now = unix_now();
    let vb = now + 1_000;
    let mut c = claimed(store.claim(key(1), A, vb, now).await);
    c.settling().await.expect("settling");
    // The facilitator said clearly that nothing moved.
    c.release().await.expect("release");
    let fresh = claimed(store.claim(key(1), B, vb, now).await);
    assert!(!fresh.retry_of_unsettled());
}

async fn a_released_retry_stays_unsettled(store: Arc<PaymentStore>) {
    let now = unix_now();
    let vb = now + 1_000;
    let c = claimed(store.claim(key(1), A, vb, now).await);
    c.mark_unsettled(Some(tx(3))).await.expect("mark_unsettled");
    let retry = claimed(store.claim(key(1), A, vb, now).await);
    assert!(retry.retry_of_unsettled());
    // Nothing moved for the retry; the first attempt's settlement may still go through.
    retry.release().await.expect("release");
    assert_eq!(
        refused(store.claim(key(1), B, vb, now).await),
        Replayed::Unresolved
    );
    let retry = claimed(store.claim(key(1), A, vb, now).await);
    assert_eq!(retry.earlier_transaction(), Some(tx(3)));
}

async fn only_the_same_payment_resumes_an_unsettled_one(store: Arc<PaymentStore>) {
    let now = unix_now();
    let vb = now + 1_000;
    let first = Binding::of(
        b"header-a",
        "ns/cheap /services/cheap/*",
        "{\"amount\":\"1\"}",
    );
    let dearer = Binding::of(
        b"header-b",
        "ns/dear /services/dear/*",
        "{\"amount\":\"9\"}",
    );
    let other_route = Binding::of(
        b"header-a",
        "ns/dear /services/dear/*",
        "{\"amount\":\"1\"}",
    );
    let c = claimed(store.claim(key(1), first, vb, now).await);
    c.mark_unsettled(None).await.expect("mark_unsettled");
    assert_eq!(
        refused(store.claim(key(1), dearer, vb, now).await),
        Replayed::Unresolved
    );
    assert_eq!(
        refused(store.claim(key(1), other_route, vb, now).await),
        Replayed::Unresolved
    );
    let retry = claimed(store.claim(key(1), first, vb, now).await);
    assert!(retry.retry_of_unsettled());
    retry.consume(Some(tx(9))).await.expect("consume");
    assert_eq!(
        refused(store.claim(key(1), first, vb, now).await),
        Replayed::Used
    );
}

/// 100 tasks claim one payment at once (over `stores`, e.g. two replicas): exactly one wins,
/// and every other store sees it used.
async fn exactly_one_of_many_concurrent_claims_wins(stores: Vec<Arc<PaymentStore>>) {
    let now = unix_now();
    let vb = now + 1_000;
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                match store.claim(key(9), A, vb, now).await {
                    Ok(claim) => {
                        claim.consume(None).await.expect("consume");
                        true
                    }
                    Err(ClaimError::Replayed(Replayed::InFlight | Replayed::Used)) => false,
                    Err(e) => panic!("unexpected: {e}"),
                }
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    for store in &stores {
        assert_eq!(
            refused(store.claim(key(9), A, vb, now).await),
            Replayed::Used
        );
    }
}

async fn one_winner(store: Arc<PaymentStore>) {
    exactly_one_of_many_concurrent_claims_wins(vec![store]).await;
}

macro_rules! on_every_backend {
    ($($body:ident),* $(,)?) => {
        mod memory_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::open("memory").await).await;
                }
            )*
        }
        mod file_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store = super::open_file(&dir.path().join("state.redb")).await;
                    super::$body(store).await;
                }
            )*
        }
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    let server = super::RedisServer::start();
                    let store = super::open_redis(&server, super::Lease::DEFAULT).await;
                    super::$body(store).await;
                }
            )*
        }
    };
}

on_every_backend!(
    a_consumed_payment_is_refused_until_valid_before,
    a_dropped_claim_releases_the_payment,
    a_claim_dropped_after_settling_is_unsettled,
    release_after_settling_forgets_the_payment,
    a_released_retry_stays_unsettled,
    only_the_same_payment_resumes_an_unsettled_one,
    one_winner,
);

// --- memory ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_concurrent_claims_of_one_payment_let_exactly_one_through() {
    for _ in 0..50 {
        let store = open("memory").await;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    match store.claim(key(9), A, 1_000, 100).await {
                        Ok(c) => c.consume(None).await.is_ok(),
                        Err(_) => false,
                    }
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.expect("task"));
        }
        assert_eq!(winners, 1);
    }
}

#[tokio::test]
async fn memory_prune_removes_only_expired_used_and_unsettled_entries() {
    let store = open("memory").await;
    claimed(store.claim(key(1), A, 200, 100).await)
        .consume(None)
        .await
        .unwrap();
    claimed(store.claim(key(2), A, 400, 100).await)
        .consume(None)
        .await
        .unwrap();
    claimed(store.claim(key(3), A, 200, 100).await)
        .mark_unsettled(None)
        .await
        .unwrap();
    let in_flight = claimed(store.claim(key(4), A, 200, 100).await);
    assert_eq!(store.prune(300).await.unwrap(), 2);
    assert_eq!(store.memory_len(), Some(2));
    assert_eq!(
        refused(store.claim(key(2), A, 400, 300).await),
        Replayed::Used
    );
    assert_eq!(
        refused(store.claim(key(4), A, 200, 150).await),
        Replayed::InFlight
    );
    drop(in_flight);
    assert_eq!(store.memory_len(), Some(1));
    assert_eq!(store.describe(), "memory");
    store.check().await.expect("memory is always ready");
}

// --- file --------------------------------------------------------------------------------

#[tokio::test]
async fn file_a_consumed_payment_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let now = unix_now();
    let store = open_file(&path).await;
    claimed(store.claim(key(1), A, now + 1_000, now).await)
        .consume(Some(tx(1)))
        .await
        .unwrap();
    drop(store);
    let store = open_file(&path).await;
    assert_eq!(
        refused(store.claim(key(1), A, now + 1_000, now).await),
        Replayed::Used
    );
    assert_eq!(store.describe(), format!("file {}", path.display()));
}

#[tokio::test]
async fn file_an_in_flight_claim_of_a_crashed_verifier_is_released_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let now = unix_now();
    let store = open_file(&path).await;
    // The process dies with the claim open: nothing finishes it.
    std::mem::forget(claimed(store.claim(key(1), A, now + 1_000, now).await));
    drop(store);
    let store = open_file(&path).await;
    let c = claimed(store.claim(key(1), B, now + 1_000, now).await);
    assert!(!c.retry_of_unsettled());
}

#[tokio::test]
async fn file_a_settlement_interrupted_by_a_crash_is_unsettled_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let now = unix_now();
    let store = open_file(&path).await;
    let mut c = claimed(store.claim(key(1), A, now + 1_000, now).await);
    c.settling().await.unwrap();
    std::mem::forget(c);
    drop(store);
    let store = open_file(&path).await;
    assert_eq!(
        refused(store.claim(key(1), B, now + 1_000, now).await),
        Replayed::Unresolved
    );
    let retry = claimed(store.claim(key(1), A, now + 1_000, now).await);
    assert!(retry.retry_of_unsettled());
    // A crash during the retry leaves it unsettled again.
    std::mem::forget(retry);
    drop(store);
    let store = open_file(&path).await;
    assert!(claimed(store.claim(key(1), A, now + 1_000, now).await).retry_of_unsettled());
}

#[tokio::test]
async fn file_a_second_verifier_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let _first = open_file(&path).await;
    let err = PaymentStore::open(&StoreSpec::File(path.clone()))
        .await
        .expect_err("second open");
    assert_eq!(err, StoreError::InUse { path: path.clone() });
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "the payment-state file {} is in use by another verifier",
            path.display()
        )),
        "{msg}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn file_is_created_private_with_its_directories() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.redb");
    let store = open_file(&path).await;
    store.check().await.expect("check");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
}

#[tokio::test]
async fn file_that_is_not_a_store_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a database, but somebody's notes\n".repeat(200)).unwrap();
    let err = PaymentStore::open(&StoreSpec::File(path.clone()))
        .await
        .expect_err("garbage");
    assert!(matches!(err, StoreError::File { .. }), "{err}");
    assert!(err.to_string().contains("move it aside"), "{err}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("not a database")
    );
}

/// Changes queued together share one commit; each one is still on disk when its call returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_many_concurrent_payments_are_all_recorded_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let now = unix_now();
    let store = open_file(&path).await;
    let tasks: Vec<_> = (0..200u8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut claim = claimed(store.claim(key(n), A, now + 1_000, now).await);
                claim.settling().await.expect("settling");
                claim.consume(Some(tx(n))).await.expect("consume");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    drop(store);
    let store = open_file(&path).await;
    for n in 0..200u8 {
        assert_eq!(
            refused(store.claim(key(n), A, now + 1_000, now).await),
            Replayed::Used,
            "payment {n}"
        );
    }
}

#[tokio::test]
async fn file_prune_removes_only_expired_used_and_unsettled_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store = open_file(&path).await;
    claimed(store.claim(key(1), A, 200, 100).await)
        .consume(None)
        .await
        .unwrap();
    claimed(store.claim(key(2), A, 400, 100).await)
        .consume(None)
        .await
        .unwrap();
    claimed(store.claim(key(3), A, 200, 100).await)
        .mark_unsettled(None)
        .await
        .unwrap();
    let _in_flight = claimed(store.claim(key(4), A, 200, 100).await);
    assert_eq!(store.prune(300).await.unwrap(), 2);
    assert_eq!(store.prune(300).await.unwrap(), 0);
    assert_eq!(
        refused(store.claim(key(2), A, 400, 300).await),
        Replayed::Used
    );
    assert_eq!(
        refused(store.claim(key(4), A, 200, 150).await),
        Replayed::InFlight
    );
    claimed(store.claim(key(3), B, 400, 300).await);
}

// --- redis -------------------------------------------------------------------------------

/// Long enough for the assertions made while it lives on a busy 2-core machine.
const SHORT_LEASE: Lease = Lease {
    length: Duration::from_millis(1_000),
    renew_every: None,
};
const AFTER_SHORT_LEASE: Duration = Duration::from_millis(1_300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_replicas_let_exactly_one_of_100_concurrent_claims_through() {
    let server = RedisServer::start();
    let replicas = vec![
        open_redis(&server, Lease::DEFAULT).await,
        open_redis(&server, Lease::DEFAULT).await,
    ];
    for round in 0..3 {
        exactly_one_of_many_concurrent_claims_wins(replicas.clone()).await;
        // Free the key for the next round by letting validBefore pass.
        let now = unix_now();
        let c = claimed(
            replicas[round % 2]
                .claim(key(9), A, now + 2_000, now + 1_000)
                .await,
        );
        c.release().await.unwrap();
    }
    // What one replica recorded, the other sees.
    let now = unix_now();
    claimed(replicas[0].claim(key(1), A, now + 100, now).await)
        .mark_unsettled(Some(tx(5)))
        .await
        .unwrap();
    assert_eq!(
        refused(replicas[1].claim(key(1), B, now + 100, now).await),
        Replayed::Unresolved
    );
    let retry = claimed(replicas[1].claim(key(1), A, now + 100, now).await);
    assert_eq!(retry.earlier_transaction(), Some(tx(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_an_in_flight_claim_of_a_dead_replica_is_taken_over_after_its_lease() {
    let server = RedisServer::start();
    let dead = open_redis(&server, SHORT_LEASE).await;
    let alive = open_redis(&server, Lease::DEFAULT).await;
    let now = unix_now();
    std::mem::forget(claimed(dead.claim(key(1), A, now + 1_000, now).await));
    assert_eq!(
        refused(alive.claim(key(1), B, now + 1_000, now).await),
        Replayed::InFlight
    );
    tokio::time::sleep(AFTER_SHORT_LEASE).await;
    let c = claimed(alive.claim(key(1), B, now + 1_000, now).await);
    assert!(!c.retry_of_unsettled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_settlement_of_a_dead_replica_is_unsettled_after_its_lease() {
    let server = RedisServer::start();
    let dead = open_redis(&server, SHORT_LEASE).await;
    let alive = open_redis(&server, Lease::DEFAULT).await;
    let now = unix_now();
    let mut c = claimed(dead.claim(key(1), A, now + 1_000, now).await);
    c.settling().await.unwrap();
    std::mem::forget(c);
    assert_eq!(
        refused(alive.claim(key(1), A, now + 1_000, now).await),
        Replayed::InFlight
    );
    tokio::time::sleep(AFTER_SHORT_LEASE).await;
    assert_eq!(
        refused(alive.claim(key(1), B, now + 1_000, now).await),
        Replayed::Unresolved
    );
    let retry = claimed(alive.claim(key(1), A, now + 1_000, now).await);
    assert!(retry.retry_of_unsettled());
    // The retry holds it (with a live lease) until it ends.
    assert_eq!(
        refused(alive.claim(key(1), A, now + 1_000, now).await),
        Replayed::InFlight
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_live_claim_keeps_its_lease_renewed() {
    let server = RedisServer::start();
    let lease = Lease {
        length: Duration::from_millis(1_000),
        renew_every: Some(Duration::from_millis(200)),
    };
    let replica = open_redis(&server, lease).await;
    let other = open_redis(&server, Lease::DEFAULT).await;
    let now = unix_now();
    let c = claimed(replica.claim(key(1), A, now + 1_000, now).await);
    // Well past the lease: only renewals keep it.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        refused(other.claim(key(1), B, now + 1_000, now).await),
        Replayed::InFlight
    );
    c.consume(None).await.expect("still this claim's");
    assert_eq!(
        refused(other.claim(key(1), B, now + 1_000, now).await),
        Replayed::Used
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_claim_that_lost_its_lease_overwrites_nothing() {
    let server = RedisServer::start();
    let slow = open_redis(&server, SHORT_LEASE).await;
    let other = open_redis(&server, Lease::DEFAULT).await;
    let now = unix_now();
    let mut late = claimed(slow.claim(key(1), A, now + 1_000, now).await);
    late.stop_renewal();
    tokio::time::sleep(AFTER_SHORT_LEASE).await;
    let taker = claimed(other.claim(key(1), B, now + 1_000, now).await);
    let mut late_settling = claimed(slow.claim(key(2), A, now + 1_000, now).await);
    assert_eq!(late.settling().await, Err(StoreError::LostClaim));
    assert_eq!(late.consume(Some(tx(1))).await, Err(StoreError::LostClaim));
    // The taker's entry is intact: still its claim, and it finishes normally.
    assert_eq!(
        refused(slow.claim(key(1), A, now + 1_000, now).await),
        Replayed::InFlight
    );
    taker.consume(None).await.expect("the taker's claim");
    assert_eq!(
        refused(slow.claim(key(1), A, now + 1_000, now).await),
        Replayed::Used
    );
    // Lost to a same-payment retry after a settling lease ran out: the retry is not clobbered.
    late_settling.settling().await.unwrap();
    tokio::time::sleep(AFTER_SHORT_LEASE).await;
    let retry = claimed(other.claim(key(2), A, now + 1_000, now).await);
    assert!(retry.retry_of_unsettled());
    assert_eq!(late_settling.release().await, Err(StoreError::LostClaim));
    assert_eq!(
        refused(slow.claim(key(2), A, now + 1_000, now).await),
        Replayed::InFlight
    );
    drop(retry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_fast_and_the_same_store_recovers_when_it_is_back() {
    let mut server = RedisServer::start();
    let store = open_redis(&server, Lease::DEFAULT).await;
    let now = unix_now();
    claimed(store.claim(key(1), A, now + 1_000, now).await)
        .consume(None)
        .await
        .unwrap();

    server.stop();
    for n in 2..5 {
        let started = Instant::now();
        let result = store.claim(key(n), A, now + 1_000, now).await;
        let took = started.elapsed();
        match result {
            Err(ClaimError::Store(StoreError::Unavailable { store: s, .. })) => {
                assert_eq!(s, store.describe());
            }
            Err(e) => panic!("expected Unavailable, got {e}"),
            Ok(_) => panic!("granted a claim with Redis down"),
        }
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
    let started = Instant::now();
    assert!(matches!(
        store.check().await,
        Err(StoreError::Unavailable { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let c = loop {
        match store.claim(key(2), A, now + 1_000, now).await {
            Ok(c) => break c,
            Err(ClaimError::Store(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("not back after Redis restarted: {e}"),
        }
    };
    c.consume(None).await.unwrap();
    assert_eq!(
        refused(store.claim(key(2), B, now + 1_000, now).await),
        Replayed::Used
    );
    store.check().await.expect("ready again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_follow_the_layout_and_expire_after_valid_before() {
    let server = RedisServer::start();
    let store = open(&server.url("?prefix=myapp")).await;
    let now = unix_now();
    let k = ReplayKey {
        chain_id: 8453,
        asset: Address::repeat_byte(0xAB),
        from: Address::repeat_byte(0xCD),
        nonce: B256::repeat_byte(0xEF),
    };
    claimed(store.claim(k, A, now + 1_000, now).await)
        .consume(Some(tx(0x11)))
        .await
        .unwrap();
    let expected = format!(
        "myapp:auth:8453:0x{}:0x{}:0x{}",
        "ab".repeat(20),
        "cd".repeat(20),
        "ef".repeat(32)
    );
    let client = ::redis::Client::open(server.url("")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("myapp:auth:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![expected.clone()]);
    let fields: std::collections::HashMap<String, String> = ::redis::cmd("HGETALL")
        .arg(&expected)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fields["v"], "1");
    assert_eq!(fields["s"], "used");
    assert_eq!(fields["b"], "a1".repeat(32));
    assert_eq!(fields["vb"], (now + 1_000).to_string());
    assert_eq!(fields["t"], format!("0x{}", "11".repeat(32)));
    assert_eq!(fields["c"], now.to_string());
    assert!(
        !fields.contains_key("o") && !fields.contains_key("l"),
        "{fields:?}"
    );
    let expire_at: i64 = ::redis::cmd("EXPIRETIME")
        .arg(&expected)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(expire_at as u64, now + 1_000 + redis::EXPIRY_GRACE_SECS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_password_connects_and_never_shows_it() {
    let secret = "s3cret-p@ss";
    let server = RedisServer::start_with_password(Some(secret));
    let url = format!("redis://:s3cret-p%40ss@127.0.0.1:{}/0", server.port());
    let store = open(&url).await;
    let now = unix_now();
    claimed(store.claim(key(1), A, now + 100, now).await)
        .consume(None)
        .await
        .unwrap();
    assert_eq!(
        store.describe(),
        format!("redis redis://:***@127.0.0.1:{}/0", server.port())
    );
    assert!(!format!("{store:?}").contains("s3cret"));

    let wrong = format!("redis://default:wr0ng-s3cret@127.0.0.1:{}/0", server.port());
    let err = PaymentStore::open(&StoreSpec::parse(&wrong).unwrap())
        .await
        .expect_err("wrong password");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{msg}");
    assert!(!msg.contains("wr0ng-s3cret"), "{msg}");
    assert!(msg.contains("redis://default:***@"), "{msg}");
}

// --- spec --------------------------------------------------------------------------------

#[test]
fn spec_parses_memory_files_and_redis() {
    assert_eq!(StoreSpec::parse("memory").unwrap(), StoreSpec::Memory);
    assert_eq!(
        StoreSpec::parse("/var/lib/obol/state.redb").unwrap(),
        StoreSpec::File("/var/lib/obol/state.redb".into())
    );
    assert_eq!(
        StoreSpec::parse("./memory").unwrap(),
        StoreSpec::File("./memory".into())
    );
    let StoreSpec::Redis(plain) = StoreSpec::parse("redis://cache.svc").unwrap() else {
        panic!("not redis")
    };
    assert!(!plain.tls());
    assert_eq!(plain.prefix(), DEFAULT_REDIS_PREFIX);
    assert_eq!(plain.to_string(), "redis://cache.svc:6379/0");
    let StoreSpec::Redis(tls) =
        StoreSpec::parse("rediss://obol@cache.svc:6380/3?prefix=shop-1:x402").unwrap()
    else {
        panic!("not redis")
    };
    assert!(tls.tls());
    assert_eq!(tls.prefix(), "shop-1:x402");
    assert_eq!(
        tls.to_string(),
        "rediss://obol@cache.svc:6380/3?prefix=shop-1:x402"
    );
    assert_eq!(StoreSpec::parse("memory").unwrap().to_string(), "memory");
    assert_eq!(
        StoreSpec::parse("state.redb").unwrap().to_string(),
        "file state.redb"
    );
}

#[test]
fn spec_display_and_debug_never_show_a_password() {
    for (url, shown) in [
        ("redis://:hunter2@h:1/0", "redis redis://:***@h:1/0"),
        (
            "redis://user:hunter2@h/2",
            "redis redis://user:***@h:6379/2",
        ),
        (
            "rediss://user:hun%40ter2@h:6380",
            "redis rediss://user:***@h:6380/0",
        ),
    ] {
        let spec = StoreSpec::parse(url).unwrap();
        assert_eq!(spec.to_string(), shown);
        let debug = format!("{spec:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("hun%40ter2"),
            "{debug}"
        );
    }
}

#[test]
fn a_bad_spec_is_refused_clearly_without_echoing_credentials() {
    let refused = |s: &str| match StoreSpec::parse(s) {
        Err(StoreError::BadSpec(msg)) => msg,
        other => panic!("{s}: expected BadSpec, got {other:?}"),
    };
    assert!(refused("").contains("empty"));
    assert!(refused("  ").contains("empty"));
    let http = refused("http://user:hunter2@example.com/state");
    assert!(
        http.contains("`http://` is not a payment-state store"),
        "{http}"
    );
    assert!(!http.contains("hunter2"), "{http}");
    assert!(refused("redis://").contains("no host"));
    assert!(refused("redis://h/zero").contains("database number"));
    assert!(refused("redis://:hunter2@h/0?db=1").contains("unknown Redis URL option `db`"));
    assert!(refused("rediss://h/0#insecure").contains("cannot be turned off"));
    assert!(refused("redis://h/0?prefix=").contains("prefix"));
    assert!(refused("redis://h/0?prefix=has%20space").contains("prefix"));
    for s in [
        "http://user:hunter2@example.com",
        "redis://:hunter2@h/x",
        "redis://:hunter2@h/0?nope=1",
        "redis://:hunter2@/0",
    ] {
        assert!(!refused(s).contains("hunter2"), "{s}");
        assert!(
            !StoreSpec::parse(s)
                .unwrap_err()
                .to_string()
                .contains("hunter2")
        );
    }
}

#[test]
fn max_retention_is_31_days() {
    assert_eq!(MAX_RETENTION_SECS, 31 * 24 * 3600);
}
