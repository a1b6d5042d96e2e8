//! Where a request sent within a dialog goes (RFC 3261 §12.2.1.1): its Request-URI and Route
//! header fields, from the dialog's route set and remote target, for loose and strict routers;
//! and [`InDialogRequest`], everything such a request carries, ready for
//! [`RequestBuilder`].

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use sip_parser::{NameAddr, RequestBuilder, Uri};

/// The Request-URI and Route header field values of a request sent within a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI.
    pub request_uri: String,
    /// The Route header field values in order, each a name-addr (`<sip:p1.example.com;lr>`).
    pub routes: Vec<String>,
}

impl Target {
    /// The route set and remote target of RFC 3261 §12.2.1.1 turned into a Request-URI and a
    /// Route header field list.
    ///
    /// * Empty route set: the Request-URI is the remote target, no Route.
    /// * First route URI with `lr` (a loose router): the Request-URI is the remote target and
    ///   the Route header fields are the route set, in order.
    /// * First route URI without `lr` (a strict router): the Request-URI is that URI,
    ///   "stripping any parameters that are not allowed in a Request-URI" (the `method`
    ///   parameter and the headers, §19.1.1), and the Route header fields are the rest of the
    ///   route set followed by the remote target.
    ///
    /// A route entry that does not parse is treated as a loose route (sent as written).
    ///
    /// ```
    /// use sip_dialog::Target;
    /// // The example of RFC 3261 §12.2.1.1.
    /// let set: Vec<Box<str>> = ["<sip:proxy1>", "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>"]
    ///     .into_iter().map(Into::into).collect();
    /// let t = Target::new(&set, "sip:user@remoteua");
    /// assert_eq!(t.request_uri, "sip:proxy1");
    /// assert_eq!(t.routes, ["<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>", "<sip:user@remoteua>"]);
    /// ```
    pub fn new(route_set: &[Box<str>], remote_target: &str) -> Self {
        let Some(first) = route_set.first() else {
            return Target {
                request_uri: remote_target.into(),
                routes: Vec::new(),
            };
        };
        let addr = NameAddr::parse(first.as_bytes()).ok();
        let strict = addr
            .as_ref()
            .and_then(|a| a.uri().ok())
            .filter(|u| !u.params.has("lr"));
        match strict {
            None => Target {
                request_uri: remote_target.into(),
                routes: route_set.iter().map(|r| String::from(&**r)).collect(),
            },
            Some(uri) => {
                let mut routes: Vec<String> =
                    route_set[1..].iter().map(|r| String::from(&**r)).collect();
                routes.push(alloc::format!("<{remote_target}>"));
                Target {
                    request_uri: request_uri_form(&uri),
                    routes,
                }
            }
        }
    }

    /// The URI the request is sent to first (RFC 3261 §8.1.2): the first Route entry's URI
    /// when there is a Route, else the Request-URI. Resolve it per RFC 3263.
    pub fn next_hop(&self) -> &str {
        match self.routes.first() {
            Some(r) => match (r.find('<'), r.find('>')) {
                (Some(a), Some(b)) if a < b => &r[a + 1..b],
                _ => r,
            },
            None => &self.request_uri,
        }
    }
}

/// `uri` as a Request-URI may carry it: without the `method` parameter and the headers
/// (RFC 3261 §19.1.1, the table of where each component is allowed).
pub(crate) fn request_uri_form(uri: &Uri<'_>) -> String {
    let raw = uri.raw;
    // Where a part the parser returned starts in `raw` (its end when it is not inside).
    let offset = |part: &[u8]| {
        (part.as_ptr() as usize)
            .checked_sub(raw.as_ptr() as usize)
            .filter(|&o| o <= raw.len())
            .unwrap_or(raw.len())
    };
    let end = match uri.headers {
        Some(h) => offset(h).saturating_sub(1), // the '?'
        None => raw.len(),
    };
    let params = uri.params.as_bytes();
    let params_start = if params.is_empty() {
        end
    } else {
        offset(params).min(end)
    };
    let mut out = String::with_capacity(end);
    out.push_str(&String::from_utf8_lossy(&raw[..params_start]));
    for p in uri.params.iter() {
        if p.name.eq_ignore_ascii_case(b"method") {
            continue;
        }
        out.push(';');
        out.push_str(&String::from_utf8_lossy(p.name));
        if let Some(v) = p.value {
            out.push('=');
            out.push_str(&String::from_utf8_lossy(v));
        }
    }
    out
}

