//! The four transaction state machines of RFC 3261 §17 (Figures 5–8) with RFC 6026's
//! `Accepted` state, as plain enums and `match`. They are pure: an input (a message's
//! status, a TU command, a timer) and `now` give a new state, timers to run, and an
//! [`Effect`] saying what to send and what to tell the TU. The table (`layer.rs`) stores the
//! messages and carries the effects out.

use core::time::Duration;

use crate::timer::{Running, Timer, Timers};

/// INVITE client transaction states (RFC 3261 Figure 5, RFC 6026 Figure 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteClientState {
    /// INVITE sent, nothing received (Timers A and B run).
    Calling,
    /// A provisional response received.
    Proceeding,
    /// A 300–699 final response received and ACKed (Timer D absorbs retransmissions).
    Completed,
    /// A 2xx received (RFC 6026): further 2xx go to the TU until Timer M.
    Accepted,
    /// Done.
    Terminated,
}

/// Non-INVITE client transaction states (RFC 3261 Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonInviteClientState {
    /// Request sent (Timers E and F run).
    Trying,
    /// A provisional response received.
    Proceeding,
    /// A final response received (Timer K absorbs retransmissions).
    Completed,
    /// Done.
    Terminated,
}

/// INVITE server transaction states (RFC 3261 Figure 7, RFC 6026 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteServerState {
    /// INVITE received; provisional responses sent.
    Proceeding,
    /// A 300–699 sent, waiting for the ACK (Timers G and H).
    Completed,
    /// ACK received (Timer I absorbs its retransmissions).
    Confirmed,
    /// A 2xx sent (RFC 6026): INVITE retransmissions absorbed, 2xx from the TU passed on
    /// until Timer L.
    Accepted,
    /// Done.
    Terminated,
}

/// Non-INVITE server transaction states (RFC 3261 Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonInviteServerState {
    /// Request received, nothing sent.
    Trying,
    /// A provisional response sent.
    Proceeding,
    /// A final response sent (Timer J absorbs request retransmissions).
    Completed,
    /// Done.
    Terminated,
}

/// What to send as the result of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Send {
    /// Nothing.
    #[default]
    Nothing,
    /// The stored request again (client retransmission).
    Request,
    /// The ACK for the stored non-2xx final response (INVITE client).
    Ack,
    /// The last response sent, again (server retransmission).
    LastResponse,
    /// The response the TU just gave.
    NewResponse,
    /// 100 Trying for the stored INVITE (server, Timer Trying).
    Trying,
}

/// The outcome of one input to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Effect {
    pub(crate) send: Send,
    /// Pass the received response (client) up to the TU.
    pub(crate) to_tu: bool,
    /// The transaction timed out (Timer B or F): the TU sees a 408.
    pub(crate) timeout: bool,
    /// Timer H fired: the final response was never acknowledged.
    pub(crate) no_ack: bool,
    /// The TU's command was refused in this state (e.g. a response after the final one).
    pub(crate) refused: bool,
    /// The transaction is now Terminated.
    pub(crate) terminated: bool,
}

impl Effect {
    fn send(send: Send) -> Self {
        Effect {
            send,
            ..Effect::default()
        }
    }
    fn to_tu() -> Self {
        Effect {
            to_tu: true,
            ..Effect::default()
        }
    }
    fn refused() -> Self {
        Effect {
            refused: true,
            ..Effect::default()
        }
    }
}

/// A wait timer of zero (reliable transports) terminates at once; otherwise it runs.
fn wait(timers: &mut Running, timer: Timer, now: Duration, d: Duration) -> bool {
    if d.is_zero() {
        timers.clear_all();
        true
    } else {
        timers.set(timer, now + d);
        false
    }
}

// ---- INVITE client -------------------------------------------------------------------

/// The INVITE client transaction (Figure 5 with RFC 6026).
#[derive(Debug, Clone)]
pub(crate) struct InviteClient {
    pub(crate) state: InviteClientState,
    pub(crate) timers: Running,
    interval: Duration,
    reliable: bool,
}

impl InviteClient {
    /// Created as the INVITE is first sent.
    pub(crate) fn new(now: Duration, reliable: bool, t: &Timers) -> Self {
        let mut timers = Running::default();
        if !reliable {
            timers.set(Timer::A, now + t.t1);
        }
        timers.set(Timer::B, now + t.timeout());
        // Timer C bounds the whole transaction (RFC 3261 §16.6 step 11); in Calling, Timer B
        // (64·T1) fires first.
        timers.set(Timer::C, now + t.timer_c);
        InviteClient {
            state: InviteClientState::Calling,
            timers,
            interval: t.t1,
            reliable,
        }
    }

