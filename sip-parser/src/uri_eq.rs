//! URI equivalence: RFC 3261 §19.1.4 for SIP and SIPS, RFC 3966 §4 for `tel:`, byte
//! equality for other schemes.
//!
//! The rules, as applied, are listed on [`Uri::equivalent`].

use core::cmp::Ordering;
use core::net::Ipv6Addr;

use smallvec::SmallVec;

use crate::chars::is_hex;
use crate::name::HeaderName;
use crate::uri::{HostKind, Scheme, Uri, host_kind};

/// Parameter and header lists up to this many entries are compared pairwise in place; longer
/// ones are sorted first.
const PAIRWISE_MAX: usize = 16;

/// The URI parameters that must appear in both URIs or in neither (§19.1.4).
const MUST_MATCH: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];

impl Uri<'_> {
    /// Are the two URIs equivalent? RFC 3261 §19.1.4 for SIP and SIPS, RFC 3966 §4 for
    /// `tel:`, scheme case-insensitively and the rest byte for byte otherwise.
    ///
    /// ## How each §19.1.4 rule is applied
    ///
    /// * `sip:` and `sips:` are never equivalent; the scheme's case does not matter.
    /// * User and password are compared case-sensitively (a user part written as a
    ///   telephone-subscriber, `;user=phone`, included); host, parameters and headers
    ///   case-insensitively.
    /// * `%HEX` escapes: "characters other than those in the `reserved` set (see RFC 2396) are
    ///   equivalent to their `"%" HEX HEX` encoding". So `%61` equals `a` and `%20` equals a
    ///   (necessarily escaped) space, but the escape of a reserved character — one of
    ///   `; / ? : @ & = + $ ,` — is *not* that character written plainly: `sip:a%3Bb@h` and
    ///   `sip:a;b@h` differ. Two escapes of one octet are equal whatever the case of their hex
    ///   digits (`%3b` = `%3B`). This holds in every component: user, password, parameter names
    ///   and values, header names and values.
    /// * Hosts: domain names case-insensitively, as written (no DNS: `phone21.example.com`
    ///   never equals the address it resolves to, and a trailing dot is a difference). IP
    ///   addresses by value: `[::1]` = `[0:0::1]` = `[0000::0001]` (IPv6 references are parsed
    ///   with [`core::net::Ipv6Addr`]), `192.0.2.4` = `192.000.002.004`. An IPv4 address never
    ///   equals an IPv6 reference, not even `[::ffff:192.0.2.4]`, and an IP address never equals
    ///   a domain name.
    /// * Port: an absent port is not port 5060 (nor 5061 for SIPS).
    /// * URI parameters (names and values case-insensitive, order irrelevant): `user`, `ttl`,
    ///   `method`, `maddr` and `transport` must be present in both URIs or in neither, and
    ///   match; any other parameter present in both must match; others, present in one URI
    ///   only, are ignored. A flag (`;lr`) does not match a valued parameter (`;lr=on`). A name
    ///   repeated in one URI is compared by all its values (both URIs must carry the same
    ///   values, each as many times). Equivalence is therefore not transitive: `;security=on`
    ///   and `;security=off` each match the URI without `security`, and not each other (RFC
    ///   3261's own example).
    /// * Header components (`?name=value&…`): every one must be present in both URIs and
    ///   match, in any order, each as many times. Names compare as header names do
    ///   (case-insensitively, compact forms equal to their long form: `?s=hi` =
    ///   `?Subject=hi`); values compare as text under the rules above, not under each header
    ///   field's own grammar of §20 (a `to=` value holding a URI is compared as text).
    ///
    /// ## `tel:` (RFC 3966 §4)
    ///
    /// Both numbers global (`+…`) or both local; digits equal after removing the visual
    /// separators `- . ( )`; case-insensitive (hex digits `A`–`F`); every parameter present in
    /// both, in any order, values case-insensitive with `%HEX` handled as above; the values of
    /// `ext` and of a numeric `phone-context` (`+1-212`) compare without visual separators. A
    /// `tel:` URI never equals a `sip:` URI with `;user=phone`.
    ///
    /// ## Other schemes
    ///
    /// The scheme case-insensitively, the rest byte for byte: the crate does not know their
    /// grammar.
    ///
    /// ## Cost
    ///
    /// No allocation when neither URI carries more than 16 parameters or 16 header components
    /// (escapes are decoded on the fly); beyond that, the lists are sorted in a vector so that
    /// the work stays `O(n log n)` whatever the input.
    ///
    /// ## Example
    ///
    /// ```
    /// use sip_parser::Uri;
    ///
    /// let eq = |a: &str, b: &str| Uri::parse(a.as_bytes()).unwrap()
    ///     .equivalent(&Uri::parse(b.as_bytes()).unwrap());
    /// assert!(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
    /// assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    /// assert!(eq("sip:[::1]", "sip:[0:0::1]"));
    /// ```
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        equivalent(self, other)
    }
}

