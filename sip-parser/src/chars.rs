//! Character classes of the RFC 3261 grammar, as one lookup table, and small scanning helpers.

const TOKEN: u16 = 1;
const WORD: u16 = 2;
const WS: u16 = 4;
const DIGIT: u16 = 8;
const HEX: u16 = 16;
/// `unreserved` (alphanum / mark) of RFC 3261 §25.1.
const UNRESERVED: u16 = 32;
/// Characters allowed unescaped in a SIP URI user part besides `unreserved`.
const USER_EXTRA: u16 = 64;
/// Characters allowed in a host name, IPv4 or the inside of an IPv6 reference.
const HOST: u16 = 128;
/// Printable ASCII allowed (possibly escaped-as-is) in a URI: no SP, CTL, DEL, non-ASCII, or
/// `< > " \ ^ ` { } |`.
const URIC: u16 = 256;
/// Characters of URI parameters (`paramchar` plus `;` and `=`).
const PARAMC: u16 = 512;
/// Characters of an unquoted header-parameter value: token, or host (`:` `[` `]`).
const PVAL: u16 = 1024;

const fn build() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut f = 0;
        let alpha = c.is_ascii_alphabetic();
        let digit = c.is_ascii_digit();
        if alpha || digit {
            f |= TOKEN | WORD | UNRESERVED | HOST;
        }
        if digit {
            f |= DIGIT;
        }
        if c.is_ascii_hexdigit() {
            f |= HEX;
        }
        // token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
        if matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        ) {
            f |= TOKEN | WORD;
        }
        // word adds ( ) < > : \ DQUOTE / [ ] ? { }
        if matches!(
            c,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        ) {
            f |= WORD;
        }
        // mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
        if matches!(
            c,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        ) {
            f |= UNRESERVED;
        }
        // user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
        if matches!(c, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            f |= USER_EXTRA;
        }
        if matches!(c, b'-' | b'.' | b'_') {
            f |= HOST;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            f |= WS;
        }
        if f & TOKEN != 0 || matches!(c, b':' | b'[' | b']') {
            f |= PVAL;
        }
        if c > 0x20
            && c < 0x7f
            && !matches!(
                c,
                b'<' | b'>' | b'"' | b'\\' | b'^' | b'`' | b'{' | b'}' | b'|'
            )
        {
            f |= URIC;
        }
        if alpha
            || digit
            || matches!(
                c,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'%'
                    | b'='
                    | b'['
                    | b']'
                    | b'/'
                    | b':'
                    | b'&'
                    | b'+'
                    | b'$'
                    | b';'
            )
        {
            f |= PARAMC;
        }
        t[i] = f;
        i += 1;
    }
    t
}

static TABLE: [u16; 256] = build();

/// Index just past the unquoted parameter value starting at `i`.
#[inline]
pub(crate) fn pvalue_end(s: &[u8], i: usize) -> usize {
    run_end(s, i, PVAL)
}

/// Allowed in a URI.
#[inline]
pub(crate) fn is_uric(b: u8) -> bool {
    TABLE[b as usize] & URIC != 0
}
/// Allowed in a URI's parameter section.
#[inline]
pub(crate) fn is_paramc(b: u8) -> bool {
    TABLE[b as usize] & PARAMC != 0
}

/// `token` character.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TABLE[b as usize] & TOKEN != 0
}
/// `word` character (Call-ID).
#[inline]
pub(crate) fn is_word(b: u8) -> bool {
    TABLE[b as usize] & WORD != 0
}
/// Linear white space inside a header value (SP, HTAB, and the CR LF of a fold).
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    TABLE[b as usize] & WS != 0
}
/// Hex digit.
#[inline]
pub(crate) fn is_hex(b: u8) -> bool {
    TABLE[b as usize] & HEX != 0
}
/// `unreserved`.
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    TABLE[b as usize] & UNRESERVED != 0
}
/// Characters of a SIP URI user part (before escapes are checked).
#[inline]
pub(crate) fn is_user(b: u8) -> bool {
    TABLE[b as usize] & (UNRESERVED | USER_EXTRA) != 0 || b == b'%'
}

/// True when every byte is a token character and there is at least one.
pub(crate) fn all_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// Skips linear white space (folds included) from `i`.
#[inline]
pub(crate) fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

/// Trims linear white space on both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = skip_ws(s, 0);
    let mut end = s.len();
    while end > start && is_ws(s[end - 1]) {
        end -= 1;
    }
    &s[start..end]
}

/// Index just past the token starting at `i` (== `i` when there is none).
#[inline]
pub(crate) fn token_end(s: &[u8], i: usize) -> usize {
    run_end(s, i, TOKEN)
}

