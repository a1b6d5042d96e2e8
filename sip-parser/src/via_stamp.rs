//! The edit a server transport makes to the top Via of a received request (RFC 3261 §18.2.1,
//! RFC 3581 §4): `received=IP` and `rport=PORT` set in place, kept as at most two splices
//! into the original field value so that serialising copies the rest byte for byte and
//! nothing is allocated.

use core::fmt::Write;
use core::net::IpAddr;
use core::ops::Range;

use crate::error::PResult;
use crate::list::Split;
use crate::via::{Via, parse_via};

/// Short text written into a splice: an IP address or a port, with its prefix.
#[derive(Debug, Clone, Copy)]
struct Text {
    buf: [u8; 56],
    len: u8,
}

impl Text {
    fn new() -> Self {
        Self {
            buf: [0; 56],
            len: 0,
        }
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
    fn push(&mut self, s: &[u8]) {
        let at = self.len as usize;
        if let Some(dst) = self.buf.get_mut(at..at + s.len()) {
            dst.copy_from_slice(s);
            self.len += s.len() as u8;
        }
    }
    fn push_u16(&mut self, n: u16) {
        let mut digits = [0u8; 20];
        self.push(crate::chars::decimal(u64::from(n), &mut digits));
    }
    /// Dotted quad by hand (the common case, and `core::fmt` costs more than the rest of
    /// the edit); IPv6 through its `Display`.
    fn push_ip(&mut self, ip: IpAddr) {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.push(b".");
                    }
                    self.push_u16(u16::from(o));
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(self, "{v6}");
            }
        }
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let at = self.len as usize;
        if at + s.len() > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Replace `at` (a range of the field value) with `text`.
#[derive(Debug, Clone)]
struct Cut {
    at: Range<u32>,
    text: Text,
    /// A parameter appended at the end of the entry: after any in-place edit at the same
    /// position (`;rport` ending the entry is filled before `;received=` follows it).
    append: bool,
}

/// `received` / `rport` set on the top Via entry of header field `field`.
#[derive(Debug, Clone)]
pub(crate) struct ViaStamp {
    pub(crate) field: u16,
    pub(crate) received: Option<IpAddr>,
    pub(crate) rport: Option<u16>,
    cuts: [Option<Cut>; 2],
}

