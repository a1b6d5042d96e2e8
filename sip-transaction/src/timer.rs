//! The RFC 3261 §17 timers (A–K), RFC 6026's L and M, the proxy's Timer C (§16.6 step 11),
//! and the values they take on reliable and unreliable transports (RFC 3261 Table 4).

use core::time::Duration;

/// A transaction timer (RFC 3261 Table 4, RFC 6026 §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission (client, unreliable only): T1, doubling.
    A,
    /// INVITE transaction timeout (client, Calling): 64·T1.
    B,
    /// Proxy INVITE branch timeout (> 3 min, refreshed by provisional responses).
    C,
    /// Wait for response retransmissions (INVITE client, Completed): 32 s unreliable, 0
    /// reliable.
    D,
    /// Non-INVITE request retransmission (client, unreliable only): T1 doubling up to T2.
    E,
    /// Non-INVITE transaction timeout (client): 64·T1.
    F,
    /// INVITE final response retransmission (server, unreliable only): T1 doubling up to T2.
    G,
    /// Wait for ACK (INVITE server, Completed): 64·T1.
    H,
    /// Wait for ACK retransmissions (INVITE server, Confirmed): T4 unreliable, 0 reliable.
    I,
    /// Wait for request retransmissions (non-INVITE server, Completed): 64·T1 unreliable, 0
    /// reliable.
    J,
    /// Wait for response retransmissions (non-INVITE client, Completed): T4 unreliable, 0
    /// reliable.
    K,
    /// Wait for 2xx retransmissions from the TU (INVITE server, Accepted; RFC 6026): 64·T1.
    L,
    /// Wait for 2xx retransmissions (INVITE client, Accepted; RFC 6026): 64·T1.
    M,
    /// Send 100 Trying for an INVITE the TU has not answered (RFC 3261 §17.2.1: 200 ms).
    Trying,
    /// The TU has not answered a server transaction within [`Timers::tu_answer`]: the layer
    /// answers for it (500 for INVITE) so no transaction waits forever.
    TuAnswer,
}

/// Timer base values (RFC 3261 §17.1.1.1, Table 4) and the layer's own bounds.
///
/// ```
/// use core::time::Duration;
/// let t = sip_transaction::Timers::default();
/// assert_eq!(t.t1, Duration::from_millis(500));
/// assert_eq!(t.timeout(), Duration::from_secs(32)); // 64·T1: Timers B, F, H, J, L, M
/// assert!(t.timer_c > Duration::from_secs(180));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s).
    pub t4: Duration,
    /// Timer C for INVITE client transactions in Proceeding (RFC 3261 §16.6 step 11:
    /// greater than 3 minutes; default 181 s). Applied to every INVITE client transaction,
    /// not only proxied ones, so that no transaction waits forever on a silent peer.
    pub timer_c: Duration,
    /// Delay before an INVITE server transaction sends 100 Trying on its own (200 ms).
    pub trying: Duration,
    /// How long a server transaction waits for its TU to answer before the layer does
    /// (default 64·T1 + Timer C, beyond any legitimate proxy branch).
    pub tu_answer: Duration,
    /// A cap on how long a finished transaction lingers to absorb retransmissions: Timers D,
    /// J, L and M (64·T1 = 32 s by the RFC) on unreliable transports. `None` (the default)
    /// keeps the RFC values. A proxy may shorten them the way Kamailio's `tm` does
    /// (`wt_timer`, 5 s): a retransmission arriving later starts a new transaction that the
    /// next hop absorbs, and the table holds 5 s of traffic instead of 32.
    pub linger: Option<Duration>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_c: Duration::from_secs(181),
            trying: Duration::from_millis(200),
            tu_answer: Duration::from_secs(32 + 181),
            linger: None,
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, L, M and J on unreliable transports.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: 32 s (at least 64·T1) on unreliable transports, 0 on reliable ones; at most
    /// [`linger`](Self::linger).
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(self.timeout().max(Duration::from_secs(32)))
        }
    }

    /// Timers L and M (RFC 6026): 64·T1, at most [`linger`](Self::linger).
    pub fn accepted(&self) -> Duration {
        self.capped(self.timeout())
    }

    fn capped(&self, d: Duration) -> Duration {
        match self.linger {
            Some(cap) => d.min(cap),
            None => d,
        }
    }

    /// Timers I and K: T4 on unreliable transports, 0 on reliable ones.
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64·T1 on unreliable transports, 0 on reliable ones; at most
    /// [`linger`](Self::linger).
    pub fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(self.timeout())
        }
    }
}

