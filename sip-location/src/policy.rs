//! [`Policy`]: the registrar's configuration (Kamailio `registrar` module parameters).

use alloc::string::String;
use alloc::vec::Vec;

use sip_parser::UserCase;

/// What to do when a REGISTER would leave an AOR with more contacts than
/// [`MaxContacts::limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the REGISTER with 503 (and `Retry-After` when [`Policy::retry_after`] is set),
    /// keeping the bindings there are: Kamailio's `max_contacts`.
    Reject,
    /// Accept it and drop the least recently refreshed bindings the request did not touch:
    /// a roaming phone leaves no stale contacts behind. Still 503 when the request alone
    /// brings more contacts than the limit.
    ReplaceOldest,
}

/// A limit on contacts per AOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxContacts {
    /// Most contacts one AOR may have (1 = one device per user, like Kamailio's
    /// `save()` flag 0x04 with [`WhenFull::ReplaceOldest`]).
    pub limit: usize,
    /// What happens past it.
    pub when_full: WhenFull,
}

/// RFC 3327 Path handling (Kamailio `use_path` / `path_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    /// Path is neither stored nor returned (`use_path = 0`); `Require: path` gets 420.
    Ignore,
    /// Path is stored; returned in the 200 only when the UA sent `Supported: path`
    /// (`path_mode = 1`).
    Lenient,
    /// Path is stored and returned; a REGISTER with Path but without `Supported: path` is
    /// refused with 421 Extension Required and `Require: path` (RFC 3327 §5.3; RFC 3261
    /// §21.4.16). Kamailio's `path_mode = 2` answers 420 instead.
    Strict,
}

/// Which bindings get the [`KEEPALIVE`](crate::Flags::KEEPALIVE) flag, i.e. are pinged
/// with OPTIONS by the proxy (Kamailio `nathelper` `natping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// None.
    Off,
    /// Bindings behind a NAT ([`Flags::NAT`](crate::Flags::NAT)) registered over UDP, not
    /// RFC 5626 flows (their UA keeps them alive itself, RFC 5626 §4.4).
    NatUdp,
    /// Every binding that is not an RFC 5626 flow.
    All,
}

/// The registrar's policy.
///
/// ```
/// let p = sip_location::Policy::default();
/// assert_eq!((p.min_expires, p.default_expires, p.max_expires), (60, 3600, 3600));
/// assert!(p.domains.is_empty()); // every domain is ours: set it in production
/// assert!(p.is_local_domain("anything.example"));
/// let p = sip_location::Policy { domains: vec!["example.com".into()], ..p };
/// assert!(p.is_local_domain("EXAMPLE.com") && !p.is_local_domain("example.org"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The domains this registrar keeps bindings for (host names or IP literals, compared
    /// case-insensitively). Empty: every domain, no check (open registrar).
    pub domains: Vec<String>,
    /// Whether the user part of an AOR is case-sensitive (RFC 3261: yes; Kamailio's
    /// default: no).
    pub user_case: UserCase,
    /// Expiry when the REGISTER names none (§10.3 step 7 "a locally-configured default").
    pub default_expires: u32,
    /// Shortest accepted expiry: shorter (and under one hour) gets 423 with Min-Expires.
    pub min_expires: u32,
    /// Longest granted expiry: longer requests are shortened to it.
    pub max_expires: u32,
    /// Contacts per AOR.
    pub max_contacts: Option<MaxContacts>,
    /// `Retry-After` seconds in 503 answers (Kamailio `retry_after`); `None` leaves it out.
    pub retry_after: Option<u32>,
    /// The q of contacts that give none (`None`: keep them without q, which ranks as 1.0).
    pub default_q: Option<u16>,
    /// Path handling.
    pub path: PathMode,
    /// RFC 5626 Outbound: honour `reg-id` (with `+sip.instance` and `Supported: outbound`).
    pub outbound: bool,
    /// RFC 5626 `Flow-Timer` to put in 200 responses that set up a flow.
    pub flow_timer: Option<u32>,
    /// RFC 5627: return a `pub-gruu` for contacts with `+sip.instance` when the UA sent
    /// `Supported: gruu`.
    pub gruu: bool,
    /// Add a Date header to the 200 (§10.3 step 8: SHOULD).
    pub date: bool,
    /// Which bindings to keep alive.
    pub keepalive: Keepalive,
    /// Longest Contact URI accepted (Kamailio `contact_max_size`, 512); longer gets 400.
    pub max_contact_len: usize,
    /// Longest Path (all values together) accepted; longer gets 400.
    pub max_path_len: usize,
    /// Longest User-Agent stored (longer is cut at a character boundary).
    pub max_user_agent_len: usize,
    /// Most Contact entries one REGISTER may carry; more gets 400.
    pub max_contacts_per_request: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            user_case: UserCase::Sensitive,
            default_expires: 3600,
            min_expires: 60,
            max_expires: 3600,
            max_contacts: None,
            retry_after: None,
            default_q: None,
            path: PathMode::Strict,
            outbound: true,
            flow_timer: None,
            gruu: true,
            date: true,
            keepalive: Keepalive::NatUdp,
            max_contact_len: 512,
            max_path_len: 1024,
            max_user_agent_len: 128,
            max_contacts_per_request: 32,
        }
    }
}

impl Policy {
    /// True when `host` is one of [`domains`](Self::domains) (or the list is empty).
    pub fn is_local_domain(&self, host: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }
}
