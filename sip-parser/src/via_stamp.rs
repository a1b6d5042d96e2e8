//! The edit a server transport makes to the top Via of a received request (RFC 3261 §18.2.1,
//! RFC 3581 §4): `received=IP` and `rport=PORT` set in place, kept as at most two splices
//! into the original field value so that serialising copies the rest byte for byte and
//! nothing is allocated.

use core::fmt::Write;
use core::net::IpAddr;
use core::ops::Range;

use crate::error::PResult;
use crate::list::Split;
use crate::via::parse_via;

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
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let at = self.len as usize;
        let dst = self.buf.get_mut(at..at + s.len()).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len += s.len() as u8;
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
    /// Plans the edit of the first entry of `value` (the field's current value). The IP is
    /// written as RFC 3261's grammar has it (`received = IPv4address / IPv6address`: no
    /// brackets), an IPv4-mapped IPv6 address as the IPv4 address it maps.
    pub(crate) fn new(
        field: u16,
        value: &[u8],
        received: Option<IpAddr>,
        rport: Option<u16>,
    ) -> PResult<Self> {
        let (start, entry) = Split::new(value).next().unwrap_or((0, &[]));
        let via = parse_via(entry).map_err(|(o, k)| (start + o, k))?;
        let offset = |s: &[u8]| s.as_ptr() as usize - value.as_ptr() as usize;
        let entry_end = start + entry.len();
        let mut cuts: [Option<Cut>; 2] = [None, None];
        let mut plan = |slot: usize, name: &str, write: &dyn Fn(&mut Text)| {
            let mut text = Text::new();
            let param = via
                .params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name));
            let append = param.is_none();
            let at = if let Some(p) = param {
                if let Some(v) = p.value {
                    offset(v)..offset(v) + v.len()
                } else {
                    let end = offset(p.name.as_bytes()) + p.name.len();
                    let _ = text.write_str("=");
                    end..end
                }
            } else {
                let _ = write!(text, ";{name}=");
                entry_end..entry_end
            };
            write(&mut text);
            cuts[slot] = Some(Cut {
                at: at.start as u32..at.end as u32,
                text,
                append,
            });
        };
        if let Some(ip) = received {
            plan(0, "received", &|t| {
                let _ = write!(t, "{}", ip.to_canonical());
            });
        }
        if let Some(port) = rport {
            plan(1, "rport", &|t| {
                let _ = write!(t, "{port}");
            });
        }
        if let [Some(a), Some(b)] = &cuts {
            if (b.at.start, b.append) < (a.at.start, a.append) {
                cuts.swap(0, 1);
            }
        }
        Ok(Self {
            field,
            received,
            rport,
            cuts,
        })
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
        let s = ViaStamp::new(
            0,
            value.as_bytes(),
            received.map(|r| r.parse().unwrap()),
            rport,
        )
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
        assert!(ViaStamp::new(0, b"SIP/2.0 h", None, Some(1)).is_err());
        assert!(ViaStamp::new(0, b"", None, Some(1)).is_err());
    }
}
