//! `--state <path>`: an embedded [redb] file, the default for one verifier process.
//!
//! - redb locks the file: a second verifier opening it gets [`StoreError::InUse`].
//! - Every state change that must outlive the process is committed (redb's default durability,
//!   `Immediate`: fsynced before `commit` returns) before the call that made it returns:
//!   settling, used, unsettled, and the removal of any of them. Changes go through one writer
//!   thread that commits what is queued together (group commit): under load one fsync serves
//!   many requests, and each request still waits for its own change to be on disk.
//! - A claim in flight (nothing sent to the facilitator yet) lives only in the writer's memory:
//!   only this process can hold it (the file is locked), and a restart would release it anyway.
//!   So a claim, and its release when the payment is refused, cost no fsync; a paid request
//!   costs two (settling, then used).
//! - Opening recovers from a verifier that died with claims open: settling entries become
//!   unsettled (a settlement may have been broadcast); in-flight entries an older verifier
//!   wrote to the file are removed (nothing was sent for them).
//!
//! Writes are queued to the writer thread and answered through a oneshot channel; `check`
//! (a read transaction) blocks and runs on tokio's blocking pool.
//!
//! Layout: one table `payments`, key = chain id (8 bytes, big endian) ‖ asset (20) ‖ from (20) ‖
//! nonce (32); value = the fixed little layout of [`encode`], starting with a format byte so
//! the file can evolve (an unknown format is refused, never overwritten).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use alloy_primitives::B256;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::super::replay::{Binding, ReplayKey, Replayed};
use super::StoreError;
use super::entry::{self, ClaimRequest, Entry, Granted, Lost, Outcome, Owner, State};

const PAYMENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("payments");

const KEY_LEN: usize = 8 + 20 + 20 + 32;

/// Format 1 of an entry, 107 bytes:
/// `[0]` format = 1 · `[1]` state (1 in flight, 2 settling, 3 unsettled, 4 used) ·
/// `[2..34]` binding · `[34..42]` valid_before (BE) · `[42..58]` owner · `[58..66]` lease_until
/// (BE) · `[66]` 1 when a transaction follows · `[67..99]` transaction (zeros when none) ·
/// `[99..107]` created_at (BE).
const FORMAT_1: u8 = 1;
const VALUE_LEN: usize = 107;

/// The most changes one transaction (one fsync) carries.
const MAX_BATCH: usize = 512;

type Table<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

type Key = [u8; KEY_LEN];

/// The claims in flight, owned by the writer thread (never written to the file).
type InFlight = HashMap<Key, Entry>;

/// The open file: its database, shared with the writer thread, and the writer's queue.
/// Dropping it stops the writer and waits for it, so the file is unlocked when drop returns.
#[derive(Debug)]
pub(super) struct FileStore {
    file: Arc<File>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// The database and its path (for messages).
#[derive(Debug)]
struct File {
    db: Database,
    path: PathBuf,
}

/// One change for the writer thread, and where its answer goes.
#[derive(Debug)]
struct Job {
    work: Work,
    answer: oneshot::Sender<Result<Done, StoreError>>,
}

#[derive(Debug)]
enum Work {
    Claim(ClaimRequest),
    Settling(ReplayKey, Owner),
    Finish(ReplayKey, Owner, Outcome),
    Prune(u64),
}

#[derive(Debug)]
enum Done {
    Claim(Result<Granted, Replayed>),
    Changed,
    Pruned(usize),
}

/// An answer of the writer thread on its way (see [`FileStore::finish_later`]).
pub(super) struct Pending(oneshot::Receiver<Result<Done, StoreError>>);

impl Pending {
    pub async fn wait(self) -> Result<(), StoreError> {
        changed(received(self.0.await))
    }

    /// Outside a runtime only.
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        changed(received(self.0.blocking_recv()))
    }
}

