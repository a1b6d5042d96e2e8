//! Replay protection: a fixed-size table of the nonces this node issued, with the highest `nc`
//! seen for each (what Kamailio's `nonce_count` / `one_time_nonce` do).
//!
//! The table has `size` slots of [`ReplayTable::BYTES_PER_NONCE`] bytes (8): 1 Mi tracked
//! nonces take 8 MiB, and the table never grows. Issue number `nid` lives in slot
//! `nid * stride % size` (a stride prime to `size`, so that consecutive nonces fall on
//! different cache lines); issuing nonce `nid + size` overwrites it, so when more than `size`
//! nonces are outstanding the oldest are evicted, and a response on an evicted nonce is
//! answered as stale (the client re-authenticates with a fresh nonce). A replay is never
//! accepted: a nonce whose slot is gone is never accepted again.
//!
//! # Shared by threads, lock-free
//!
//! Every method takes `&self`. A slot is one 64-bit atomic word holding the nonce's issue
//! number (high half) and its highest accepted `nc` (low half), and a check is a
//! compare-and-swap from the value it read to the value with the new `nc`: if another thread
//! changed the slot in between, the swap fails and the check is made again against what that
//! thread wrote. So the accepted `nc` of a nonce strictly increase in the order the swaps took
//! effect, whichever threads present them, and of two threads presenting the same `nc` exactly
//! one is accepted. Issue numbers come from an atomic counter. The slot word publishes no
//! other memory, so relaxed ordering is enough: all operations on one atomic are totally
//! ordered whatever the ordering argument. On targets without 64-bit atomics the word is a
//! locked `u64` instead (see `sync`).

use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use crate::sync::{AtomicU64, Padded};

/// `nc` value marking a one-time nonce that has been used.
const USED: u32 = u32::MAX;

fn pack(nid: u32, nc: u32) -> u64 {
    (u64::from(nid) << 32) | u64::from(nc)
}

fn unpack(w: u64) -> (u32, u32) {
    ((w >> 32) as u32, w as u32)
}

