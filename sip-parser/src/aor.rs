//! Address-of-record keys for a registrar (RFC 3261 §10.3 step 5).

use alloc::string::String;
use core::fmt::Write as _;

use crate::uri::{HostKind, Scheme, Uri, host_kind};
use crate::uri_eq::{Units, ipv4, ipv6};

/// Whether the user part of an address-of-record is case-sensitive.
///
/// RFC 3261 §19.1.4 compares userinfo case-sensitively, hence the default. Deployments that
/// key registrations by user name usually fold it: Kamailio's registrar does by default
/// (module parameter `case_sensitive`, default `0`, "AOR comparison and also storing will be
/// case insensitive. This is recommended").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UserCase {
    /// `Alice` and `alice` are different users (RFC 3261 §19.1.4).
    #[default]
    Sensitive,
    /// ASCII letters of the user part are folded to lower case (Kamailio's default).
    Insensitive,
}

/// An address-of-record was asked of a URI that is not `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "an address-of-record is a sip: or sips: URI (RFC 3261 §10.3), not {scheme:?} (at offset 0)"
)]
pub struct NotSipUri {
    /// The scheme the URI has.
    pub scheme: Scheme,
}

/// The canonical form of an address-of-record: the index into a registrar's bindings
/// (RFC 3261 §10.3 step 5: "all URI parameters MUST be removed (including the user-param),
/// and any escaped characters MUST be converted to their unescaped form").
///
/// The key is the text `scheme ":" [user "@"] host [":" port]`, a valid SIP URI, where
///
/// * the scheme is `sip` or `sips` in lower case (the two are never the same AOR);
/// * the user has every `%HEX` escape decoded, as §10.3 asks — escapes of reserved
///   characters included, so `a%3Bb` and `a;b` are one AOR although §19.1.4 tells the two
///   URIs apart — then re-escaped (upper-case hex) only where the user grammar needs it
///   (`@`, `:`, space, `%`, non-ASCII…), so that the text stays a URI and no two users share
///   a key; ASCII letters are folded to lower case with [`UserCase::Insensitive`];
/// * the password, all parameters and all headers are dropped;
/// * the host is in lower case, an IPv4 address written without leading zeros and an IPv6
///   reference in its RFC 5952 form (`[0:0::1]` → `[::1]`);
/// * the port is kept when present (§19.1.4: `alice@host` and `alice@host:5060` are different
///   URIs; they are different AORs too).
///
/// URIs equivalent under [`Uri::equivalent`] give the same key, and a key read back as a URI
/// gives itself. Compare, hash and order keys as strings; `Borrow<str>` lets a map keyed by
/// `Aor` be searched with a `&str` that is already canonical.
///
/// ```
/// use sip_parser::{Aor, Uri, UserCase};
///
/// let to = Uri::parse(b"sip:%61lice@AtLanTa.CoM;user=ip?subject=x").unwrap();
/// let aor = Aor::new(&to, UserCase::Sensitive).unwrap();
/// assert_eq!(aor.as_str(), "sip:alice@atlanta.com");
///
/// let shouted = Uri::parse(b"sip:ALICE@atlanta.com").unwrap();
/// assert_ne!(Aor::new(&shouted, UserCase::Sensitive).unwrap(), aor);
/// assert_eq!(Aor::new(&shouted, UserCase::Insensitive).unwrap(), aor);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(String);