    pub(crate) fn on_response(&mut self, status: u16, now: Duration, t: &Timers) -> Effect {
        use InviteClientState as S;
        match (self.state, status) {
            (S::Calling | S::Proceeding, 100..=199) => {
                self.timers.clear(Timer::A);
                self.timers.clear(Timer::B);
                // Timer C is refreshed by every provisional but 100 (RFC 3261 §16.7
                // step 2).
                if status > 100 {
                    self.timers.set(Timer::C, now + t.timer_c);
                }
                self.state = S::Proceeding;
                Effect::to_tu()
            }
            (S::Calling | S::Proceeding, 200..=299) => {
                self.timers.clear_all();
                self.timers.set(Timer::M, now + t.accepted());
                self.state = S::Accepted;
                Effect::to_tu()
            }
            (S::Calling | S::Proceeding, 300..=699) => {
                self.state = S::Completed;
                self.timers.clear_all();
                let terminated = wait(&mut self.timers, Timer::D, now, t.d(self.reliable));
                if terminated {
                    self.state = S::Terminated;
                }
                Effect {
                    send: Send::Ack,
                    to_tu: true,
                    terminated,
                    ..Effect::default()
                }
            }
            // Retransmitted non-2xx final: ACK again, not to the TU (§17.1.1.2).
            (S::Completed, 300..=699) => Effect::send(Send::Ack),
            // RFC 6026 §8.4: every 2xx in Accepted goes to the TU.
            (S::Accepted, 200..=299) => Effect::to_tu(),
            _ => Effect::default(),
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, now: Duration, t: &Timers) -> Effect {
        use InviteClientState as S;
        match (self.state, timer) {
            (S::Calling, Timer::A) => {
                self.interval *= 2;
                self.timers.set(Timer::A, now + self.interval);
                Effect::send(Send::Request)
            }
            // Timer B (Calling) or the CANCEL wait (Proceeding, §9.1): a timeout.
            (S::Calling | S::Proceeding, Timer::B) => self.terminate_timeout(),
            (S::Completed, Timer::D) | (S::Accepted, Timer::M) => {
                self.state = S::Terminated;
                self.timers.clear_all();
                Effect {
                    terminated: true,
                    ..Effect::default()
                }
            }
            // Timer C is the proxy's (or TU's) decision: the layer handles it (§16.8).
            _ => {
                let _ = t;
                Effect::default()
            }
        }
    }

    fn terminate_timeout(&mut self) -> Effect {
        self.state = InviteClientState::Terminated;
        self.timers.clear_all();
        Effect {
            timeout: true,
            terminated: true,
            ..Effect::default()
        }
    }

    /// A CANCEL was sent for this INVITE: if no final response arrives within 64·T1 the
    /// transaction is considered cancelled (RFC 3261 §9.1).
    pub(crate) fn cancel_sent(&mut self, now: Duration, t: &Timers) {
        if matches!(
            self.state,
            InviteClientState::Calling | InviteClientState::Proceeding
        ) {
            self.timers.clear(Timer::C);
            self.timers.set(Timer::B, now + t.timeout());
        }
    }

    /// The transport reported an error sending the request (§17.1.1.2).
    pub(crate) fn transport_error(&mut self) -> Effect {
        match self.state {
            InviteClientState::Calling | InviteClientState::Proceeding => {
                self.state = InviteClientState::Terminated;
                self.timers.clear_all();
                Effect {
                    terminated: true,
                    ..Effect::default()
                }
            }
            _ => Effect::default(),
        }
    }
}

// ---- non-INVITE client ---------------------------------------------------------------

/// The non-INVITE client transaction (Figure 6).
#[derive(Debug, Clone)]
pub(crate) struct NonInviteClient {
    pub(crate) state: NonInviteClientState,
    pub(crate) timers: Running,
    interval: Duration,
    reliable: bool,
}

impl NonInviteClient {
    pub(crate) fn new(now: Duration, reliable: bool, t: &Timers) -> Self {
        let mut timers = Running::default();
        if !reliable {
            timers.set(Timer::E, now + t.t1);
        }
        timers.set(Timer::F, now + t.timeout());
        NonInviteClient {
            state: NonInviteClientState::Trying,
            timers,
            interval: t.t1,
            reliable,
        }
    }

