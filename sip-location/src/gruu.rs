//! RFC 5627 public GRUUs: the registrar hands out `AOR;gr=<instance URN>` for each contact
//! that carries a `+sip.instance`, and the proxy routes a request to such a URI to the
//! contacts of that instance only.

use alloc::string::String;

use sip_parser::Uri;

/// The instance URN of a `+sip.instance` value: `<urn:uuid:…>` without the angle brackets
/// (RFC 5626 §4.1 puts the URN in `<>` inside the quoted value).
pub fn instance_urn(instance: &str) -> &str {
    instance
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(instance)
}

/// The public GRUU of an instance of `aor` (RFC 5627 §3.1: the AOR with a `gr` URI
/// parameter whose value is the instance ID).
///
/// ```
/// let gruu = sip_location::gruu::pub_gruu("sip:alice@example.com", "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>");
/// assert_eq!(gruu, "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
/// ```
pub fn pub_gruu(aor: &str, instance: &str) -> String {
    let urn = instance_urn(instance);
    let mut s = String::with_capacity(aor.len() + 4 + urn.len());
    s.push_str(aor);
    s.push_str(";gr=");
    s.push_str(urn);
    s
}

/// The `gr` parameter of a request URI that is a GRUU (`None` when it is not one, or when
/// the parameter has no value: a temporary GRUU, which this crate does not issue).
pub fn gruu_instance<'a>(uri: &Uri<'a>) -> Option<&'a str> {
    uri.params
        .get("gr")
        .flatten()
        .and_then(|v| core::str::from_utf8(v).ok())
}

/// True when a stored `+sip.instance` value names the instance of a `gr` parameter (URNs
/// compared ASCII case-insensitively, as UUID URNs are, RFC 4122 §3).
pub fn instance_matches(instance: &str, gr: &str) -> bool {
    instance_urn(instance).eq_ignore_ascii_case(gr)
}