fn received(
    answer: Result<Result<Done, StoreError>, oneshot::error::RecvError>,
) -> Result<Done, StoreError> {
    answer.map_err(|_| StoreError::Task("the payment-state file's writer stopped".to_string()))?
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Task(format!(
        "the payment-state file's writer gave an unexpected answer ({done:?})"
    ))
}

fn changed(done: Result<Done, StoreError>) -> Result<(), StoreError> {
    match done? {
        Done::Changed => Ok(()),
        other => Err(unexpected(other)),
    }
}

impl FileStore {
    /// Opens (creating it, mode 0600, and its parent directories, mode 0700) and recovers the
    /// file at `path`, then starts its writer thread. Blocking.
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        let failed = |detail: String| StoreError::File {
            path: path.to_path_buf(),
            detail,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dirs(parent)
                .map_err(|e| failed(format!("cannot create its directory: {e}")))?;
        }
        let file = open_private_file(path).map_err(|e| failed(format!("cannot open it: {e}")))?;
        let db = redb::Builder::new()
            .create_file(file)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                    path: path.to_path_buf(),
                },
                other => failed(format!(
                    "it is not a payment-state file this verifier can open ({other}); move it aside or give another --state path"
                )),
            })?;
        let file = Arc::new(File {
            db,
            path: path.to_path_buf(),
        });
        let (released, unsettled) =
            file.transaction(&mut InFlight::new(), |batch| file.recover(batch))??;
        if released + unsettled > 0 {
            tracing::warn!(
                state = %path.display(),
                released,
                unsettled,
                "payment-state file: claims left open by a stopped verifier were recovered (in flight: released; settling: kept as unsettled, retryable by the same payment only)"
            );
        }
        let (jobs, queue) = mpsc::channel();
        let writer = {
            let file = Arc::clone(&file);
            std::thread::Builder::new()
                .name("obol-payment-state".to_string())
                .spawn(move || file.write_queued(queue))
                .map_err(|e| failed(format!("cannot start its writer thread: {e}")))?
        };
        Ok(FileStore {
            file,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    fn submit(&self, work: Work) -> Pending {
        let (answer, pending) = oneshot::channel();
        if let Some(jobs) = &self.jobs {
            // A stopped writer drops the job, and with it `answer`: `Pending` says so.
            let _ = jobs.send(Job { work, answer });
        }
        Pending(pending)
    }

    pub async fn claim(
        &self,
        request: ClaimRequest,
    ) -> Result<Result<Granted, Replayed>, StoreError> {
        match received(self.submit(Work::Claim(request)).0.await)? {
            Done::Claim(granted) => Ok(granted),
            other => Err(unexpected(other)),
        }
    }

    pub async fn settling(&self, key: ReplayKey, owner: Owner) -> Result<(), StoreError> {
        self.submit(Work::Settling(key, owner)).wait().await
    }

    pub async fn finish(
        &self,
        key: ReplayKey,
        owner: Owner,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        self.finish_later(key, owner, outcome).wait().await
    }

    /// Queues the end of a claim; the change is made whether or not the answer is awaited.
    pub fn finish_later(&self, key: ReplayKey, owner: Owner, outcome: Outcome) -> Pending {
        self.submit(Work::Finish(key, owner, outcome))
    }

    pub async fn prune(&self, now: u64) -> Result<usize, StoreError> {
        match received(self.submit(Work::Prune(now)).0.await)? {
            Done::Pruned(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// A read transaction: the file is open and readable (writes are checked by every claim).
    /// Blocking.
    pub fn check(&self) -> Result<(), StoreError> {
        let txn = self
            .file
            .db
            .begin_read()
            .map_err(|e| self.file.failed("starting a read", e))?;
        match txn.open_table(PAYMENTS) {
            Ok(_) | Err(redb::TableError::TableDoesNotExist(_)) => Ok(()),
            Err(e) => Err(self.file.failed("opening the payments table", e)),
        }
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what was queued; joining it
        // closes the database (the last reference) and unlocks the file.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The one write transaction of a batch, and what happened in it.
struct Batch<'t> {
    table: Table<'t>,
    /// The claims in flight before this batch.
    in_flight: &'t InFlight,
    /// This batch's changes to them (`None`: no longer in flight), kept once it succeeds.
    staged: HashMap<Key, Option<Entry>>,
    /// The file's table was written: the batch is committed.
    changed: bool,
    /// A read or write of the file that failed: the transaction is not committed, and every
    /// change in it is answered with this error.
    fault: std::cell::Cell<Option<StoreError>>,
}

impl Batch<'_> {
    fn in_flight_entry(&self, key: &Key) -> Option<Entry> {
        match self.staged.get(key) {
            Some(staged) => *staged,
            None => self.in_flight.get(key).copied(),
        }
    }
}

impl File {
    fn failed(&self, what: &str, err: impl std::fmt::Display) -> StoreError {
        StoreError::File {
            path: self.path.clone(),
            detail: format!(
                "{what} failed ({err}); payments are refused until it works (check the disk, then restart the verifier)"
            ),
        }
    }

    /// A failed read or write inside `batch`: recorded, so the batch is not committed.
    fn fault(&self, batch: &Batch<'_>, what: &str, err: impl std::fmt::Display) -> StoreError {
        let fault = self.failed(what, err);
        batch.fault.set(Some(fault.clone()));
        fault
    }

    fn unreadable(&self, detail: String) -> StoreError {
        StoreError::Unreadable {
            store: format!("file {}", self.path.display()),
            detail,
        }
    }

    /// The writer thread: takes what is queued (up to [`MAX_BATCH`] changes), applies it in
    /// order in one transaction, commits it, then answers each change. Ends when the queue is
    /// closed and empty.
    fn write_queued(&self, queue: mpsc::Receiver<Job>) {
        let mut in_flight = InFlight::new();
        while let Ok(first) = queue.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let (works, answers): (Vec<Work>, Vec<_>) =
                jobs.into_iter().map(|job| (job.work, job.answer)).unzip();
            let done = self.transaction(&mut in_flight, |batch| {
                works
                    .into_iter()
                    .map(|work| self.apply(batch, work))
                    .collect::<Vec<_>>()
            });
            match done {
                Ok(done) => {
                    for (answer, done) in answers.into_iter().zip(done) {
                        let _ = answer.send(done);
                    }
                }
                Err(e) => {
                    for answer in answers {
                        let _ = answer.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    fn apply(&self, batch: &mut Batch<'_>, work: Work) -> Result<Done, StoreError> {
        match work {
            Work::Claim(request) => self.claim(batch, &request).map(Done::Claim),
            Work::Settling(key, owner) => self.settling(batch, &key, owner).map(|()| Done::Changed),
            Work::Finish(key, owner, outcome) => self
                .finish(batch, &key, owner, outcome)
                .map(|()| Done::Changed),
            Work::Prune(now) => self.prune(batch, now).map(Done::Pruned),
        }
    }

    /// Runs `work` in one write transaction, committed (durably) only when the file's table
    /// changed, so a batch of claims, releases and refusals costs no fsync; not committed at all
    /// when a read or write failed. The changes to the claims in flight are kept only when the
    /// batch succeeded.
    fn transaction<T>(
        &self,
        in_flight: &mut InFlight,
        work: impl FnOnce(&mut Batch<'_>) -> T,
    ) -> Result<T, StoreError> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| self.failed("starting a write", e))?;
        let (result, changed, fault, staged) = {
            let table = txn
                .open_table(PAYMENTS)
                .map_err(|e| self.failed("opening the payments table", e))?;
            let mut batch = Batch {
                table,
                in_flight,
                staged: HashMap::new(),
                changed: false,
                fault: std::cell::Cell::new(None),
            };
            let result = work(&mut batch);
            (
                result,
                batch.changed,
                batch.fault.into_inner(),
                batch.staged,
            )
        };
        if let Some(fault) = fault {
            let _ = txn.abort();
            return Err(fault);
        }
        match changed {
            true => txn.commit().map_err(|e| self.failed("committing", e))?,
            false => txn.abort().map_err(|e| self.failed("aborting", e))?,
        }
        for (key, entry) in staged {
            match entry {
                Some(entry) => in_flight.insert(key, entry),
                None => in_flight.remove(&key),
            };
        }
        Ok(result)
    }

    /// The entry of `key`: a claim in flight (this batch's view), else the file's.
    fn read(&self, batch: &Batch<'_>, key: &Key) -> Result<Option<Entry>, StoreError> {
        if let Some(entry) = batch.in_flight_entry(key) {
            return Ok(Some(entry));
        }
        let value = batch
            .table
            .get(key.as_slice())
            .map_err(|e| self.fault(batch, "reading", e))?;
        value
            .map(|v| decode(v.value()).map_err(|detail| self.unreadable(detail)))
            .transpose()
    }

    /// Stores the entry of `key` (`None`: removes it): a claim in flight in memory, anything
    /// else in the file. A claim in flight may shadow an expired entry of the file, which then
    /// stays there until it is pruned or overwritten.
    fn write(
        &self,
        batch: &mut Batch<'_>,
        key: &Key,
        entry: Option<&Entry>,
    ) -> Result<(), StoreError> {
        let was_in_flight = batch.in_flight_entry(key).is_some();
        let result = match entry {
            Some(entry) if entry.state == State::InFlight => {
                batch.staged.insert(*key, Some(*entry));
                return Ok(());
            }
            None if was_in_flight => {
                batch.staged.insert(*key, None);
                return Ok(());
            }
            Some(entry) => batch
                .table
                .insert(key.as_slice(), encode(entry).as_slice())
                .map(drop),
            None => batch.table.remove(key.as_slice()).map(drop),
        };
        result.map_err(|e| self.fault(batch, "writing", e))?;
        if was_in_flight {
            batch.staged.insert(*key, None);
        }
        batch.changed = true;
        Ok(())
    }

    fn claim(
        &self,
        batch: &mut Batch<'_>,
        request: &ClaimRequest,
    ) -> Result<Result<Granted, Replayed>, StoreError> {
        let key = encode_key(&request.key);
        let existing = self.read(batch, &key)?;
        match entry::claim(existing.as_ref(), request) {
            Ok((entry, granted)) => {
                self.write(batch, &key, Some(&entry))?;
                Ok(Ok(granted))
            }
            Err(replayed) => Ok(Err(replayed)),
        }
    }

    fn settling(
        &self,
        batch: &mut Batch<'_>,
        key: &ReplayKey,
        owner: Owner,
    ) -> Result<(), StoreError> {
        let key = encode_key(key);
        let existing = self.read(batch, &key)?;
        let entry = entry::settling(existing.as_ref(), owner).map_err(lost)?;
        // A retry of an unsettled payment is settling already: nothing to write.
        if existing == Some(entry) {
            return Ok(());
        }
        self.write(batch, &key, Some(&entry))
    }

    fn finish(
        &self,
        batch: &mut Batch<'_>,
        key: &ReplayKey,
        owner: Owner,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let key = encode_key(key);
        let existing = self.read(batch, &key)?;
        let entry = entry::finish(existing.as_ref(), owner, outcome).map_err(lost)?;
        self.write(batch, &key, entry.as_ref())
    }

    fn prune(&self, batch: &mut Batch<'_>, now: u64) -> Result<usize, StoreError> {
        let expired = self.keys_where(batch, |e| e.is_expired(now))?;
        for key in &expired {
            self.write(batch, key, None)?;
        }
        Ok(expired.len())
    }

    /// Applies [`entry::recover_after_restart`] to every open claim; returns how many were
    /// released and how many became unsettled.
    fn recover(&self, batch: &mut Batch<'_>) -> Result<(usize, usize), StoreError> {
        let open = self.keys_where(batch, |e| {
            matches!(e.state, State::InFlight | State::Settling)
        })?;
        let (mut released, mut unsettled) = (0, 0);
        for key in &open {
            let Some(entry) = self.read(batch, key)? else {
                continue;
            };
            let recovered = entry::recover_after_restart(&entry);
            match recovered {
                None => released += 1,
                Some(_) => unsettled += 1,
            }
            self.write(batch, key, recovered.as_ref())?;
        }
        Ok((released, unsettled))
    }

    /// The keys of the entries matching `pred`. Any unreadable entry is an error: a file this
    /// verifier does not fully understand is not one it may prune or recover.
    fn keys_where(
        &self,
        batch: &Batch<'_>,
        pred: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<Key>, StoreError> {
        let mut keys = Vec::new();
        for item in batch
            .table
            .iter()
            .map_err(|e| self.fault(batch, "listing", e))?
        {
            let (key, value) = item.map_err(|e| self.fault(batch, "listing", e))?;
            let entry = decode(value.value()).map_err(|detail| self.unreadable(detail))?;
            if pred(&entry) {
                let key: Key = key.value().try_into().map_err(|_| {
                    self.unreadable(format!("a key of {} bytes", key.value().len()))
                })?;
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

fn lost(_: Lost) -> StoreError {
    StoreError::LostClaim
}

#[cfg(unix)]
fn create_private_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dirs(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Opens `path` read-write, creating it with mode 0600; an existing file readable by others is
/// narrowed to 0600 (it says who paid for what).
#[cfg(unix)]
fn open_private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_private_file(path: &Path) -> io::Result<std::fs::File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn encode_key(key: &ReplayKey) -> Key {
    let mut out = [0u8; KEY_LEN];
    out[..8].copy_from_slice(&key.chain_id.to_be_bytes());
    out[8..28].copy_from_slice(key.asset.as_slice());
    out[28..48].copy_from_slice(key.from.as_slice());
    out[48..].copy_from_slice(key.nonce.as_slice());
    out
}

#[cfg(test)]
pub(super) fn decode_key(bytes: &Key) -> ReplayKey {
    let mut chain_id = [0u8; 8];
    chain_id.copy_from_slice(&bytes[..8]);
    ReplayKey {
        chain_id: u64::from_be_bytes(chain_id),
        asset: alloy_primitives::Address::from_slice(&bytes[8..28]),
        from: alloy_primitives::Address::from_slice(&bytes[28..48]),
        nonce: B256::from_slice(&bytes[48..]),
    }
}

fn encode(e: &Entry) -> [u8; VALUE_LEN] {
    let mut out = [0u8; VALUE_LEN];
    out[0] = FORMAT_1;
    out[1] = match e.state {
        State::InFlight => 1,
        State::Settling => 2,
        State::Unsettled => 3,
        State::Used => 4,
    };
    out[2..34].copy_from_slice(e.binding.0.as_slice());
    out[34..42].copy_from_slice(&e.valid_before.to_be_bytes());
    out[42..58].copy_from_slice(&e.owner.0);
    out[58..66].copy_from_slice(&e.lease_until.to_be_bytes());
    if let Some(tx) = e.transaction {
        out[66] = 1;
        out[67..99].copy_from_slice(tx.as_slice());
    }
    out[99..107].copy_from_slice(&e.created_at.to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Entry, String> {
    match bytes.first() {
        Some(&FORMAT_1) if bytes.len() == VALUE_LEN => {}
        Some(&FORMAT_1) => return Err(format!("a format-1 entry of {} bytes", bytes.len())),
        Some(other) => return Err(format!("entry format {other}")),
        None => return Err("an empty entry".to_string()),
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let state = match bytes[1] {
        1 => State::InFlight,
        2 => State::Settling,
        3 => State::Unsettled,
        4 => State::Used,
        other => return Err(format!("entry state {other}")),
    };
    let mut owner = [0u8; 16];
    owner.copy_from_slice(&bytes[42..58]);
    let transaction = match bytes[66] {
        0 => None,
        1 => Some(B256::from_slice(&bytes[67..99])),
        other => return Err(format!("transaction flag {other}")),
    };
    Ok(Entry {
        state,
        binding: Binding(B256::from_slice(&bytes[2..34])),
        valid_before: u64_at(34),
        owner: Owner(owner),
        lease_until: u64_at(58),
        transaction,
        created_at: u64_at(99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    #[test]
    fn entries_and_keys_round_trip_through_the_file_layout() {
        let key = ReplayKey {
            chain_id: 8453,
            asset: Address::repeat_byte(0xaa),
            from: Address::repeat_byte(0xbb),
            nonce: B256::repeat_byte(0xcc),
        };
        assert_eq!(decode_key(&encode_key(&key)), key);
        for (state, transaction) in [
            (State::InFlight, None),
            (State::Settling, None),
            (State::Unsettled, Some(B256::repeat_byte(7))),
            (State::Used, Some(B256::repeat_byte(8))),
        ] {
            let e = Entry {
                state,
                binding: Binding(B256::repeat_byte(1)),
                valid_before: 1_700_000_000,
                owner: Owner([9; 16]),
                lease_until: 0,
                transaction,
                created_at: 1_699_999_000,
            };
            assert_eq!(decode(&encode(&e)), Ok(e));
        }
    }

    /// The entries the file holds (what a restart would find).
    fn on_disk(store: &FileStore) -> Vec<(ReplayKey, State)> {
        let txn = store.file.db.begin_read().unwrap();
        let Ok(table) = txn.open_table(PAYMENTS) else {
            return Vec::new();
        };
        table
            .iter()
            .unwrap()
            .map(|item| {
                let (k, v) = item.unwrap();
                let k: Key = k.value().try_into().unwrap();
                (decode_key(&k), decode(v.value()).unwrap().state)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_claim_in_flight_stays_in_memory_and_settling_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(&dir.path().join("state.redb")).unwrap();
        let key = ReplayKey {
            chain_id: 84532,
            asset: Address::repeat_byte(0xaa),
            from: Address::repeat_byte(0xbb),
            nonce: B256::repeat_byte(1),
        };
        let request = |owner| ClaimRequest {
            key,
            binding: Binding(B256::repeat_byte(2)),
            valid_before: u64::MAX / 2,
            now: 1_700_000_000,
            owner,
        };
        let (first, second) = (Owner([1; 16]), Owner([2; 16]));
        store.claim(request(first)).await.unwrap().unwrap();
        // In flight: held against a second claim, but not written (no fsync for it).
        assert_eq!(
            store.claim(request(second)).await.unwrap(),
            Err(Replayed::InFlight)
        );
        assert_eq!(on_disk(&store), vec![]);
        // Released: claimable again, and still nothing on disk.
        store.finish(key, first, Outcome::Released).await.unwrap();
        assert_eq!(on_disk(&store), vec![]);
        store.claim(request(second)).await.unwrap().unwrap();
        // A settlement about to be sent must outlive the process: it is on disk before the
        // answer, and so is its end.
        store.settling(key, second).await.unwrap();
        assert_eq!(on_disk(&store), vec![(key, State::Settling)]);
        store
            .finish(key, second, Outcome::Used(None))
            .await
            .unwrap();
        assert_eq!(on_disk(&store), vec![(key, State::Used)]);
        assert_eq!(
            store.claim(request(first)).await.unwrap(),
            Err(Replayed::Used)
        );
    }

    #[test]
    fn an_entry_of_an_unknown_format_is_refused() {
        let mut bytes = encode(&Entry {
            state: State::Used,
            binding: Binding(B256::ZERO),
            valid_before: 1,
            owner: Owner::NONE,
            lease_until: 0,
            transaction: None,
            created_at: 0,
        });
        bytes[0] = 2;
        assert_eq!(decode(&bytes), Err("entry format 2".to_string()));
        assert!(decode(&bytes[..10]).is_err());
        assert!(decode(&[]).is_err());
    }
}