    pub(crate) fn on_response(&mut self, status: u16, now: Duration, t: &Timers) -> Effect {
        use NonInviteClientState as S;
        match (self.state, status) {
            (S::Trying | S::Proceeding, 100..=199) => {
                self.state = S::Proceeding;
                Effect::to_tu()
            }
            (S::Trying | S::Proceeding, 200..=699) => {
                self.state = S::Completed;
                self.timers.clear_all();
                let terminated = wait(&mut self.timers, Timer::K, now, t.t4_or_zero(self.reliable));
                if terminated {
                    self.state = S::Terminated;
                }
                Effect {
                    to_tu: true,
                    terminated,
                    ..Effect::default()
                }
            }
            _ => Effect::default(),
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, now: Duration, t: &Timers) -> Effect {
        use NonInviteClientState as S;
        match (self.state, timer) {
            (S::Trying, Timer::E) => {
                self.interval = (self.interval * 2).min(t.t2);
                self.timers.set(Timer::E, now + self.interval);
                Effect::send(Send::Request)
            }
            (S::Proceeding, Timer::E) => {
                self.interval = t.t2;
                self.timers.set(Timer::E, now + self.interval);
                Effect::send(Send::Request)
            }
            (S::Trying | S::Proceeding, Timer::F) => {
                self.state = S::Terminated;
                self.timers.clear_all();
                Effect {
                    timeout: true,
                    terminated: true,
                    ..Effect::default()
                }
            }
            (S::Completed, Timer::K) => {
                self.state = S::Terminated;
                self.timers.clear_all();
                Effect {
                    terminated: true,
                    ..Effect::default()
                }
            }
            _ => Effect::default(),
        }
    }

    pub(crate) fn transport_error(&mut self) -> Effect {
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                self.state = NonInviteClientState::Terminated;
                self.timers.clear_all();
                Effect {
                    terminated: true,
                    ..Effect::default()
                }
            }
            _ => Effect::default(),
        }
    }
}

// ---- INVITE server -------------------------------------------------------------------

/// The INVITE server transaction (Figure 7 with RFC 6026).
#[derive(Debug, Clone)]
pub(crate) struct InviteServer {
    pub(crate) state: InviteServerState,
    pub(crate) timers: Running,
    interval: Duration,
    reliable: bool,
    /// A response (provisional or final) has been sent.
    responded: bool,
}

impl InviteServer {
    pub(crate) fn new(now: Duration, reliable: bool, t: &Timers) -> Self {
        let mut timers = Running::default();
        timers.set(Timer::Trying, now + t.trying);
        timers.set(Timer::TuAnswer, now + t.tu_answer);
        InviteServer {
            state: InviteServerState::Proceeding,
            timers,
            interval: t.t1,
            reliable,
            responded: false,
        }
    }

    /// A retransmission of the INVITE (§17.2.1).
    pub(crate) fn on_request(&mut self) -> Effect {
        use InviteServerState as S;
        match self.state {
            S::Proceeding if self.responded => Effect::send(Send::LastResponse),
            S::Completed => Effect::send(Send::LastResponse),
            _ => Effect::default(),
        }
    }

    /// An ACK matching this transaction (for a non-2xx final, or, in Accepted, passed on).
    pub(crate) fn on_ack(&mut self, now: Duration, t: &Timers) -> Effect {
        use InviteServerState as S;
        match self.state {
            S::Completed => {
                self.state = S::Confirmed;
                self.timers.clear_all();
                let terminated = wait(&mut self.timers, Timer::I, now, t.t4_or_zero(self.reliable));
                if terminated {
                    self.state = S::Terminated;
                }
                Effect {
                    terminated,
                    ..Effect::default()
                }
            }
            // RFC 6026 §7.1: an ACK in Accepted goes to the TU.
            S::Accepted => Effect::to_tu(),
            _ => Effect::default(),
        }
    }