fn equivalent<'x>(a: &Uri<'x>, b: &Uri<'x>) -> bool {
    match (a.scheme, b.scheme) {
        (Scheme::Sip, Scheme::Sip) | (Scheme::Sips, Scheme::Sips) => {
            a.port == b.port
                && host_eq(a.host, b.host)
                && userinfo_eq(a.user, b.user)
                && userinfo_eq(a.password, b.password)
                && lists_match(Rules::SipParam, a.params.as_bytes(), b.params.as_bytes())
                && lists_match(
                    Rules::Header,
                    a.headers.unwrap_or_default(),
                    b.headers.unwrap_or_default(),
                )
        }
        (Scheme::Tel, Scheme::Tel) => {
            let number = |u: &Uri<'x>| Units::new(u.user.unwrap_or_default(), true).visual(true);
            number(a).eq(number(b))
                && lists_match(Rules::TelParam, a.params.as_bytes(), b.params.as_bytes())
        }
        (Scheme::Other, Scheme::Other) => {
            let rest = |u: &Uri<'x>| u.raw.get(u.scheme_str.len() + 1..);
            a.scheme_str.eq_ignore_ascii_case(b.scheme_str) && rest(a) == rest(b)
        }
        _ => false,
    }
}

/// RFC 2396's `reserved` set: an escape of one of these is not the character itself.
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
    )
}

/// One character of a URI component as §19.1.4 compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unit {
    /// A character written plainly or as the escape of a non-reserved character.
    Char(u8),
    /// The `%HEX HEX` escape of a reserved character.
    Escaped(u8),
}

impl Unit {
    /// The octet, escaped or not (§10.3 unescapes every escape).
    pub(crate) fn octet(self) -> u8 {
        match self {
            Self::Char(b) | Self::Escaped(b) => b,
        }
    }
}

/// The [`Unit`]s of a component, escapes decoded on the fly; ASCII letters folded to lower
/// case when `fold`, `tel:` visual separators skipped when `visual`.
#[derive(Debug, Clone)]
pub(crate) struct Units<'a> {
    s: &'a [u8],
    i: usize,
    fold: bool,
    visual: bool,
}

impl<'a> Units<'a> {
    pub(crate) fn new(s: &'a [u8], fold: bool) -> Self {
        Self {
            s,
            i: 0,
            fold,
            visual: false,
        }
    }

    fn visual(mut self, skip: bool) -> Self {
        self.visual = skip;
        self
    }
}

