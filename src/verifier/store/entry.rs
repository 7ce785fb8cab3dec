//! One authorization's entry, and the state machine the single-process backends (memory, file)
//! apply. The Redis backend applies the same machine in Lua, plus leases (see `redis.rs`).

use alloy_primitives::B256;

use super::super::replay::{Binding, ReplayKey, Replayed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// A request is working with this payment; nothing has been sent to the facilitator.
    InFlight,
    /// A request is about to send (or has sent) the settlement; its outcome is not known yet.
    Settling,
    /// A settlement was attempted and its outcome is unknown; the same payment may retry.
    Unsettled,
    /// The payment bought something; refused until `valid_before`.
    Used,
}

/// The random token of one claim: finishing writes apply only while the entry still carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner(pub [u8; 16]);

impl Owner {
    /// The owner of an entry no claim works with (Unsettled, Used).
    pub const NONE: Owner = Owner([0; 16]);

    pub fn random() -> Owner {
        loop {
            let owner = Owner(rand::random());
            if owner != Owner::NONE {
                return owner;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub state: State,
    pub binding: Binding,
    /// The authorization's `validBefore` (unix seconds): the entry is kept until then.
    pub valid_before: u64,
    pub owner: Owner,
    /// Unix milliseconds until which the owner's claim is alive. Only Redis uses leases; the
    /// single-process backends write 0 (the one process owning the store knows its claims).
    pub lease_until: u64,
    /// The settlement transaction an attempt recorded, if any.
    pub transaction: Option<B256>,
    /// When the entry was first claimed (unix seconds).
    pub created_at: u64,
}

impl Entry {
    fn is_owned_by(&self, owner: Owner) -> bool {
        matches!(self.state, State::InFlight | State::Settling) && self.owner == owner
    }

    /// Whether [`super::PaymentStore::prune`] forgets it: used or unsettled, and expired.
    pub fn is_expired(&self, now: u64) -> bool {
        matches!(self.state, State::Used | State::Unsettled) && self.valid_before <= now
    }
}

/// One claim attempt.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClaimRequest {
    pub key: ReplayKey,
    pub binding: Binding,
    pub valid_before: u64,
    pub now: u64,
    pub owner: Owner,
}

/// What a successful claim learned from the entry it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Granted {
    pub retry_of_unsettled: bool,
    /// The `validBefore` the entry is kept until (a retry keeps the first attempt's).
    pub valid_before: u64,
    pub earlier_transaction: Option<B256>,
}

/// How a claim ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Used (granted or settled); a `None` transaction keeps the one recorded earlier.
    Used(Option<B256>),
    /// Settlement outcome unknown; a `None` transaction keeps the one recorded earlier.
    Unsettled(Option<B256>),
    /// Nothing moved: forget the entry.
    Released,
}

/// The entry is not (any more) the claim's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lost;

/// The claim transition when one process owns the store: in-flight and settling entries always
/// belong to a live claim. Returns the entry to store and what the claim learned.
pub(super) fn claim(
    existing: Option<&Entry>,
    request: &ClaimRequest,
) -> Result<(Entry, Granted), Replayed> {
    let fresh = || {
        let entry = Entry {
            state: State::InFlight,
            binding: request.binding,
            valid_before: request.valid_before,
            owner: request.owner,
            lease_until: 0,
            transaction: None,
            created_at: request.now,
        };
        let granted = Granted {
            retry_of_unsettled: false,
            valid_before: request.valid_before,
            earlier_transaction: None,
        };
        Ok((entry, granted))
    };
    let Some(e) = existing else { return fresh() };
    match e.state {
        State::InFlight | State::Settling => Err(Replayed::InFlight),
        State::Used if e.valid_before > request.now => Err(Replayed::Used),
        State::Used => fresh(),
        State::Unsettled if e.binding != request.binding => Err(Replayed::Unresolved),
        State::Unsettled => {
            // The retry resumes the settlement: it is Settling from the start, so a crash during
            // it leaves the payment unsettled (never released).
            let entry = Entry {
                state: State::Settling,
                owner: request.owner,
                ..*e
            };
            let granted = Granted {
                retry_of_unsettled: true,
                valid_before: e.valid_before,
                earlier_transaction: e.transaction,
            };
            Ok((entry, granted))
        }
    }
}

/// `settling()`: the claim's entry becomes Settling (a retry's already is).
pub(super) fn settling(existing: Option<&Entry>, owner: Owner) -> Result<Entry, Lost> {
    match existing {
        Some(e) if e.is_owned_by(owner) => Ok(Entry {
            state: State::Settling,
            ..*e
        }),
        _ => Err(Lost),
    }
}

/// The end of a claim: the entry to store (`None`: remove it).
pub(super) fn finish(
    existing: Option<&Entry>,
    owner: Owner,
    outcome: Outcome,
) -> Result<Option<Entry>, Lost> {
    let e = match existing {
        Some(e) if e.is_owned_by(owner) => e,
        _ => return Err(Lost),
    };
    let ended = |state, transaction: Option<B256>| Entry {
        state,
        owner: Owner::NONE,
        lease_until: 0,
        transaction: transaction.or(e.transaction),
        ..*e
    };
    Ok(match outcome {
        Outcome::Used(tx) => Some(ended(State::Used, tx)),
        Outcome::Unsettled(tx) => Some(ended(State::Unsettled, tx)),
        Outcome::Released => None,
    })
}

/// What a restarted single process does with the entries of the claims that died with the
/// previous one: in-flight ones sent nothing and are removed (`None`); settling ones may have
/// been broadcast and become unsettled.
pub(super) fn recover_after_restart(e: &Entry) -> Option<Entry> {
    match e.state {
        State::InFlight => None,
        State::Settling => Some(Entry {
            state: State::Unsettled,
            owner: Owner::NONE,
            lease_until: 0,
            ..*e
        }),
        State::Unsettled | State::Used => Some(*e),
    }
}
