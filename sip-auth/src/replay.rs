//! Replay protection: a fixed-size table of the nonces this node issued, with the highest `nc`
//! seen for each (what Kamailio's `nonce_count` / `one_time_nonce` do).
//!
//! The table has `size` slots of [`ReplayTable::BYTES_PER_NONCE`] bytes (8): 1 Mi tracked
//! nonces take 8 MiB, and the table never grows. Issue number `nid` lives in slot
//! `nid % size`; issuing nonce `nid + size` overwrites it, so when more than `size` nonces are
//! outstanding the oldest are evicted, and a response on an evicted nonce is answered as stale
//! (the client re-authenticates with a fresh nonce). A replay is never accepted: a nonce whose
//! slot is gone is never accepted again.

use alloc::vec;
use alloc::vec::Vec;

/// `nc` value marking a one-time nonce that has been used.
const USED: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    nid: u32,
    nc: u32,
}

/// Result of a replay check (only made after the response was verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// First use of this `nc` (or of this one-time nonce): accept.
    Fresh,
    /// `nc` not greater than one already accepted for this nonce: reject.
    Replay,
    /// One-time nonce used again: answer stale, so the client gets a fresh nonce.
    Reused,
    /// The nonce's slot was reused by a newer nonce: answer stale.
    Evicted,
}

/// Fixed-size nonce tracking table.
#[derive(Debug, Clone)]
pub struct ReplayTable {
    slots: Vec<Slot>,
    one_time: bool,
    next: u32,
}

impl ReplayTable {
    /// Memory per tracked nonce, in bytes.
    pub const BYTES_PER_NONCE: usize = core::mem::size_of::<Slot>();

    /// A table tracking `size` nonces (at least 1). With `one_time`, each nonce is accepted
    /// once; otherwise each `nc` must be greater than the last accepted one.
    pub fn new(size: usize, one_time: bool) -> Self {
        ReplayTable {
            slots: vec![Slot::default(); size.clamp(1, u32::MAX as usize)],
            one_time,
            next: 1,
        }
    }

    /// Number of slots (the bound on tracked nonces).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes used by the table.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * Self::BYTES_PER_NONCE
    }

    /// Reserve a slot for a new nonce and return its issue number.
    pub fn issue(&mut self) -> u32 {
        let nid = self.next;
        self.next = self.next.wrapping_add(1);
        if self.next == 0 {
            self.next = 1;
        }
        let len = self.slots.len();
        self.slots[nid as usize % len] = Slot { nid, nc: 0 };
        nid
    }

    /// Check and record a use of nonce `nid` with nonce count `nc` (`None`: the RFC 2069 form
    /// without qop, which is treated as a one-time use).
    pub fn check(&mut self, nid: u32, nc: Option<u32>) -> ReplayCheck {
        let len = self.slots.len();
        let slot = &mut self.slots[nid as usize % len];
        if nid == 0 || slot.nid != nid {
            return ReplayCheck::Evicted;
        }
        if self.one_time || nc.is_none() {
            if slot.nc == USED {
                return ReplayCheck::Reused;
            }
            slot.nc = USED;
            return ReplayCheck::Fresh;
        }
        let nc = nc.unwrap_or(0);
        if nc <= slot.nc || nc == USED {
            return ReplayCheck::Replay;
        }
        slot.nc = nc;
        ReplayCheck::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nc_must_increase() {
        let mut t = ReplayTable::new(4, false);
        let n = t.issue();
        assert_eq!(t.check(n, Some(1)), ReplayCheck::Fresh);
        assert_eq!(t.check(n, Some(1)), ReplayCheck::Replay);
        assert_eq!(t.check(n, Some(0)), ReplayCheck::Replay);
        assert_eq!(t.check(n, Some(3)), ReplayCheck::Fresh);
        assert_eq!(t.check(n, Some(2)), ReplayCheck::Replay);
        assert_eq!(t.check(n, None), ReplayCheck::Fresh);
        assert_eq!(t.check(n, None), ReplayCheck::Reused);
        assert_eq!(t.check(n, Some(9)), ReplayCheck::Replay);
    }

    #[test]
    fn eviction_makes_stale_and_memory_is_fixed() {
        let mut t = ReplayTable::new(4, true);
        let first = t.issue();
        let mem = t.memory_bytes();
        for _ in 0..4 {
            t.issue();
        }
        assert_eq!(t.check(first, None), ReplayCheck::Evicted);
        assert_eq!(t.check(12345, Some(1)), ReplayCheck::Evicted);
        assert_eq!(t.memory_bytes(), mem);
        assert_eq!(ReplayTable::BYTES_PER_NONCE, 8);
    }
}
