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
            match s[j] {
                b'"' if !in_angle => match crate::chars::quoted_end(s, j) {
                    Some(e) => j = e,
                    None => j = s.len(),
                },
                b'<' => {
                    in_angle = true;
                    j += 1;
                }
                b'>' => {
                    in_angle = false;
                    j += 1;
                }
                b',' if !in_angle => break,
                _ => j += 1,
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
