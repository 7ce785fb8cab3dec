//! `--state memory`: the entries in this process, gone with it. Sharded to keep lock contention
//! low; every operation is one short critical section, so it runs inline (no blocking pool).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

use super::super::replay::{ReplayKey, Replayed};
use super::entry::{self, ClaimRequest, Entry, Granted, Lost, Outcome, Owner};

const SHARDS: usize = 16;

type Shard = HashMap<ReplayKey, Entry>;

#[derive(Debug)]
pub(super) struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

/// A panic while holding a shard lock cannot leave the map inconsistent (single inserts and
/// removes), so a poisoned lock is still usable.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    fn shard(&self, key: &ReplayKey) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        lock(&self.shards[index])
    }

    pub fn claim(&self, request: &ClaimRequest) -> Result<Granted, Replayed> {
        let mut map = self.shard(&request.key);
        let (entry, granted) = entry::claim(map.get(&request.key), request)?;
        map.insert(request.key, entry);
        Ok(granted)
    }

    pub fn settling(&self, key: &ReplayKey, owner: Owner) -> Result<(), Lost> {
        let mut map = self.shard(key);
        let entry = entry::settling(map.get(key), owner)?;
        map.insert(*key, entry);
        Ok(())
    }

    pub fn finish(&self, key: &ReplayKey, owner: Owner, outcome: Outcome) -> Result<(), Lost> {
        let mut map = self.shard(key);
        match entry::finish(map.get(key), owner, outcome)? {
            Some(entry) => map.insert(*key, entry),
            None => map.remove(key),
        };
        Ok(())
    }

    pub fn prune(&self, now: u64) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut map = lock(shard);
            let before = map.len();
            map.retain(|_, e| !e.is_expired(now));
            removed += before - map.len();
        }
        removed
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}