    /// The TU sends a response.
    pub(crate) fn on_tu_response(&mut self, status: u16, now: Duration, t: &Timers) -> Effect {
        use InviteServerState as S;
        match (self.state, status) {
            (S::Proceeding, 100..=199) => {
                self.responded = true;
                self.timers.clear(Timer::Trying);
                Effect::send(Send::NewResponse)
            }
            (S::Proceeding | S::Accepted, 200..=299) => {
                if self.state == S::Proceeding {
                    self.timers.clear_all();
                    self.timers.set(Timer::L, now + t.accepted());
                    self.state = S::Accepted;
                }
                self.responded = true;
                Effect::send(Send::NewResponse)
            }
            (S::Proceeding, 300..=699) => {
                self.responded = true;
                self.state = S::Completed;
                self.timers.clear_all();
                if !self.reliable {
                    self.timers.set(Timer::G, now + t.t1);
                }
                self.timers.set(Timer::H, now + t.timeout());
                Effect::send(Send::NewResponse)
            }
            _ => Effect::refused(),
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, now: Duration, t: &Timers) -> Effect {
        use InviteServerState as S;
        match (self.state, timer) {
            (S::Proceeding, Timer::Trying) if !self.responded => {
                self.responded = true;
                Effect::send(Send::Trying)
            }
            (S::Completed, Timer::G) => {
                self.interval = (self.interval * 2).min(t.t2);
                self.timers.set(Timer::G, now + self.interval);
                Effect::send(Send::LastResponse)
            }
            (S::Completed, Timer::H) => {
                self.state = S::Terminated;
                self.timers.clear_all();
                Effect {
                    no_ack: true,
                    terminated: true,
                    ..Effect::default()
                }
            }
            (S::Confirmed, Timer::I) | (S::Accepted, Timer::L) => {
                self.state = S::Terminated;
                self.timers.clear_all();
                Effect {
                    terminated: true,
                    ..Effect::default()
                }
            }
            // TuAnswer is carried out by the layer (it builds the 500).
            _ => Effect::default(),
        }
    }

    pub(crate) fn transport_error(&mut self) -> Effect {
        if self.state == InviteServerState::Terminated {
            return Effect::default();
        }
        self.state = InviteServerState::Terminated;
        self.timers.clear_all();
        Effect {
            terminated: true,
            ..Effect::default()
        }
    }
}

// ---- non-INVITE server ---------------------------------------------------------------

/// The non-INVITE server transaction (Figure 8).
#[derive(Debug, Clone)]
pub(crate) struct NonInviteServer {
    pub(crate) state: NonInviteServerState,
    pub(crate) timers: Running,
    reliable: bool,
}

impl NonInviteServer {
    pub(crate) fn new(now: Duration, reliable: bool, t: &Timers) -> Self {
        let mut timers = Running::default();
        timers.set(Timer::TuAnswer, now + t.tu_answer.min(t.timeout()));
        NonInviteServer {
            state: NonInviteServerState::Trying,
            timers,
            reliable,
        }
    }

    /// A retransmission of the request.
    pub(crate) fn on_request(&mut self) -> Effect {
        use NonInviteServerState as S;
        match self.state {
            S::Proceeding | S::Completed => Effect::send(Send::LastResponse),
            S::Trying | S::Terminated => Effect::default(),
        }
    }