impl ViaStamp {
    /// Plans the edit of the first entry of `value` (the field's current value): parses it
    /// once, asks `decide` what to set, and returns `None` when that is nothing. The IP is
    /// written as RFC 3261's grammar has it (`received = IPv4address / IPv6address`: no
    /// brackets), an IPv4-mapped IPv6 address as the IPv4 address it maps.
    pub(crate) fn new(
        field: u16,
        value: &[u8],
        decide: impl FnOnce(&Via<'_>) -> (Option<IpAddr>, Option<u16>),
    ) -> PResult<Option<Self>> {
        Self::new_parsed(field, value, None, decide)
    }

    /// [`new`](Self::new) given the first entry already parsed (`parsed`, whose `raw` must
    /// lie in `value`: the message's indexed top Via); parses it when `None`.
    pub(crate) fn new_parsed(
        field: u16,
        value: &[u8],
        parsed: Option<Via<'_>>,
        decide: impl FnOnce(&Via<'_>) -> (Option<IpAddr>, Option<u16>),
    ) -> PResult<Option<Self>> {
        let inside = |v: &Via<'_>| {
            let (b, p) = (value.as_ptr_range(), v.raw.as_ptr_range());
            b.start <= p.start && p.end <= b.end
        };
        let (start, entry, via) = if let Some(via) = parsed.filter(inside) {
            let start = via.raw.as_ptr() as usize - value.as_ptr() as usize;
            (start, via.raw, via)
        } else {
            let (start, entry) = Split::new(value).next().unwrap_or((0, &[]));
            let via = parse_via(entry).map_err(|(o, k)| (start + o, k))?;
            (start, entry, via)
        };
        let (received, rport) = decide(&via);
        if received.is_none() && rport.is_none() {
            return Ok(None);
        }
        let offset = |s: &[u8]| s.as_ptr() as usize - value.as_ptr() as usize;
        let entry_end = start + entry.len();
        // One walk over the parameters finds both (the first of each name counts, as in
        // parse_via).
        let (mut received_at, mut rport_at) = (None, None);
        for p in &via.params {
            let slot = match p.name.len() {
                8 if received_at.is_none() && p.name.eq_ignore_ascii_case("received") => {
                    &mut received_at
                }
                5 if rport_at.is_none() && p.name.eq_ignore_ascii_case("rport") => &mut rport_at,
                _ => continue,
            };
            *slot = Some(if let Some(v) = p.value {
                (offset(v)..offset(v) + v.len(), &b""[..])
            } else {
                let end = offset(p.name.as_bytes()) + p.name.len();
                (end..end, &b"="[..])
            });
        }
        let cut = |at: Option<(Range<usize>, &[u8])>, append: &[u8], write: &dyn Fn(&mut Text)| {
            let (at, prefix, appended) = match at {
                Some((at, prefix)) => (at, prefix, false),
                None => (entry_end..entry_end, append, true),
            };
            let mut text = Text::new();
            text.push(prefix);
            write(&mut text);
            Cut {
                at: at.start as u32..at.end as u32,
                text,
                append: appended,
            }
        };
        let mut cuts = [
            received.map(|ip| cut(received_at, b";received=", &|t| t.push_ip(ip))),
            rport.map(|port| cut(rport_at, b";rport=", &|t| t.push_u16(port))),
        ];
        if let [Some(a), Some(b)] = &cuts {
            if (b.at.start, b.append) < (a.at.start, a.append) {
                cuts.swap(0, 1);
            }
        }
        Ok(Some(Self {
            field,
            received,
            rport,
            cuts,
        }))
    }

    /// Visits the stamped value: `value` (the same one given to [`new`](Self::new)) with the
    /// splices applied.
    pub(crate) fn pieces(&self, value: &[u8], f: &mut impl FnMut(&[u8])) {
        let mut at = 0;
        for cut in self.cuts.iter().flatten() {
            f(&value[at..cut.at.start as usize]);
            f(cut.text.as_bytes());
            at = cut.at.end as usize;
        }
        f(&value[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn stamp(value: &str, received: Option<&str>, rport: Option<u16>) -> String {
        let received = received.map(|r| r.parse().unwrap());
        let s = ViaStamp::new(0, value.as_bytes(), |_| (received, rport))
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        s.pieces(value.as_bytes(), &mut |p| out.extend_from_slice(p));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn splices() {
        // RFC 3261 §18.2.1 example.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP bobspc.biloxi.com:5060",
                Some("192.0.2.4"),
                None
            ),
            "SIP/2.0/UDP bobspc.biloxi.com:5060;received=192.0.2.4"
        );
        // RFC 3581 §4 example: rport filled in place, received added.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
                Some("192.0.2.1"),
                Some(9988)
            ),
            "SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1"
        );
        // Existing values replaced; only the first entry touched; spacing kept.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP h ; received = 10.0.0.1 ; rport=1 , SIP/2.0/UDP x;rport",
                Some("2001:db8::1"),
                Some(2)
            ),
            "SIP/2.0/UDP h ; received = 2001:db8::1 ; rport=2 , SIP/2.0/UDP x;rport"
        );
        // rport before received in the value: cuts applied in order.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP h;rport;received=1.2.3.4",
                Some("::ffff:192.0.2.9"),
                Some(7)
            ),
            "SIP/2.0/UDP h;rport=7;received=192.0.2.9"
        );
        // A valueless rport ending the entry is filled before received is appended.
        assert_eq!(
            stamp(
                "SIP/2.0/UDP a;branch=z9hG4bK0;rport, SIP/2.0/UDP b",
                Some("0.0.0.0"),
                Some(0)
            ),
            "SIP/2.0/UDP a;branch=z9hG4bK0;rport=0;received=0.0.0.0, SIP/2.0/UDP b"
        );
        assert_eq!(
            stamp("SIP/2.0/UDP h;branch=z9hG4bK1", None, Some(65535)),
            "SIP/2.0/UDP h;branch=z9hG4bK1;rport=65535"
        );
        assert_eq!(
            stamp(
                "SIP/2.0/UDP h",
                Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                None
            ),
            "SIP/2.0/UDP h;received=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert!(ViaStamp::new(0, b"SIP/2.0 h", |_| (None, Some(1))).is_err());
        assert!(ViaStamp::new(0, b"", |_| (None, Some(1))).is_err());
        assert!(
            ViaStamp::new(0, b"SIP/2.0/UDP h", |_| (None, None))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            stamp("SIP/2.0/UDP h", Some("10.0.0.255"), Some(0)),
            "SIP/2.0/UDP h;received=10.0.0.255;rport=0"
        );
    }
}