impl Iterator for Units<'_> {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        loop {
            let b = *self.s.get(self.i)?;
            let escape = match (b, self.s.get(self.i + 1), self.s.get(self.i + 2)) {
                (b'%', Some(&h), Some(&l)) if is_hex(h) && is_hex(l) => Some(hex(h) << 4 | hex(l)),
                // A lone `%` (never in a parsed URI: the fields are public) stands for itself.
                _ => None,
            };
            let unit = if let Some(c) = escape {
                self.i += 3;
                if is_reserved(c) {
                    Unit::Escaped(c)
                } else {
                    Unit::Char(c)
                }
            } else {
                self.i += 1;
                Unit::Char(b)
            };
            let unit = match unit {
                Unit::Char(c) if self.fold => Unit::Char(c.to_ascii_lowercase()),
                u => u,
            };
            if self.visual && matches!(unit, Unit::Char(b'-' | b'.' | b'(' | b')')) {
                continue;
            }
            return Some(unit);
        }
    }
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => (b | 0x20) - b'a' + 10,
    }
}

/// User or password equal under §19.1.4: case-sensitive, escapes decoded. No escape in
/// either: a plain comparison.
fn userinfo_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            if crate::chars::find(b'%', a).is_none() && crate::chars::find(b'%', b).is_none() {
                a == b
            } else {
                Units::new(a, false).eq(Units::new(b, false))
            }
        }
        _ => false,
    }
}

/// Hosts equal: domain names case-insensitively, IP addresses by value, never across kinds.
fn host_eq(a: &str, b: &str) -> bool {
    // The same text is the same host, address or not: no parse needed.
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    match (host_kind(a), host_kind(b)) {
        (HostKind::Ipv4, HostKind::Ipv4) => ipv4(a) == ipv4(b),
        // A reference the grammar check let through but that is no address (`[1:::2]`) only
        // equals its own text.
        (HostKind::Ipv6, HostKind::Ipv6) => {
            matches!((ipv6(a), ipv6(b)), (Some(x), Some(y)) if x == y)
        }
        // Domain names whose text differs, or hosts of different kinds.
        _ => false,
    }
}

/// The octets of a dotted quad (leading zeros allowed, as `host_kind` accepts them).
pub(crate) fn ipv4(host: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = host.split('.');
    for o in &mut out {
        let p = parts.next()?;
        *o = u8::try_from(crate::chars::parse_digits(p.as_bytes())?).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The address of a bracketed IPv6 reference.
pub(crate) fn ipv6(host: &str) -> Option<Ipv6Addr> {
    host.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Which list is being compared: names, values and presence follow different rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// SIP/SIPS URI parameters: the five of [`MUST_MATCH`] must be in both, others only
    /// compared when in both.
    SipParam,
    /// SIP/SIPS header components: all must be in both; names as header names.
    Header,
    /// `tel:` parameters: all must be in both; `ext` and numeric `phone-context` values
    /// without visual separators.
    TelParam,
}

/// One `name[=value]` of a parameter or header list.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    name: &'a [u8],
    value: Option<&'a [u8]>,
    /// A `%` somewhere in the entry: compare through [`Units`], not byte slices.
    escaped: bool,
}

/// A parameter or header list, split once; on the stack up to [`PAIRWISE_MAX`] entries.
type List<'a> = SmallVec<[Entry<'a>; PAIRWISE_MAX]>;

/// Splits a raw list into `out`: URI parameters (the raw text starts with `;`) or header
/// components (the raw text after `?`, `&`-separated).
fn split_into<'a>(rules: Rules, raw: &'a [u8], out: &mut List<'a>) {
    if raw.is_empty() {
        return;
    }
    let (sep, skip) = if rules == Rules::Header {
        (b'&', 0)
    } else {
        (b';', 1)
    };
    out.extend(raw.split(|&b| b == sep).skip(skip).map(|e| {
        let escaped = crate::chars::find(b'%', e).is_some();
        match crate::chars::find(b'=', e) {
            Some(eq) => Entry {
                name: &e[..eq],
                value: Some(&e[eq + 1..]),
                escaped,
            },
            None => Entry {
                name: e,
                value: None,
                escaped,
            },
        }
    }));
}

