#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod auth;
mod chars;
mod edit;
mod error;
mod frame;
mod headers;
mod limits;
mod list;
mod message;
mod name;
mod name_addr;
mod params;
mod response;
mod stream;
mod transport;
mod uri;
mod validate;
mod via;

pub use auth::{AuthParam, AuthScanner, AuthValue};
pub use edit::{Editor, MaxForwardsError};
pub use error::{FieldError, FieldErrorKind, ParseError, ValidationError};
pub use headers::{CSeq, MediaType, TokenParams};
pub use limits::Limits;
pub use message::{Header, Kind, Message};
pub use name::HeaderName;
pub use name_addr::{Contact, NameAddr};
pub use params::{Param, ParamIter, Params, UriParam, UriParams};
pub use response::ResponseBuilder;
pub use stream::{StreamDecoder, StreamError, StreamItem};
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