/// Whether issue number `a` was issued after `b` (serial-number order, so that the counter
/// may wrap).
fn later(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 1 << 31
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

/// Fixed-size nonce tracking table, shared by reference between threads (see the module
/// documentation).
#[derive(Debug)]
pub struct ReplayTable {
    slots: Vec<AtomicU64>,
    /// Slot of issue number `nid`: `nid * stride % size`, with `stride` prime to `size`.
    stride: u64,
    one_time: bool,
    /// On its own cache lines: written by every issue, while the fields above are read by
    /// every check.
    next: Padded<AtomicU64>,
}

/// Strides that put consecutive issue numbers at least 17 slots (136 bytes) apart, so that
/// nonces issued one after the other, whose responses tend to arrive together on different
/// threads, do not share a cache line. Any 7 of these primes multiply to more than 2^32, so
/// at most 6 divide a size and one of the others always fits.
const STRIDES: [u64; 9] = [17, 19, 23, 29, 31, 37, 41, 43, 47];

impl ReplayTable {
    /// Memory per tracked nonce, in bytes (8 where the target has 64-bit atomics).
    pub const BYTES_PER_NONCE: usize = core::mem::size_of::<AtomicU64>();

    /// A table tracking `size` nonces (at least 1). With `one_time`, each nonce is accepted
    /// once; otherwise each `nc` must be greater than the last accepted one.
    pub fn new(size: usize, one_time: bool) -> Self {
        let size = size.clamp(1, u32::MAX as usize);
        let mut slots = Vec::with_capacity(size);
        slots.resize_with(size, || AtomicU64::new(0));
        let stride = STRIDES
            .into_iter()
            .find(|p| size as u64 % p != 0)
            .unwrap_or(1);
        ReplayTable {
            slots,
            stride,
            one_time,
            next: Padded(AtomicU64::new(1)),
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

    fn slot(&self, nid: u32) -> &AtomicU64 {
        let size = self.slots.len() as u64;
        &self.slots[(u64::from(nid) * self.stride % size) as usize]
    }

    /// Reserve a slot for a new nonce and return its issue number (never 0).
    pub fn issue(&self) -> u32 {
        let nid = loop {
            let n = self.next.0.fetch_add(1, Relaxed) as u32;
            if n != 0 {
                break n;
            }
        };
        self.claim(nid);
        nid
    }

    /// Give `nid`'s slot to `nid`, unless a later nonce already holds it (a thread that drew
    /// `nid + size` after us may have got there first).
    fn claim(&self, nid: u32) {
        let slot = self.slot(nid);
        let mut cur = slot.load(Relaxed);
        loop {
            let (held, _) = unpack(cur);
            if held != 0 && later(held, nid) {
                return;
            }
            match slot.compare_exchange(cur, pack(nid, 0), Relaxed, Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Check and record a use of nonce `nid` with nonce count `nc` (`None`: the RFC 2069 form
    /// without qop, which is treated as a one-time use).
    pub fn check(&self, nid: u32, nc: Option<u32>) -> ReplayCheck {
        let slot = self.slot(nid);
        let mut cur = slot.load(Relaxed);
        loop {
            let (held, last) = unpack(cur);
            if nid == 0 || held != nid {
                return ReplayCheck::Evicted;
            }
            let next = match nc {
                Some(nc) if !self.one_time => {
                    if nc <= last || nc == USED {
                        return ReplayCheck::Replay;
                    }
                    nc
                }
                _ if last == USED => return ReplayCheck::Reused,
                _ => USED,
            };
            match slot.compare_exchange(cur, pack(nid, next), Relaxed, Relaxed) {
                Ok(_) => return ReplayCheck::Fresh,
                // Another thread moved the slot on: judge again against what it wrote.
                Err(now) => cur = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nc_must_increase() {
        let t = ReplayTable::new(4, false);
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
        let t = ReplayTable::new(4, true);
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

    #[test]
    fn a_slot_only_moves_to_later_nonces() {
        assert!(later(2, 1) && later(1, u32::MAX) && !later(u32::MAX, 1) && !later(5, 5));
        let t = ReplayTable::new(2, false);
        // nid 1 and 3 share slot 1; the thread holding 1 stores after the one holding 3.
        t.claim(3);
        t.claim(1);
        assert_eq!(t.check(1, Some(1)), ReplayCheck::Evicted);
        assert_eq!(t.check(3, Some(1)), ReplayCheck::Fresh);
        // The counter skips 0 when it wraps.
        let t = ReplayTable::new(4, false);
        t.next.0.fetch_add(u64::from(u32::MAX) - 1, Relaxed);
        assert_eq!(t.issue(), u32::MAX);
        assert_eq!(t.issue(), 1);
        assert_eq!(t.check(1, Some(1)), ReplayCheck::Fresh);
        assert_eq!(t.check(u32::MAX, Some(1)), ReplayCheck::Fresh);
    }

    #[test]
    fn consecutive_nonces_on_different_cache_lines() {
        for size in [1usize, 2, 16, 17, 64, 1000, 65_536, 17 * 19 * 23] {
            let t = ReplayTable::new(size, false);
            let idx = |nid: u32| {
                let p: *const AtomicU64 = t.slot(nid);
                (p as usize - t.slots.as_ptr() as usize) / 8
            };
            // A bijection between issue numbers modulo size and slots...
            if size <= 65_536 {
                let mut seen = alloc::vec![false; size];
                for nid in 0..size as u32 {
                    assert!(!core::mem::replace(&mut seen[idx(nid)], true), "{size}");
                }
            }
            // ...where nid + size takes nid's slot, and nid + 1 is 17 slots away or more.
            for nid in [1u32, 2, 1000, 70_000] {
                assert_eq!(idx(nid), idx(nid + size as u32), "{size}");
                if size >= 64 {
                    let d = idx(nid).abs_diff(idx(nid + 1));
                    assert!(d.min(size - d) >= 17, "{size}: {d}");
                }
            }
        }
    }
}