impl Rules {
    /// The name as compared: header names through [`HeaderName`] so that compact and long
    /// forms meet.
    fn name_units<'a>(self, e: &Entry<'a>) -> Units<'a> {
        if self == Self::Header {
            if let Some(canonical) = known_header(e).as_str() {
                return Units::new(canonical.as_bytes(), true);
            }
        }
        Units::new(e.name, true)
    }

    /// Does `value` (of a parameter called `name`) compare without visual separators?
    fn visual(self, name: &[u8], value: &[u8]) -> bool {
        self == Self::TelParam
            && (named(name, b"ext")
                || (named(name, b"phone-context") && value.first() == Some(&b'+')))
    }

    fn value_units<'a>(self, name: &[u8], value: &'a [u8]) -> Units<'a> {
        Units::new(value, true).visual(self.visual(name, value))
    }

    fn name_cmp(self, a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
        self.name_units(a).cmp(self.name_units(b))
    }

    fn entry_cmp(self, a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
        self.name_cmp(a, b).then_with(|| match (a.value, b.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            // Names are equal here, so both values get the same treatment.
            (Some(x), Some(y)) => self.value_units(a.name, x).cmp(self.value_units(a.name, y)),
        })
    }

    /// `name_cmp(a, b).is_eq()`, on byte slices when neither entry holds an escape.
    fn name_eq(self, a: &Entry<'_>, b: &Entry<'_>) -> bool {
        if self == Self::Header {
            let kind = known_header(a);
            if kind != known_header(b) {
                return false;
            }
            if kind != HeaderName::Other {
                return true;
            }
        }
        if a.escaped || b.escaped {
            Units::new(a.name, true).eq(Units::new(b.name, true))
        } else {
            a.name.eq_ignore_ascii_case(b.name)
        }
    }

    /// `entry_cmp(a, b).is_eq()`, on byte slices when neither entry holds an escape.
    fn entry_eq(self, a: &Entry<'_>, b: &Entry<'_>) -> bool {
        self.name_eq(a, b)
            && match (a.value, b.value) {
                (None, None) => true,
                (Some(x), Some(y)) if a.escaped || b.escaped || self == Self::TelParam => {
                    self.value_units(a.name, x).eq(self.value_units(a.name, y))
                }
                (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                _ => false,
            }
    }

    /// Must an entry with this name be present in both lists?
    fn must_match(self, e: &Entry<'_>) -> bool {
        match self {
            Self::SipParam if e.escaped => MUST_MATCH.iter().any(|n| named(e.name, n)),
            Self::SipParam => MUST_MATCH.iter().any(|n| e.name.eq_ignore_ascii_case(n)),
            Self::Header | Self::TelParam => true,
        }
    }
}

/// Is the (possibly escaped) name `name` the lower-case ASCII `want`?
fn named(name: &[u8], want: &[u8]) -> bool {
    Units::new(name, true).eq(want.iter().map(|&b| Unit::Char(b)))
}

/// Classifies a header name, written with escapes or not (`%53ubject`).
fn known_header(e: &Entry<'_>) -> HeaderName {
    if !e.escaped {
        return HeaderName::classify(e.name);
    }
    let mut buf = [0u8; 24];
    let mut n = 0;
    for u in Units::new(e.name, false) {
        match (u, buf.get_mut(n)) {
            (Unit::Char(c), Some(slot)) => {
                *slot = c;
                n += 1;
            }
            _ => return HeaderName::Other,
        }
    }
    HeaderName::classify(&buf[..n])
}

