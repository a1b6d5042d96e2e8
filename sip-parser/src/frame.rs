//! Framing: the eager pass that finds the start line, every header's name and value span,
//! and the body. Nothing here interprets a header value except Content-Length, which framing
//! needs.

use memchr::memchr;
use smallvec::SmallVec;

use crate::chars::{all_token, is_ws, parse_digits};
use crate::error::ParseError;
use crate::limits::Limits;
use crate::name::HeaderName;

/// A byte range in the message buffer (u32 keeps the header table small; messages are
/// bounded by [`Limits::max_message_size`] anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    #[inline]
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Self {
            start: start as u32,
            end: end as u32,
        }
    }
    #[inline]
    pub(crate) fn range(self) -> core::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One header field: where its name and value are, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Span,
    pub(crate) value: Span,
    pub(crate) kind: HeaderName,
}

/// The start line's pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Request {
        method: Span,
        uri: Span,
        version: Span,
        /// Extra or missing single SPs between the request-line elements (RFC 4475
        /// lwsstart / trws): framed, reported by `validate()`.
        irregular: bool,
    },
    Response {
        version: Span,
        status: u16,
        reason: Span,
    },
}

/// A problem with Content-Length that a datagram survives (body = rest of the datagram) but
/// that `validate()` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClIssue {
    None,
    TooLarge { offset: u32 },
    Invalid { offset: u32 },
    Conflict { offset: u32 },
}

/// Inline capacity of the header table: typical messages carry 8–20 header fields, so
/// parsing them allocates nothing.
pub(crate) const INLINE_HEADERS: usize = 20;

/// The framed shape of a message: offsets only, no copies.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Where the start line begins (after ignored leading CRLFs).
    pub(crate) msg_start: u32,
    pub(crate) start: Start,
    /// Offset of the first header line.
    pub(crate) headers_start: u32,
    pub(crate) headers: SmallVec<[Entry; INLINE_HEADERS]>,
    /// Offset of the empty line that ends the header section.
    pub(crate) headers_end: u32,
    pub(crate) body: Span,
    pub(crate) content_length: Option<u32>,
    pub(crate) cl_issue: ClIssue,
    pub(crate) max_list_entries: u32,
    /// Index of the first field of each well-known header ([`NOT_SEEN`] when absent): the
    /// typed accessors find their header in O(1).
    pub(crate) first: [u8; KNOWN_HEADERS],
    /// The core fields parsed once ([`Message::index_core_fields`](crate::Message::index_core_fields)).
    pub(crate) index: Option<alloc::sync::Arc<crate::index::CoreIndex>>,
}

/// Equal layouts frame the same way; the index is derived from the bytes and not compared
/// (an indexed message equals the same message unindexed).
impl PartialEq for Layout {
    fn eq(&self, o: &Self) -> bool {
        self.msg_start == o.msg_start
            && self.start == o.start
            && self.headers_start == o.headers_start
            && self.headers == o.headers
            && self.headers_end == o.headers_end
            && self.body == o.body
            && self.content_length == o.content_length
            && self.cl_issue == o.cl_issue
            && self.max_list_entries == o.max_list_entries
            && self.first == o.first
    }
}

impl Eq for Layout {}

/// Cloning a message copies its layout: the header table as one block (`SmallVec`'s own
/// `Clone` pushes entry by entry).
impl Clone for Layout {
    fn clone(&self) -> Self {
        Layout {
            msg_start: self.msg_start,
            start: self.start,
            headers_start: self.headers_start,
            headers: SmallVec::from_slice(&self.headers),
            headers_end: self.headers_end,
            body: self.body,
            content_length: self.content_length,
            cl_issue: self.cl_issue,
            max_list_entries: self.max_list_entries,
            first: self.first,
            index: self.index.clone(),
        }
    }
}

/// How many well-known header names [`HeaderName`] has (all but `Other`).
pub(crate) const KNOWN_HEADERS: usize = HeaderName::Other as usize;
/// [`Layout::first`] entry of a header that is absent (or beyond index 254).
pub(crate) const NOT_SEEN: u8 = u8::MAX;

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One message per datagram: Content-Length optional, trailing octets ignored.
    Datagram,
    /// The buffer is exactly a header section (ending in the empty line); Content-Length is
    /// mandatory and must be usable. The body span is left empty for the caller to set.
    StreamHead,
}

