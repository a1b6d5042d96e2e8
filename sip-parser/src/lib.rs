#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// The `bytes` crate, whose [`Bytes`](bytes::Bytes) [`Message::parse`] takes and the
/// builders return: use it from here to stay on the same version.
pub use bytes;

mod aor;
mod auth;
mod chars;
mod date;
mod edit;
mod error;
mod frame;
mod headers;
mod ident;
mod index;
mod limits;
mod list;
mod loop_detect;
mod message;
mod name;
mod name_addr;
mod params;
mod random;
mod request;
mod response;
mod status;
mod stream;
mod target;
mod transport;
mod uri;
mod uri_eq;
mod validate;
mod via;
mod via_stamp;

pub use aor::{Aor, NotSipUri, UserCase};
pub use auth::{AuthParam, AuthScanner, AuthValue};
pub use date::SipDate;
pub use edit::{Editor, MaxForwardsError};
pub use error::{FieldError, FieldErrorKind, ParseError, ValidationError};
pub use headers::{CSeq, MediaType, TokenParams};
pub use ident::{Ident, MAGIC_COOKIE};
pub use limits::Limits;
pub use loop_detect::LoopHash;
pub use message::{Header, Kind, Message};
pub use name::HeaderName;
pub use name_addr::{Contact, NameAddr};
pub use params::{Param, ParamIter, Params, UriParam, UriParams};
pub use random::Random;
#[cfg(feature = "std")]
pub use random::SystemRandom;
pub use request::RequestBuilder;
pub use response::ResponseBuilder;
pub use status::reason_phrase;
pub use stream::{StreamDecoder, StreamError, StreamItem};
pub use target::ResponseTarget;
pub use transport::{Transport, UnknownTransport};
pub use uri::{HostKind, Scheme, Uri, host_kind};
pub use via::Via;

/// Removes the surrounding double quotes of a quoted-string value, if any (escapes kept).
///
/// ```
/// assert_eq!(sip_parser::unquote(br#""a\"b""#), br#"a\"b"#);
/// assert_eq!(sip_parser::unquote(b"token"), b"token");
/// ```
pub fn unquote(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}