/// Do two parameter or header lists (raw text) match under `rules`? For every name present
/// in both lists or required by the rules, the two lists must carry the same values the same
/// number of times. Short lists are compared where they lie (on the stack); longer ones
/// (spilled to the heap) are sorted first, so that no input is quadratic.
fn lists_match(rules: Rules, a: &[u8], b: &[u8]) -> bool {
    if a.is_empty() && b.is_empty() {
        return true;
    }
    let (mut la, mut lb) = (List::new(), List::new());
    split_into(rules, a, &mut la);
    split_into(rules, b, &mut lb);
    if la.len() > PAIRWISE_MAX || lb.len() > PAIRWISE_MAX {
        return sorted_match(rules, &mut la, &mut lb);
    }
    if distinct_names(rules, &la) && distinct_names(rules, &lb) {
        // The usual case: each name at most once per list, so "the same values the same
        // number of times" is "the same value".
        la.iter()
            .all(|p| match lb.iter().find(|q| rules.name_eq(p, q)) {
                Some(q) => rules.entry_eq(p, q),
                None => !rules.must_match(p),
            })
            && lb
                .iter()
                .all(|q| !rules.must_match(q) || la.iter().any(|p| rules.name_eq(p, q)))
    } else {
        side_matches(rules, &la, &lb) && side_matches(rules, &lb, &la)
    }
}