/// Everything a request sent within a dialog carries that the dialog decides (RFC 3261
/// §12.2.1.1): method, Request-URI and Route, From and To with their tags, Call-ID, CSeq.
/// The caller adds the rest with [`builder`](Self::builder): Via (a new branch), Contact,
/// Max-Forwards, a body.
///
/// ```
/// use sip_dialog::{InDialogRequest, Target};
/// let bye = InDialogRequest {
///     method: "BYE".into(),
///     target: Target { request_uri: "sip:bob@192.0.2.4".into(), routes: vec![] },
///     from: "<sip:alice@atlanta.com>".into(),
///     from_tag: "1928301774".into(),
///     to: "<sip:bob@biloxi.com>".into(),
///     to_tag: "a6c85cf".into(),
///     call_id: "a84b4c76e66710".into(),
///     cseq: 314160,
/// };
/// let mut b = bye.builder();
/// b.via("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds9");
/// let m = sip_parser::Message::parse(b.build()).unwrap();
/// assert!(m.validate().is_ok());
/// assert_eq!(m.cseq().unwrap().seq, 314160);
/// assert_eq!(m.to().unwrap().tag(), Some("a6c85cf"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InDialogRequest {
    /// The method (the CSeq method too).
    pub method: String,
    /// Request-URI and Route header fields.
    pub target: Target,
    /// The From address (`<sip:alice@atlanta.com>`), without its tag.
    pub from: String,
    /// The From tag.
    pub from_tag: String,
    /// The To address, without its tag.
    pub to: String,
    /// The To tag.
    pub to_tag: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq sequence number.
    pub cseq: u32,
}

impl InDialogRequest {
    /// A [`RequestBuilder`] holding the request line, Route, From, To, Call-ID and CSeq; add
    /// the Via (and Contact, body…) and build.
    pub fn builder(&self) -> RequestBuilder<'_> {
        let mut b = RequestBuilder::new(&self.method, &self.target.request_uri);
        for r in &self.target.routes {
            b.route(r.as_str());
        }
        b.from(&self.from, Some(&self.from_tag))
            .to(&self.to, Some(&self.to_tag))
            .call_id(&self.call_id)
            .cseq(self.cseq);
        b
    }

    /// Where to send it first: see [`Target::next_hop`].
    pub fn next_hop(&self) -> &str {
        self.target.next_hop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> Vec<Box<str>> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    #[test]
    fn empty_route_set_targets_the_contact() {
        let t = Target::new(&[], "sip:bob@192.0.2.4");
        assert_eq!(t.request_uri, "sip:bob@192.0.2.4");
        assert!(t.routes.is_empty());
        assert_eq!(t.next_hop(), "sip:bob@192.0.2.4");
    }

    #[test]
    fn loose_route_set_goes_in_route_in_order() {
        let t = Target::new(
            &set(&[
                "<sip:ss1.atlanta.example.com;lr>",
                "<sip:ss2.biloxi.example.com;lr>",
            ]),
            "sip:bob@client.biloxi.example.com",
        );
        assert_eq!(t.request_uri, "sip:bob@client.biloxi.example.com");
        assert_eq!(t.routes.len(), 2);
        assert_eq!(t.next_hop(), "sip:ss1.atlanta.example.com;lr");
    }

    #[test]
    fn strict_router_uri_loses_method_and_headers() {
        let t = Target::new(
            &set(&["<sip:p1.example.com;method=INVITE;transport=tcp?X=1>"]),
            "sip:u@ua",
        );
        assert_eq!(t.request_uri, "sip:p1.example.com;transport=tcp");
        assert_eq!(t.routes, ["<sip:u@ua>"]);
        assert_eq!(t.next_hop(), "sip:u@ua");
    }
}