/// The timers one transaction has running: at most four at once, as deadlines.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Running {
    slots: [Option<(Timer, Duration)>; 4],
}

impl Running {
    /// Starts (or restarts) `timer` to fire at `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Duration) {
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|(t, _)| t == timer))
        {
            *s = Some((timer, at));
            return;
        }
        if let Some(s) = self.slots.iter_mut().find(|s| s.is_none()) {
            *s = Some((timer, at));
        } else {
            // Four timers never run at once in any state; keep the earliest rather than
            // drop the new one.
            debug_assert!(false, "more than four timers");
            self.slots[3] = Some((timer, at));
        }
    }

    /// Stops `timer`.
    pub(crate) fn clear(&mut self, timer: Timer) {
        for s in &mut self.slots {
            if s.is_some_and(|(t, _)| t == timer) {
                *s = None;
            }
        }
    }

    /// Stops every timer.
    pub(crate) fn clear_all(&mut self) {
        self.slots = [None; 4];
    }

    /// Whether `timer` is running.
    #[cfg(test)]
    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.slots.iter().flatten().any(|(t, _)| *t == timer)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Duration> {
        self.slots.iter().flatten().map(|(_, at)| *at).min()
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Duration) -> Option<Timer> {
        let (i, t) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|(t, at)| (i, t, at)))
            .filter(|&(_, _, at)| at <= now)
            .min_by_key(|&(_, _, at)| at)
            .map(|(i, t, _)| (i, t))?;
        self.slots[i] = None;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_4_values() {
        let t = Timers::default();
        assert_eq!(t.timeout(), Duration::from_secs(32));
        assert_eq!(t.d(false), Duration::from_secs(32));
        assert_eq!(t.d(true), Duration::ZERO);
        assert_eq!(t.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(t.j(true), Duration::ZERO);
        // A shorter T1 never makes Timer D shorter than 32 s.
        let fast = Timers {
            t1: Duration::from_millis(100),
            ..t
        };
        assert_eq!(fast.d(false), Duration::from_secs(32));
        // A linger cap shortens D, J, L and M, never the reliable zeroes or Timer B/F/H.
        let kamailio = Timers {
            linger: Some(Duration::from_secs(5)),
            ..t
        };
        assert_eq!(kamailio.d(false), Duration::from_secs(5));
        assert_eq!(kamailio.j(false), Duration::from_secs(5));
        assert_eq!(kamailio.accepted(), Duration::from_secs(5));
        assert_eq!(kamailio.d(true), Duration::ZERO);
        assert_eq!(kamailio.timeout(), Duration::from_secs(32));
        assert_eq!(t.accepted(), Duration::from_secs(32));
    }

    #[test]
    fn running_pops_earliest_due() {
        let mut r = Running::default();
        r.set(Timer::A, Duration::from_millis(500));
        r.set(Timer::B, Duration::from_secs(32));
        r.set(Timer::A, Duration::from_millis(1500)); // restarted
        assert_eq!(r.next(), Some(Duration::from_millis(1500)));
        assert_eq!(r.pop_due(Duration::from_secs(1)), None);
        assert_eq!(r.pop_due(Duration::from_secs(40)), Some(Timer::A));
        assert_eq!(r.pop_due(Duration::from_secs(40)), Some(Timer::B));
        assert_eq!(r.pop_due(Duration::from_secs(40)), None);
        r.set(Timer::C, Duration::from_secs(1));
        assert!(r.is_set(Timer::C));
        r.clear(Timer::C);
        assert_eq!(r.next(), None);
    }
}