fn line_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    // Returns (content_end, next_line_start).
    let nl = from + memchr(b'\n', &buf[from..])?;
    let content_end = if nl > from && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((content_end, nl + 1))
}

pub(crate) fn frame(buf: &[u8], limits: &Limits, mode: Mode) -> Result<Layout, ParseError> {
    if buf.len() > limits.max_message_size && mode == Mode::Datagram {
        return Err(ParseError::TooLarge {
            size: buf.len(),
            limit: limits.max_message_size,
        });
    }
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    let mut pos = 0;
    while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
        pos += 1;
    }
    if pos == buf.len() {
        return Err(if pos == 0 {
            ParseError::Empty
        } else {
            ParseError::KeepAlive
        });
    }
    let msg_start = pos;
    let Some((sl_end, next)) = line_end(buf, pos) else {
        return Err(ParseError::StartLine {
            offset: pos,
            reason: "no line end",
        });
    };
    let start = start_line(buf, pos, sl_end)?;
    let headers_start = next;
    pos = next;

    let mut headers: SmallVec<[Entry; INLINE_HEADERS]> = SmallVec::new();
    let mut content_length: Option<u32> = None;
    let mut first_seen = [NOT_SEEN; KNOWN_HEADERS];
    let mut cl_issue = ClIssue::None;
    let mut folds = 0usize;
    let mut field_start = pos;
    let headers_end;
    let body_start;
    // One searcher for every line end of the header section (no per-line set-up).
    loop {
        let Some(nl) = swar_find(&buf[pos..], b'\n').map(|n| pos + n) else {
            return Err(ParseError::UnterminatedHeaders { offset: buf.len() });
        };
        let content_end = if nl > pos && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let next = nl + 1;
        if content_end == pos {
            headers_end = pos;
            body_start = next;
            break;
        }
        let first = buf[pos];
        if first == b' ' || first == b'\t' {
            // Continuation of the previous field (folding).
            let Some(last) = headers.last_mut() else {
                return Err(ParseError::HeaderLine {
                    offset: pos,
                    reason: "continuation line before any header",
                });
            };
            folds += 1;
            if folds > limits.max_fold_lines {
                return Err(ParseError::HeaderTooLong {
                    offset: field_start,
                    what: "fold lines",
                    limit: limits.max_fold_lines,
                });
            }
            let mut s = pos;
            while s < content_end && is_ws(buf[s]) {
                s += 1;
            }
            let mut e = content_end;
            while e > s && is_ws(buf[e - 1]) {
                e -= 1;
            }
            if s < e {
                if last.value.start == last.value.end {
                    last.value.start = s as u32;
                }
                last.value.end = e as u32;
            }
        } else {
            if headers.len() >= limits.max_headers {
                return Err(ParseError::TooManyHeaders {
                    offset: pos,
                    limit: limits.max_headers,
                });
            }
            if let Some(prev) = headers.last() {
                finish_field(buf, prev, mode, &mut content_length, &mut cl_issue)?;
            }
            folds = 0;
            field_start = pos;
            let line = &buf[pos..content_end];
            // Find the colon a word at a time, then let classification vouch for known names:
            // an exact (case-insensitive) match is a valid token, so only unknown names are
            // checked byte by byte.
            let Some(colon) = find_colon(line) else {
                return Err(ParseError::HeaderLine {
                    offset: pos,
                    reason: "no colon",
                });
            };
            let mut name_end = colon;
            while name_end > 0 && (line[name_end - 1] == b' ' || line[name_end - 1] == b'\t') {
                name_end -= 1;
            }
            let kind = HeaderName::classify_in(&buf[pos..], name_end);
            if kind == HeaderName::Other && !all_token(&line[..name_end]) {
                return Err(ParseError::HeaderLine {
                    offset: pos,
                    reason: "header name is not a token",
                });
            }
            let vs = crate::chars::skip_ws(line, colon + 1);
            let ve = line[vs..]
                .iter()
                .rposition(|&b| !is_ws(b))
                .map_or(vs, |p| vs + p + 1);
            let idx = headers.len();
            if let Some(slot) = first_seen.get_mut(kind as usize) {
                if *slot == NOT_SEEN && idx < NOT_SEEN as usize {
                    *slot = idx as u8;
                }
            }
            headers.push(Entry {
                name: Span::new(pos, pos + name_end),
                value: Span::new(pos + vs, pos + ve),
                kind,
            });
        }
        if content_end - field_start > limits.max_header_line {
            return Err(ParseError::HeaderTooLong {
                offset: field_start,
                what: "length",
                limit: limits.max_header_line,
            });
        }
        pos = next;
    }
    if let Some(prev) = headers.last() {
        finish_field(buf, prev, mode, &mut content_length, &mut cl_issue)?;
    }

    let body = match mode {
        Mode::StreamHead => {
            if content_length.is_none() {
                return Err(ParseError::MissingContentLength {
                    offset: headers_end,
                });
            }
            Span::new(body_start, body_start)
        }
        Mode::Datagram => match (content_length, cl_issue) {
            (Some(n), ClIssue::None) if body_start + n as usize <= buf.len() => {
                Span::new(body_start, body_start + n as usize)
            }
            (Some(_), ClIssue::None) => {
                let offset = headers
                    .iter()
                    .rev()
                    .find(|h| h.kind == HeaderName::ContentLength)
                    .map_or(0, |h| h.value.start);
                cl_issue = ClIssue::TooLarge { offset };
                Span::new(body_start, buf.len())
            }
            _ => Span::new(body_start, buf.len()),
        },
    };
    Ok(Layout {
        msg_start: msg_start as u32,
        start,
        headers_start: headers_start as u32,
        headers,
        headers_end: headers_end as u32,
        body,
        content_length,
        cl_issue,
        max_list_entries: limits.max_list_entries.min(u32::MAX as usize) as u32,
        first: first_seen,
        index: None,
    })
}

