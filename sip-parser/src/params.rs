//! Parameters: `;name=value` lists of header values (with LWS and quoted strings) and of URIs
//! (no LWS, `%HEX` escapes).

use crate::chars::{as_str, quoted_end, skip_ws, token_end};
use crate::error::{PResult, syntax};

/// Header parameters (`*( SEMI generic-param )`), kept as the validated raw slice and
/// iterated on demand, so holding them costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    pub(crate) raw: &'a [u8],
}

/// One parameter: name, and value as written (quoted strings keep their quotes; see
/// [`unquote`](crate::unquote)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name (a token).
    pub name: &'a str,
    /// Value as written, `None` for a flag parameter such as `lr` or `rport`.
    pub value: Option<&'a [u8]>,
}

impl<'a> Params<'a> {
    /// The raw text, starting at the first `;` (empty when there are none).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    /// Iterates the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { s: self.raw, i: 0 }
    }
    /// Looks a parameter up by name (case-insensitive): `None` when absent, `Some(None)` for
    /// a flag, `Some(Some(value))` otherwise.
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        let mut it = self.iter();
        while let Some((n, v)) = it.next_raw() {
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                return Some(v);
            }
        }
        None
    }
    /// The value of `name` as text with quotes removed (escapes kept), when present and valued.
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.get(name)
            .flatten()
            .and_then(|v| as_str(crate::unquote(v)))
    }
}

impl<'a> IntoIterator for &Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        let (name, value) = self.next_raw()?;
        Some(Param {
            name: as_str(name)?,
            value,
        })
    }
}

impl<'a> ParamIter<'a> {
    /// Next `(name, value)` without converting the name to `&str` (lookups compare bytes).
    pub(crate) fn next_raw(&mut self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        // The slice was validated by `parse_params`, so this walk cannot fail.
        let s = self.s;
        let mut i = skip_ws(s, self.i);
        if i >= s.len() || s[i] != b';' {
            return None;
        }
        i = skip_ws(s, i + 1);
        let ne = token_end(s, i);
        let name = &s[i..ne];
        i = skip_ws(s, ne);
        let mut value = None;
        if i < s.len() && s[i] == b'=' {
            i = skip_ws(s, i + 1);
            let ve = value_end(s, i).unwrap_or(s.len());
            value = Some(&s[i..ve]);
            i = ve;
        }
        self.i = i;
        Some((name, value))
    }
}

fn value_end(s: &[u8], i: usize) -> Option<usize> {
    match s.get(i)? {
        b'"' => quoted_end(s, i),
        b'[' => crate::chars::find(b']', &s[i..]).map(|p| i + p + 1),
        _ => {
            let j = crate::chars::pvalue_end(s, i);
            (j > i).then_some(j)
        }
    }
}

/// Parses `*( SEMI generic-param )` starting at `i` (LWS allowed around `;` and `=`).
/// Returns the params and the index where they stop (first byte that is not part of them,
/// after trailing LWS).
pub(crate) fn parse_params(s: &[u8], start: usize) -> PResult<(Params<'_>, usize)> {
    parse_params_visit(s, start, |_, _| Ok(()))
}

/// [`parse_params`], handing each `(name, value)` to `visit` as it is validated, so callers
/// that want known parameters (Via's branch, a tag) need no second walk.
pub(crate) fn parse_params_visit<'a>(
    s: &'a [u8],
    start: usize,
    mut visit: impl FnMut(&'a [u8], Option<&'a [u8]>) -> PResult<()>,
) -> PResult<(Params<'a>, usize)> {
    let mut i = skip_ws(s, start);
    let raw_start = i;
    let mut raw_end = i;
    while i < s.len() && s[i] == b';' {
        i = skip_ws(s, i + 1);
        let ne = token_end(s, i);
        if ne == i {
            return syntax(i, "parameter name");
        }
        let name = &s[i..ne];
        i = skip_ws(s, ne);
        raw_end = ne;
        let mut value = None;
        if i < s.len() && s[i] == b'=' {
            let vs = skip_ws(s, i + 1);
            let Some(ve) = value_end(s, vs) else {
                return syntax(vs, "parameter value");
            };
            value = Some(&s[vs..ve]);
            raw_end = ve;
            i = skip_ws(s, ve);
        }
        visit(name, value).map_err(|(_, k)| (raw_end, k))?;
    }
    let raw = if raw_end > raw_start {
        &s[raw_start..raw_end]
    } else {
        &[][..]
    };
    Ok((Params { raw }, i))
}

/// URI parameters (`;name=value` with no LWS); `%HEX` escapes kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UriParams<'a> {
    raw: &'a [u8],
}

/// One URI parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriParam<'a> {
    /// Name as written (may hold escapes).
    pub name: &'a [u8],
    /// Value as written, `None` for a flag such as `lr`.
    pub value: Option<&'a [u8]>,
}

impl<'a> UriParams<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }
    /// Raw text, starting at the first `;`.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    /// Iterates the parameters.
    pub fn iter(&self) -> impl Iterator<Item = UriParam<'a>> + 'a {
        let raw = self.raw;
        raw.split(|&b| b == b';')
            .skip(1)
            .map(|p| match crate::chars::find(b'=', p) {
                Some(eq) => UriParam {
                    name: &p[..eq],
                    value: Some(&p[eq + 1..]),
                },
                None => UriParam {
                    name: p,
                    value: None,
                },
            })
    }
    /// Looks a parameter up by name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|p| p.value)
    }
    /// True when the flag or parameter `name` is present (e.g. `lr`).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_with_lws_and_quotes() {
        let s = b" ;   tag    = 1918181833n ; x=\"a;b\" ;lr;received=[2001:db8::9:255] ,next";
        let (p, end) = parse_params(s, 0).unwrap();
        assert_eq!(&s[end..], b",next");
        let v: alloc::vec::Vec<_> = p.iter().collect();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].name, "tag");
        assert_eq!(v[0].value, Some(&b"1918181833n"[..]));
        assert_eq!(p.get("X"), Some(Some(&b"\"a;b\""[..])));
        assert_eq!(p.get_str("x"), Some("a;b"));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("received"), Some(Some(&b"[2001:db8::9:255]"[..])));
        assert!(parse_params(b";;", 0).is_err());
        assert!(parse_params(b";a=", 0).is_err());
        assert!(parse_params(b";a=\"unterminated", 0).is_err());
    }

    #[test]
    fn uri_params() {
        let p = UriParams::new(b";lr;transport=tcp;n%61me=v%61lue%25%34%31");
        assert!(p.has("LR"));
        assert_eq!(p.get("transport"), Some(Some(&b"tcp"[..])));
        assert_eq!(p.get("n%61me"), Some(Some(&b"v%61lue%25%34%31"[..])));
        assert_eq!(p.iter().count(), 3);
    }
}