    pub(crate) fn on_tu_response(&mut self, status: u16, now: Duration, t: &Timers) -> Effect {
        use NonInviteServerState as S;
        match (self.state, status) {
            (S::Trying | S::Proceeding, 100..=199) => {
                self.state = S::Proceeding;
                Effect::send(Send::NewResponse)
            }
            (S::Trying | S::Proceeding, 200..=699) => {
                self.state = S::Completed;
                self.timers.clear_all();
                let terminated = wait(&mut self.timers, Timer::J, now, t.j(self.reliable));
                if terminated {
                    self.state = S::Terminated;
                }
                Effect {
                    send: Send::NewResponse,
                    terminated,
                    ..Effect::default()
                }
            }
            _ => Effect::refused(),
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer) -> Effect {
        use NonInviteServerState as S;
        match (self.state, timer) {
            (S::Completed, Timer::J) => {
                self.state = S::Terminated;
                self.timers.clear_all();
                Effect {
                    terminated: true,
                    ..Effect::default()
                }
            }
            _ => Effect::default(),
        }
    }

    pub(crate) fn transport_error(&mut self) -> Effect {
        if self.state == NonInviteServerState::Terminated {
            return Effect::default();
        }
        self.state = NonInviteServerState::Terminated;
        self.timers.clear_all();
        Effect {
            terminated: true,
            ..Effect::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn invite_client_retransmits_a_doubling_until_b() {
        // §17.1.1.2: A fires at T1, 2T1, 4T1 ... until B = 64·T1: 6 retransmissions at
        // 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s, then the timeout at 32 s.
        let t = Timers::default();
        let mut c = InviteClient::new(Duration::ZERO, false, &t);
        let mut sends = Vec::new();
        let mut now;
        loop {
            now = c.timers.next().unwrap();
            let timer = c.timers.pop_due(now).unwrap();
            let fx = c.on_timer(timer, now, &t);
            if fx.send == Send::Request {
                sends.push(now.as_millis());
            }
            if fx.terminated {
                assert!(fx.timeout);
                break;
            }
        }
        assert_eq!(sends, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(now, ms(32_000));
        assert_eq!(c.state, InviteClientState::Terminated);
    }

    #[test]
    fn invite_client_reliable_has_no_a_and_zero_d() {
        let t = Timers::default();
        let mut c = InviteClient::new(Duration::ZERO, true, &t);
        assert!(!c.timers.is_set(Timer::A));
        let fx = c.on_response(486, ms(10), &t);
        assert_eq!(fx.send, Send::Ack);
        assert!(fx.to_tu && fx.terminated);
        assert_eq!(c.state, InviteClientState::Terminated);
    }

    #[test]
    fn invite_client_non_2xx_acked_and_retransmissions_absorbed() {
        let t = Timers::default();
        let mut c = InviteClient::new(Duration::ZERO, false, &t);
        assert!(c.on_response(180, ms(100), &t).to_tu);
        assert_eq!(c.state, InviteClientState::Proceeding);
        assert!(!c.timers.is_set(Timer::A) && !c.timers.is_set(Timer::B));
        let fx = c.on_response(486, ms(200), &t);
        assert_eq!((fx.send, fx.to_tu), (Send::Ack, true));
        // §17.1.1.2: retransmissions of the final response: ACK again, not to the TU.
        let fx = c.on_response(486, ms(700), &t);
        assert_eq!((fx.send, fx.to_tu), (Send::Ack, false));
        // Timer D: 32 s.
        assert_eq!(c.timers.next(), Some(ms(32_200)));
        let fx = c.on_timer(Timer::D, ms(32_200), &t);
        assert!(fx.terminated);
    }

    #[test]
    fn invite_client_accepted_passes_every_2xx_until_m() {
        // RFC 6026 §8.4: 2xx in Calling/Proceeding -> Accepted; further 2xx to the TU.
        let t = Timers::default();
        let mut c = InviteClient::new(Duration::ZERO, false, &t);
        assert!(c.on_response(200, ms(50), &t).to_tu);
        assert_eq!(c.state, InviteClientState::Accepted);
        assert!(c.on_response(200, ms(550), &t).to_tu);
        assert!(!c.on_response(486, ms(600), &t).to_tu);
        assert_eq!(c.timers.next(), Some(ms(32_050)));
        assert!(c.on_timer(Timer::M, ms(32_050), &t).terminated);
    }

    #[test]
    fn non_invite_client_e_caps_at_t2_and_f_times_out() {
        // §17.1.2.2: E doubles up to T2 (4 s): 0.5, 1.5, 3.5, 7.5, 11.5, ... until F = 32 s.
        let t = Timers::default();
        let mut c = NonInviteClient::new(Duration::ZERO, false, &t);
        let mut sends = Vec::new();
        loop {
            let now = c.timers.next().unwrap();
            let timer = c.timers.pop_due(now).unwrap();
            let fx = c.on_timer(timer, now, &t);
            if fx.send == Send::Request {
                sends.push(now.as_millis());
            }
            if fx.terminated {
                assert!(fx.timeout);
                assert_eq!(now, ms(32_000));
                break;
            }
        }
        assert_eq!(
            sends,
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
    }

    #[test]
    fn non_invite_client_proceeding_retransmits_every_t2() {
        let t = Timers::default();
        let mut c = NonInviteClient::new(Duration::ZERO, false, &t);
        c.on_response(100, ms(100), &t);
        assert_eq!(c.state, NonInviteClientState::Proceeding);
        let fx = c.on_timer(Timer::E, ms(500), &t);
        assert_eq!(fx.send, Send::Request);
        assert_eq!(c.timers.next(), Some(ms(4_500)));
        let fx = c.on_response(200, ms(600), &t);
        assert!(fx.to_tu && !fx.terminated);
        assert!(!c.on_response(200, ms(700), &t).to_tu);
        assert_eq!(c.timers.next(), Some(ms(5_600))); // Timer K = T4
        assert!(c.on_timer(Timer::K, ms(5_600), &t).terminated);
    }

    #[test]
    fn invite_server_trying_after_200ms_unless_answered() {
        let t = Timers::default();
        let mut s = InviteServer::new(Duration::ZERO, false, &t);
        assert_eq!(s.on_request(), Effect::default()); // nothing sent yet: absorb
        let fx = s.on_timer(Timer::Trying, ms(200), &t);
        assert_eq!(fx.send, Send::Trying);
        assert_eq!(s.on_request().send, Send::LastResponse);
        // Answered first: no 100.
        let mut s = InviteServer::new(Duration::ZERO, false, &t);
        assert_eq!(s.on_tu_response(180, ms(50), &t).send, Send::NewResponse);
        assert_eq!(s.on_timer(Timer::Trying, ms(200), &t).send, Send::Nothing);
    }

    #[test]
    fn invite_server_non_2xx_g_h_and_ack() {
        let t = Timers::default();
        let mut s = InviteServer::new(Duration::ZERO, false, &t);
        assert_eq!(s.on_tu_response(486, ms(10), &t).send, Send::NewResponse);
        assert_eq!(s.state, InviteServerState::Completed);
        // G: T1, 2T1, 4T1, then T2 (§17.2.1).
        let mut resent = Vec::new();
        while let Some(at) = s.timers.next() {
            if at > ms(20_000) {
                break;
            }
            let timer = s.timers.pop_due(at).unwrap();
            let fx = s.on_timer(timer, at, &t);
            assert_eq!(fx.send, Send::LastResponse);
            resent.push(at.as_millis());
        }
        assert_eq!(resent[..5], [510, 1510, 3510, 7510, 11510]);
        assert!(s.on_tu_response(200, ms(20_000), &t).refused);
        assert_eq!(s.on_request().send, Send::LastResponse);
        let fx = s.on_ack(ms(20_100), &t);
        assert!(!fx.terminated);
        assert_eq!(s.state, InviteServerState::Confirmed);
        assert_eq!(s.on_ack(ms(20_200), &t), Effect::default()); // absorbed
        assert!(s.on_timer(Timer::I, ms(25_100), &t).terminated);
    }

    #[test]
    fn invite_server_h_fires_without_ack() {
        let t = Timers::default();
        let mut s = InviteServer::new(Duration::ZERO, true, &t);
        s.on_tu_response(503, ms(0), &t);
        assert!(!s.timers.is_set(Timer::G));
        let fx = s.on_timer(Timer::H, ms(32_000), &t);
        assert!(fx.no_ack && fx.terminated);
    }

    #[test]
    fn invite_server_accepted_absorbs_invite_and_passes_2xx() {
        // RFC 6026 §7.1.
        let t = Timers::default();
        let mut s = InviteServer::new(Duration::ZERO, false, &t);
        s.on_tu_response(200, ms(5), &t);
        assert_eq!(s.state, InviteServerState::Accepted);
        assert_eq!(s.on_request(), Effect::default());
        assert_eq!(s.on_tu_response(200, ms(505), &t).send, Send::NewResponse);
        assert!(s.on_tu_response(486, ms(600), &t).refused);
        assert!(s.on_ack(ms(700), &t).to_tu);
        assert!(s.on_timer(Timer::L, ms(32_005), &t).terminated);
    }

    #[test]
    fn non_invite_server_absorbs_then_replays_last_response() {
        let t = Timers::default();
        let mut s = NonInviteServer::new(Duration::ZERO, false, &t);
        assert_eq!(s.on_request(), Effect::default());
        s.on_tu_response(100, ms(1), &t);
        assert_eq!(s.on_request().send, Send::LastResponse);
        let fx = s.on_tu_response(200, ms(2), &t);
        assert_eq!(fx.send, Send::NewResponse);
        assert_eq!(s.on_request().send, Send::LastResponse);
        assert!(s.on_tu_response(404, ms(3), &t).refused);
        assert!(s.on_timer(Timer::J).terminated);
        // Reliable: J is zero, terminated at once.
        let mut s = NonInviteServer::new(Duration::ZERO, true, &t);
        assert!(s.on_tu_response(200, ms(1), &t).terminated);
    }
}