/// Index of the first `:` in `line`.
#[inline]
fn find_colon(line: &[u8]) -> Option<usize> {
    swar_find(line, b':')
}

/// Index of the first `needle` in `hay`, eight bytes at a time (SWAR zero-byte test). For
/// the short spans of a header section (a name, a line) this beats a SIMD search, whose
/// set-up costs more than the scan.
#[inline]
fn swar_find(hay: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for c in chunks.by_ref() {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ pattern;
        // The lowest set bit marks the first zero byte exactly (borrows only run upwards).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| at + p)
}

/// Handles a completed header field; only Content-Length matters to framing.
fn finish_field(
    buf: &[u8],
    e: &Entry,
    mode: Mode,
    cl: &mut Option<u32>,
    issue: &mut ClIssue,
) -> Result<(), ParseError> {
    if e.kind != HeaderName::ContentLength {
        return Ok(());
    }
    let offset = e.value.start as usize;
    let v = parse_digits(&buf[e.value.range()]).filter(|&n| u32::try_from(n).is_ok());
    match (v, *cl) {
        (None, _) => {
            if mode == Mode::StreamHead {
                return Err(ParseError::ContentLength {
                    offset,
                    reason: "not a non-negative integer",
                });
            }
            if *issue == ClIssue::None {
                *issue = ClIssue::Invalid {
                    offset: offset as u32,
                };
            }
        }
        (Some(n), Some(prev)) if prev != n as u32 => {
            if mode == Mode::StreamHead {
                return Err(ParseError::ContentLength {
                    offset,
                    reason: "conflicting values",
                });
            }
            if *issue == ClIssue::None {
                *issue = ClIssue::Conflict {
                    offset: offset as u32,
                };
            }
        }
        (Some(n), _) => *cl = Some(n as u32),
    }
    Ok(())
}

fn start_line(buf: &[u8], from: usize, end: usize) -> Result<Start, ParseError> {
    let line = &buf[from..end];
    let err = |at: usize, reason| {
        Err(ParseError::StartLine {
            offset: from + at,
            reason,
        })
    };
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let Some(sp) = memchr(b' ', line) else {
            return err(line.len(), "no status code");
        };
        if !is_version(&line[..sp]) {
            return err(0, "bad SIP-Version");
        }
        let code = &line[sp + 1..];
        let digits = code.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits != 3 {
            return err(sp + 1, "status code is not three digits");
        }
        let status = u16::from(code[0] - b'0') * 100
            + u16::from(code[1] - b'0') * 10
            + u16::from(code[2] - b'0');
        let after = sp + 4;
        let reason_start = match line.get(after) {
            None => after,
            Some(b' ') => after + 1,
            Some(_) => return err(after, "no SP after the status code"),
        };
        return Ok(Start::Response {
            version: Span::new(from, from + sp),
            status,
            reason: Span::new(from + reason_start, end),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let Some(sp1) = memchr(b' ', line) else {
        return err(line.len(), "no SP after the method");
    };
    if !all_token(&line[..sp1]) {
        return err(0, "method is not a token");
    }
    let mut irregular = false;
    let mut tail = line.len();
    while tail > sp1 && line[tail - 1] == b' ' {
        tail -= 1;
        irregular = true;
    }
    let Some(sp2) = memchr::memrchr(b' ', &line[..tail]).filter(|&p| p > sp1) else {
        return err(sp1, "no SIP-Version");
    };
    if !is_version(&line[sp2 + 1..tail]) {
        return err(sp2 + 1, "bad SIP-Version");
    }
    let mut us = sp1 + 1;
    let mut ue = sp2;
    while us < ue && line[us] == b' ' {
        us += 1;
        irregular = true;
    }
    while ue > us && line[ue - 1] == b' ' {
        ue -= 1;
        irregular = true;
    }
    if us == ue {
        return err(sp1 + 1, "empty Request-URI");
    }
    Ok(Start::Request {
        method: Span::new(from, from + sp1),
        uri: Span::new(from + us, from + ue),
        version: Span::new(from + sp2 + 1, from + tail),
        irregular,
    })
}

/// `SIP/` 1*DIGIT `.` 1*DIGIT (any version frames; `validate()` wants 2.0).
fn is_version(v: &[u8]) -> bool {
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let rest = &v[4..];
    let Some(dot) = memchr(b'.', rest) else {
        return false;
    };
    dot > 0
        && dot + 1 < rest.len()
        && rest[..dot].iter().all(u8::is_ascii_digit)
        && rest[dot + 1..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_find_matches_a_plain_search() {
        for needle in [b'\n', b':', 0u8, 0xff] {
            for len in 0..40 {
                for at in 0..len {
                    let mut hay: Vec<u8> =
                        (0..len).map(|i| (i as u8).wrapping_mul(37) | 1).collect();
                    for b in &mut hay {
                        if *b == needle {
                            *b ^= 0x40;
                        }
                    }
                    hay[at] = needle;
                    assert_eq!(swar_find(&hay, needle), Some(at), "{needle} {len} {at}");
                }
            }
        }
    }

    #[test]
    fn find_colon_matches_a_plain_search() {
        let mut line = [b'a'; 40];
        assert_eq!(find_colon(&line), None);
        for at in 0..40 {
            line = [b'a'; 40];
            line[at] = b':';
            if at + 3 < 40 {
                line[at + 3] = b':';
            }
            // Bytes that trip naive zero-byte tests: 0x3b (':' + 1) and 0xba (':' | 0x80).
            if at > 0 {
                line[at - 1] = 0x3b;
            }
            line[39] = 0xba;
            for len in 0..=40 {
                assert_eq!(
                    find_colon(&line[..len]),
                    line[..len].iter().position(|&b| b == b':'),
                    "{at} {len}"
                );
            }
        }
    }

    /// RFC 5626 §4.4.1 keep-alives (CRLFCRLF ping, CRLF pong) are not messages; RFC 3261
    /// §7.5 CRLFs before a start line are skipped.
    #[test]
    fn crlf_only_is_a_keep_alive() {
        let l = &Limits::DEFAULT;
        assert_eq!(frame(b"", l, Mode::Datagram), Err(ParseError::Empty));
        for ka in [&b"\r\n\r\n"[..], b"\r\n", b"\n", b"\r"] {
            assert_eq!(frame(ka, l, Mode::Datagram), Err(ParseError::KeepAlive));
        }
        assert!(frame(b"\r\nOPTIONS sip:a SIP/2.0\r\n\r\n", l, Mode::Datagram).is_ok());
    }
}