fn distinct_names(rules: Rules, list: &[Entry<'_>]) -> bool {
    list.iter()
        .enumerate()
        .all(|(i, p)| !list[i + 1..].iter().any(|q| rules.name_eq(p, q)))
}

/// Every entry of `a` that must be compared occurs as often in `a` as in `b`.
fn side_matches(rules: Rules, a: &[Entry<'_>], b: &[Entry<'_>]) -> bool {
    a.iter().all(|p| {
        let compared = rules.must_match(p) || b.iter().any(|q| rules.name_eq(p, q));
        let count = |list: &[Entry<'_>]| list.iter().filter(|q| rules.entry_eq(p, q)).count();
        !compared || count(a) == count(b)
    })
}

fn sorted_match(rules: Rules, a: &mut [Entry<'_>], b: &mut [Entry<'_>]) -> bool {
    a.sort_unstable_by(|x, y| rules.entry_cmp(x, y));
    b.sort_unstable_by(|x, y| rules.entry_cmp(x, y));
    let group_end = |list: &[Entry<'_>], i: usize| {
        i + list[i..]
            .iter()
            .take_while(|e| rules.name_cmp(e, &list[i]).is_eq())
            .count()
    };
    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (a.get(i), b.get(j)) {
            (None, None) => return true,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => rules.name_cmp(x, y),
        };
        match order {
            Ordering::Less => {
                if rules.must_match(&a[i]) {
                    return false;
                }
                i = group_end(a, i);
            }
            Ordering::Greater => {
                if rules.must_match(&b[j]) {
                    return false;
                }
                j = group_end(b, j);
            }
            Ordering::Equal => {
                let (i2, j2) = (group_end(a, i), group_end(b, j));
                if i2 - i != j2 - j
                    || !a[i..i2]
                        .iter()
                        .zip(&b[j..j2])
                        .all(|(x, y)| rules.entry_cmp(x, y).is_eq())
                {
                    return false;
                }
                (i, j) = (i2, j2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;

    fn uri(s: &str) -> Uri<'_> {
        Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn eq(a: &str, b: &str) -> bool {
        let (x, y) = (uri(a), uri(b));
        let forward = x.equivalent(&y);
        assert_eq!(forward, y.equivalent(&x), "not symmetric: {a} / {b}");
        forward
    }

    /// RFC 3261 §19.1.4: "The URIs within each of the following sets are equivalent".
    #[test]
    fn rfc3261_equivalent_sets() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        let carol = [
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on",
        ];
        for a in carol {
            for b in carol {
                if a != b {
                    assert!(eq(a, b), "{a} / {b}");
                }
            }
        }
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    /// RFC 3261 §19.1.4: "The URIs within each of the following sets are not equivalent".
    #[test]
    fn rfc3261_not_equivalent_pairs() {
        for (a, b) in [
            // different usernames
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            // can resolve to different ports
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            // can resolve to different transports
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            // can resolve to different port and transports
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            // different header component
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            // even though that's what phone21.boxesbybob.com resolves to
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ] {
            assert!(!eq(a, b), "{a} / {b}");
        }
        // "Note that equality is not transitive": both equal sip:carol@chicago.com.
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
    }

    /// §19.1.4 bullets that the RFC's examples do not exercise.
    #[test]
    fn rfc3261_rules() {
        // "A SIP and SIPS URI are never equivalent."
        assert!(!eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
        assert!(eq("SIPS:alice@atlanta.com", "sips:alice@atlanta.com"));
        // "This includes userinfo containing passwords or formatted as telephone-subscribers."
        assert!(!eq("sip:alice:Secret@a.com", "sip:alice:secret@a.com"));
        assert!(eq("sip:alice:s%65cret@a.com", "sip:alice:secret@a.com"));
        assert!(!eq("sip:alice:secret@a.com", "sip:alice@a.com"));
        assert!(!eq(
            "sip:+1-212-555-ABCD@a.com;user=phone",
            "sip:+1-212-555-abcd@a.com;user=phone"
        ));
        // "A URI omitting the user component will not match a URI that includes one."
        assert!(!eq("sip:a.com", "sip:alice@a.com"));
        // "A user, ttl, or method uri-parameter appearing in only one URI never matches,
        // even if it contains the default value."
        for p in [
            "user=ip",
            "ttl=1",
            "method=INVITE",
            "maddr=a.com",
            "transport=udp",
        ] {
            assert!(
                !eq("sip:alice@a.com", &format!("sip:alice@a.com;{p}")),
                "{p}"
            );
            let upper = p.to_ascii_uppercase();
            assert!(eq(
                &format!("sip:alice@a.com;{p}"),
                &format!("sip:alice@a.com;{upper}")
            ));
        }
        assert!(!eq(
            "sip:a.com;maddr=239.255.255.1",
            "sip:a.com;maddr=239.255.255.2"
        ));
        // "Any uri-parameter appearing in both URIs must match."
        assert!(!eq("sip:a.com;lr", "sip:a.com;lr=on"));
        assert!(eq("sip:a.com;lr", "sip:a.com;LR"));
        assert!(eq("sip:a.com;%6Cr=%4Fn", "sip:a.com;lr=on"));
        assert!(eq("sip:a.com;%74ransport=tcp", "sip:a.com;transport=tcp"));
        assert!(!eq("sip:a.com;%74ransport=tcp", "sip:a.com"));
        // Headers: "Any present header component MUST be present in both URIs and match."
        assert!(!eq("sip:a.com?subject=x", "sip:a.com?subject=y"));
        assert!(eq("sip:a.com?subject=x", "sip:a.com?SUBJECT=X"));
        assert!(eq("sip:a.com?s=x", "sip:a.com?Subject=x"));
        assert!(eq("sip:a.com?%53ubject=x", "sip:a.com?s=x"));
        assert!(!eq("sip:a.com?subject=x&subject=x", "sip:a.com?subject=x"));
    }

    #[test]
    fn escapes_of_reserved_characters() {
        // `;` is allowed plainly in a user part; escaped, it is a different user.
        assert!(!eq("sip:a;b@h.com", "sip:a%3Bb@h.com"));
        assert!(eq("sip:a%3bb@h.com", "sip:a%3Bb@h.com"));
        assert!(!eq("sip:a.com;p=x/y", "sip:a.com;p=x%2Fy"));
        assert!(!eq("sip:a.com?h=x:y", "sip:a.com?h=x%3Ay"));
        // Non-reserved: `~` `*` and the space, `%` itself (escaped both sides).
        assert!(eq("sip:%7E%2a@h.com", "sip:~*@h.com"));
        assert!(eq("sip:a%20b@h.com", "sip:a%20b@h.com"));
        assert!(!eq("sip:a%2541@h.com", "sip:a%41@h.com"));
        // Every character of a user part escaped where it need not be.
        assert!(eq("sip:%75se%72@example.com", "sip:user@example.com"));
    }

    #[test]
    fn hosts() {
        assert!(eq("sip:[::1]", "sip:[0:0::1]"));
        assert!(eq(
            "sip:[2001:DB8::1]:5060",
            "sip:[2001:db8:0:0:0:0:0:1]:5060"
        ));
        assert!(!eq("sip:[2001:db8::1]", "sip:[2001:db8::2]"));
        assert!(eq("sip:[::ffff:192.0.2.4]", "sip:[::FFFF:c000:204]"));
        assert!(!eq("sip:[::ffff:192.0.2.4]", "sip:192.0.2.4"));
        assert!(eq("sip:192.000.002.004", "sip:192.0.2.4"));
        assert!(!eq("sip:192.0.2.4", "sip:192.0.2.40"));
        assert!(!eq("sip:example.com.", "sip:example.com"));
        assert!(!eq("sip:[1:::2]", "sip:[::1:2]"));
        assert!(eq("sip:[1:::2]", "sip:[1:::2]"));
    }

    #[test]
    fn tel_rfc3966() {
        assert!(eq("tel:+1-201-555-0123", "tel:+1.201.555.0123"));
        assert!(eq("tel:+1(201)5550123", "tel:+12015550123"));
        // "Both must be either a 'local-number' or a 'global-number'".
        assert!(!eq("tel:+12015550123", "tel:12015550123"));
        assert!(eq(
            "tel:7042;phone-context=EXAMPLE.com",
            "tel:7042;phone-context=example.com"
        ));
        assert!(eq(
            "tel:7042;phone-context=+1-201",
            "tel:7042;phone-context=+1201"
        ));
        assert!(!eq(
            "tel:7042;phone-context=+1-201",
            "tel:7042;phone-context=+1202"
        ));
        assert!(eq(
            "tel:+1-201-555-0123;ext=1-2",
            "tel:+1-201-555-0123;EXT=12"
        ));
        assert!(eq(
            "tel:+1-201-555-0123;a=1;b=2",
            "tel:+1-201-555-0123;b=2;a=1"
        ));
        // "If one URI has a parameter name not found in the other, the two URIs are not
        // equal."
        assert!(!eq("tel:+1-201-555-0123", "tel:+1-201-555-0123;isub=1"));
        assert!(eq("tel:+1-201-555-abcd", "TEL:+1-201-555-ABCD"));
        assert!(!eq("tel:+12015550123", "sip:+12015550123@a.com;user=phone"));
    }

    #[test]
    fn other_schemes() {
        assert!(eq("urn:service:sos", "URN:service:sos"));
        assert!(!eq("urn:service:sos", "urn:service:SOS"));
        assert!(!eq("urn:service:sos", "urx:service:sos"));
    }

    /// Long lists take the sorted path; it must agree with the pairwise one.
    #[test]
    fn long_lists() {
        let names: alloc::vec::Vec<String> = (0..20).map(|i| format!("p{i}={i}")).collect();
        let forward = names.join(";");
        let backward: alloc::vec::Vec<_> = names.iter().rev().cloned().collect();
        let backward = backward.join(";");
        let a = format!("sip:a.com;{forward}");
        assert!(eq(&a, &format!("sip:a.com;{backward}")));
        assert!(eq(&a, &format!("sip:a.com;{backward};extra")));
        assert!(!eq(&a, &format!("sip:a.com;{backward};ttl=1")));
        assert!(!eq(&a, &format!("sip:a.com;{backward};p3=4")));
        assert!(eq(&a, "sip:a.com;p3=3"));
        assert!(!eq(&a, "sip:a.com;p3=4"));
        let headers = names.join("&");
        let h = format!("sip:a.com?{headers}");
        assert!(eq(&h, &format!("sip:a.com?{}", backward.replace(';', "&"))));
        assert!(!eq(&h, &format!("sip:a.com?{headers}&x=1")));
        assert!(!eq(&h, "sip:a.com?p1=1"));
    }
}
