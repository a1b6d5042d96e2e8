//! Splitting comma-separated header values, respecting quoted strings and `<…>`.

use crate::chars::is_ws;

/// Iterator over the comma-separated items of one header value: yields
/// `(offset_in_value, item)` with surrounding LWS trimmed. Empty items (`a,,b`) are yielded
/// as empty slices so that typed parsers can reject them.
#[derive(Debug, Clone)]
pub(crate) struct Split<'a> {
    s: &'a [u8],
    i: usize,
    done: bool,
}

impl<'a> Split<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Self {
            s,
            i: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let s = self.s;
        let start = self.i;
        let mut j = start;
        let mut in_angle = false;
        while j < s.len() {
            if in_angle {
                j = crate::chars::find(b'>', &s[j..]).map_or(s.len(), |p| j + p + 1);
                in_angle = false;
                continue;
            }
            let rest = &s[j..];
            let found = if rest.len() < 32 {
                rest.iter().position(|&c| matches!(c, b'"' | b'<' | b','))
            } else {
                memchr::memchr3(b'"', b'<', b',', rest)
            };
            let Some(p) = found else {
                j = s.len();
                break;
            };
            j += p;
            match s[j] {
                b'"' => j = crate::chars::quoted_end(s, j).unwrap_or(s.len()),
                b'<' => {
                    in_angle = true;
                    j += 1;
                }
                _ => break,
            }
        }
        let (mut a, mut b) = (start, j.min(s.len()));
        if j >= s.len() {
            self.done = true;
        } else {
            self.i = j + 1;
        }
        while a < b && is_ws(s[a]) {
            a += 1;
        }
        while b > a && is_ws(s[b - 1]) {
            b -= 1;
        }
        Some((a, &s[a..b]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let v: alloc::vec::Vec<_> = Split::new(br#""a, b" <sip:x,y@h>;p="1,2" , <sip:z> ,,"#)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(
            v,
            [&br#""a, b" <sip:x,y@h>;p="1,2""#[..], b"<sip:z>", b"", b""]
        );
        assert_eq!(Split::new(b"").count(), 1);
        assert_eq!(Split::new(b"\"unterminated, x").count(), 1);
    }
}