impl Aor {
    /// The canonical AOR of a `sip:` or `sips:` URI (typically the To URI of a REGISTER).
    pub fn new(uri: &Uri<'_>, user_case: UserCase) -> Result<Self, NotSipUri> {
        let scheme = match uri.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
            scheme => return Err(NotSipUri { scheme }),
        };
        let mut out = String::with_capacity(uri.raw.len());
        out.push_str(scheme);
        if let Some(user) = uri.user {
            for unit in Units::new(user, user_case == UserCase::Insensitive) {
                let b = unit.octet();
                if crate::chars::is_user(b) && b != b'%' {
                    out.push(char::from(b));
                } else {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            out.push('@');
        }
        push_host(uri.host, &mut out);
        if let Some(port) = uri.port {
            let _ = write!(out, ":{port}");
        }
        Ok(Self(out))
    }

    /// The key as text (always ASCII, always a valid SIP URI).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The host in canonical form: IP addresses by value, names in lower case.
fn push_host(host: &str, out: &mut String) {
    match host_kind(host) {
        HostKind::Ipv4 => {
            if let Some([a, b, c, d]) = ipv4(host) {
                let _ = write!(out, "{a}.{b}.{c}.{d}");
                return;
            }
        }
        HostKind::Ipv6 => {
            if let Some(addr) = ipv6(host) {
                let _ = write!(out, "[{addr}]");
                return;
            }
        }
        HostKind::Domain => {}
    }
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
}

impl core::fmt::Display for Aor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Aor {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl core::borrow::Borrow<str> for Aor {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aor(s: &str, case: UserCase) -> String {
        let uri = Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        Aor::new(&uri, case).unwrap().as_str().into()
    }

    /// RFC 3261 §10.3 step 5: parameters removed (the user-param included), escapes unescaped.
    #[test]
    fn rfc3261_10_3_step_5() {
        let s = UserCase::Sensitive;
        assert_eq!(
            aor("sip:bob@biloxi.com;user=phone", s),
            "sip:bob@biloxi.com"
        );
        assert_eq!(
            aor("sip:%62ob@biloxi.com;transport=tcp;lr", s),
            "sip:bob@biloxi.com"
        );
        assert_eq!(
            aor("SIPS:bob@Biloxi.COM?subject=x", s),
            "sips:bob@biloxi.com"
        );
        assert_eq!(
            aor("sip:bob:secret@biloxi.com:5060", s),
            "sip:bob@biloxi.com:5060"
        );
        assert_eq!(aor("sip:biloxi.com", s), "sip:biloxi.com");
        // Escapes of reserved characters are unescaped too where the user grammar allows the
        // character, kept (upper-case) where it does not.
        assert_eq!(aor("sip:a%3bb@h", s), "sip:a;b@h");
        assert_eq!(
            aor("sip:a%40b%3a%25%00%c3%a9@h", s),
            "sip:a%40b%3A%25%00%C3%A9@h"
        );
        assert_eq!(aor("sip:Bob@h", UserCase::Insensitive), "sip:bob@h");
        assert_eq!(aor("sip:%42ob@h", UserCase::Insensitive), "sip:bob@h");
        assert_eq!(aor("sip:Bob@h", s), "sip:Bob@h");
    }

    #[test]
    fn hosts() {
        let s = UserCase::Sensitive;
        assert_eq!(aor("sip:a@[0:0::1]", s), "sip:a@[::1]");
        assert_eq!(
            aor("sip:a@[2001:DB8:0:0:0:0:0:1]:5070", s),
            "sip:a@[2001:db8::1]:5070"
        );
        assert_eq!(aor("sip:a@192.000.002.004", s), "sip:a@192.0.2.4");
        assert_eq!(aor("sip:a@[1:::2]", s), "sip:a@[1:::2]");
    }

    #[test]
    fn only_sip_and_sips() {
        let tel = Uri::parse(b"tel:+1-201-555-0123").unwrap();
        assert_eq!(
            Aor::new(&tel, UserCase::Sensitive),
            Err(NotSipUri {
                scheme: Scheme::Tel
            })
        );
    }

    #[test]
    fn idempotent() {
        for s in [
            "sip:a%40b%3a%25%00%c3%a9@h",
            "sip:%7e;x=1?y@[0::1]:1",
            "sips:A%3bb@EXAMPLE.com",
        ] {
            for case in [UserCase::Sensitive, UserCase::Insensitive] {
                let once = aor(s, case);
                assert_eq!(aor(&once, case), once);
            }
        }
    }
}