/// Index just past the host name / IPv4 address starting at `i` (alnum, `-`, `.`, `_`).
#[inline]
pub(crate) fn hostname_end(s: &[u8], i: usize) -> usize {
    run_end(s, i, HOST)
}

/// Index of the first byte at or after `i` whose class lacks `flag`; four bytes per loop
/// turn, since these runs (tokens, hosts, parameter values) are what header parsing spends
/// its time on.
#[inline]
fn run_end(s: &[u8], mut i: usize, flag: u16) -> usize {
    let has = |b: u8| TABLE[b as usize] & flag != 0;
    while let Some(c) = s.get(i..i + 4) {
        if !has(c[0]) {
            return i;
        }
        if !has(c[1]) {
            return i + 1;
        }
        if !has(c[2]) {
            return i + 2;
        }
        if !has(c[3]) {
            return i + 3;
        }
        i += 4;
    }
    while i < s.len() && has(s[i]) {
        i += 1;
    }
    i
}

/// Given `s[i] == b'"'`, returns the index just past the closing quote, honouring
/// `quoted-pair` escapes; `None` when the string is not terminated.
pub(crate) fn quoted_end(s: &[u8], i: usize) -> Option<usize> {
    debug_assert_eq!(s.get(i), Some(&b'"'));
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Bytes as `&str` when they are valid UTF-8 (always true for the token-like slices the
/// parsers hand out; they were checked byte by byte).
#[inline]
pub(crate) fn as_str(s: &[u8]) -> Option<&str> {
    core::str::from_utf8(s).ok()
}

/// A method token as `&str`: the RFC 3261 / common extension methods map to static strings
/// with no UTF-8 check; others are converted.
pub(crate) fn method_str(m: &[u8]) -> Option<&str> {
    Some(match m {
        b"INVITE" => "INVITE",
        b"ACK" => "ACK",
        b"BYE" => "BYE",
        b"CANCEL" => "CANCEL",
        b"REGISTER" => "REGISTER",
        b"OPTIONS" => "OPTIONS",
        b"SUBSCRIBE" => "SUBSCRIBE",
        b"NOTIFY" => "NOTIFY",
        b"PRACK" => "PRACK",
        b"UPDATE" => "UPDATE",
        b"INFO" => "INFO",
        b"MESSAGE" => "MESSAGE",
        b"REFER" => "REFER",
        b"PUBLISH" => "PUBLISH",
        other => return as_str(other),
    })
}

/// Writes `n` in decimal at the end of `buf` and returns the digits.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Parses a run of ASCII digits into `u64`, saturating at `u64::MAX`; `None` when `s` is empty
/// or holds a non-digit.
pub(crate) fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(v)
}

/// First `b` in `s`: a plain loop for the short slices header values are made of (memchr's
/// set-up costs more than it saves below a few dozen bytes), memchr beyond.
#[inline]
pub(crate) fn find(b: u8, s: &[u8]) -> Option<usize> {
    if s.len() < 32 {
        s.iter().position(|&c| c == b)
    } else {
        memchr::memchr(b, s)
    }
}

/// Checks that every `%` in `s` starts a `%HEX HEX` escape.
pub(crate) fn escapes_ok(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = find(b'%', &s[i..]) {
        let at = i + p;
        match (s.get(at + 1), s.get(at + 2)) {
            (Some(&a), Some(&b)) if is_hex(a) && is_hex(b) => i = at + 3,
            _ => return false,
        }
    }
    true
}

/// Decodes `%HEX` escapes into `out` (bytes kept as they are, `%00` included).
pub(crate) fn unescape_into(s: &[u8], out: &mut alloc::vec::Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(&a), Some(&b)) = (s.get(i + 1), s.get(i + 2)) {
                if is_hex(a) && is_hex(b) {
                    out.push(hex_val(a) << 4 | hex_val(b));
                    i += 3;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(all_token(b"INVITE"));
        assert!(all_token(b"!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!all_token(b"a b"));
        assert!(!all_token(b""));
        assert!(is_word(b'?') && !is_token(b'?'));
    }

    #[test]
    fn escapes() {
        assert!(escapes_ok(b"null-%00-null"));
        assert!(!escapes_ok(b"bad-%0"));
        assert!(!escapes_ok(b"bad-%zz"));
        let mut v = alloc::vec::Vec::new();
        unescape_into(b"a%41%00b%", &mut v);
        assert_eq!(v, b"aA\0b%");
    }

    #[test]
    fn quoted() {
        assert_eq!(quoted_end(br#""a\"b" x"#, 0), Some(6));
        assert_eq!(quoted_end(br#""abc"#, 0), None);
        assert_eq!(trim(b" \r\n a b\t"), b"a b");
        assert_eq!(parse_digits(b"0009"), Some(9));
        assert_eq!(parse_digits(b"36893488147419103232"), Some(u64::MAX));
    }
}
