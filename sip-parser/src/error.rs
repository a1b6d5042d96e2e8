//! Error types: framing errors ([`ParseError`]), header-value errors ([`FieldError`]) and
//! validation failures ([`ValidationError`]), each with the byte offset where it was found.

/// Why a message could not be framed. The offset is from the start of the buffer given to
/// the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The buffer is empty.
    #[error("empty message")]
    Empty,
    /// The buffer holds nothing but CR and LF octets: a keep-alive (RFC 5626 §4.4.1 CRLF
    /// "ping" or "pong", which clients also send over UDP), not a message. Drop it silently;
    /// on a stream, [`StreamDecoder`](crate::StreamDecoder) answers pings itself.
    #[error("keep-alive (CRLF only), not a message")]
    KeepAlive,
    /// The message is larger than [`Limits::max_message_size`](crate::Limits).
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size seen so far.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The start line is malformed.
    #[error("malformed start line at byte {offset}: {reason}")]
    StartLine {
        /// Where the problem is.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A header line is malformed (no colon, bad name, continuation without a header).
    #[error("malformed header line at byte {offset}: {reason}")]
    HeaderLine {
        /// Start of the offending line.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More header fields than [`Limits::max_headers`](crate::Limits).
    #[error("more than {limit} header fields (at byte {offset})")]
    TooManyHeaders {
        /// Start of the first header field over the limit.
        offset: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A header field is longer than [`Limits::max_header_line`](crate::Limits), or folds
    /// over more lines than [`Limits::max_fold_lines`](crate::Limits).
    #[error("header field at byte {offset} exceeds the {what} limit of {limit}")]
    HeaderTooLong {
        /// Start of the header field.
        offset: usize,
        /// Which limit (`"length"` or `"fold lines"`).
        what: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The header section has no terminating empty line.
    #[error("header section not terminated by an empty line (input ends at byte {offset})")]
    UnterminatedHeaders {
        /// End of the input.
        offset: usize,
    },
    /// On a stream transport every message must carry Content-Length (RFC 3261 §18.3).
    #[error("stream message without Content-Length (header section ends at byte {offset})")]
    MissingContentLength {
        /// End of the header section.
        offset: usize,
    },
    /// Content-Length is not a non-negative integer, exceeds the message size limit, or two
    /// Content-Length fields disagree: on a stream the framing is lost.
    #[error("unusable Content-Length at byte {offset}: {reason}")]
    ContentLength {
        /// Start of the Content-Length value.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl ParseError {
    /// Byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            Self::Empty | Self::KeepAlive | Self::TooLarge { .. } => None,
            Self::StartLine { offset, .. }
            | Self::HeaderLine { offset, .. }
            | Self::TooManyHeaders { offset, .. }
            | Self::HeaderTooLong { offset, .. }
            | Self::UnterminatedHeaders { offset }
            | Self::MissingContentLength { offset }
            | Self::ContentLength { offset, .. } => Some(offset),
        }
    }

    /// The status a server should answer when it can still build a response (it rarely can:
    /// an unframed message has no reliable Via): `513` for oversize messages, `400` for a
    /// malformed one, and `None` for an empty buffer or a keep-alive, which get no answer.
    ///
    /// ```
    /// use sip_parser::{Message, ParseError};
    /// let ping = Message::parse(bytes::Bytes::from_static(b"\r\n\r\n")).unwrap_err();
    /// assert_eq!(ping, ParseError::KeepAlive);
    /// assert_eq!(ping.status(), None); // drop it silently
    /// let junk = Message::parse(bytes::Bytes::from_static(b"garbage\r\n\r\n")).unwrap_err();
    /// assert_eq!(junk.status(), Some(400));
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Empty | Self::KeepAlive => None,
            Self::TooLarge { .. } => Some(513),
            _ => Some(400),
        }
    }
}

/// What is wrong with a header value (or the Request-URI), found by a typed accessor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldErrorKind {
    /// The header is required here but absent.
    Missing,
    /// The value (or a list entry) is empty.
    Empty,
    /// The value does not match the grammar; the text says which part.
    Syntax(&'static str),
    /// A number is out of its allowed range.
    OutOfRange,
    /// More list entries than [`Limits::max_list_entries`](crate::Limits).
    TooManyEntries,
}

impl core::fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::Empty => f.write_str("empty value"),
            Self::Syntax(what) => write!(f, "malformed {what}"),
            Self::OutOfRange => f.write_str("number out of range"),
            Self::TooManyEntries => f.write_str("too many list entries"),
        }
    }
}

/// A header value that a typed accessor could not interpret. The message itself is still
/// framed and can be forwarded byte-exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{header} header: {kind} at byte {offset}")]
pub struct FieldError {
    /// Canonical name of the header (`"Request-URI"` for the start line's URI).
    pub header: &'static str,
    /// Byte offset in the message buffer.
    pub offset: usize,
    /// What is wrong.
    pub kind: FieldErrorKind,
}

/// Internal result of the value parsers: an offset relative to the slice they were given.
pub(crate) type PResult<T> = Result<T, (usize, FieldErrorKind)>;

pub(crate) fn syntax<T>(at: usize, what: &'static str) -> PResult<T> {
    Err((at, FieldErrorKind::Syntax(what)))
}

/// A message that frames but fails the checks a proxy makes before processing it
/// (RFC 3261 §16.3, §8.2); [`status`](Self::status) and
/// [`reason_phrase`](Self::reason_phrase) are what to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// SIP-Version other than `SIP/2.0`.
    #[error("unsupported SIP version at byte {offset}")]
    Version {
        /// Start of the version token.
        offset: usize,
    },
    /// The request line has extra white space, or the Request-URI holds LWS or `<>`.
    #[error("malformed Request-Line at byte {offset}: {reason}")]
    RequestLine {
        /// Where the problem is.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A header (or the Request-URI) is missing, malformed or out of range.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A single-valued header appears more than once.
    #[error("{header} header repeated at byte {offset}")]
    Repeated {
        /// Canonical header name.
        header: &'static str,
        /// Start of the second occurrence.
        offset: usize,
    },
    /// CSeq method differs from the request method.
    #[error("CSeq method does not match the request method (byte {offset})")]
    CSeqMethodMismatch {
        /// Start of the CSeq value.
        offset: usize,
    },
    /// The Content-Length value cannot frame the body (datagram only: on a stream this is a
    /// [`ParseError`]).
    #[error("bad Content-Length at byte {offset}: {reason}")]
    ContentLength {
        /// Start of the Content-Length value.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl ValidationError {
    /// The status code to answer with (400, or 505 for the version).
    pub fn status(&self) -> u16 {
        match self {
            Self::Version { .. } => 505,
            _ => 400,
        }
    }

    /// A reason phrase naming what failed, for the response's status line.
    pub fn reason_phrase(&self) -> &'static str {
        match self {
            Self::Version { .. } => "Version Not Supported",
            Self::RequestLine { .. } => "Bad Request-Line",
            Self::CSeqMethodMismatch { .. } => "CSeq Method Mismatch",
            Self::ContentLength { .. } => "Bad Content-Length",
            Self::Repeated { header, .. } => repeated_phrase(header),
            Self::Field(f) => field_phrase(f),
        }
    }

    /// Byte offset of the problem.
    pub fn offset(&self) -> usize {
        match *self {
            Self::Version { offset }
            | Self::RequestLine { offset, .. }
            | Self::Repeated { offset, .. }
            | Self::CSeqMethodMismatch { offset }
            | Self::ContentLength { offset, .. } => offset,
            Self::Field(f) => f.offset,
        }
    }
}

fn field_phrase(f: &FieldError) -> &'static str {
    let missing = matches!(f.kind, FieldErrorKind::Missing);
    match (f.header, missing) {
        ("To", true) => "Missing To",
        ("From", true) => "Missing From",
        ("Call-ID", true) => "Missing Call-ID",
        ("CSeq", true) => "Missing CSeq",
        ("Via", true) => "Missing Via",
        ("To", false) => "Bad To",
        ("From", false) => "Bad From",
        ("Call-ID", false) => "Bad Call-ID",
        ("CSeq", false) => "Bad CSeq",
        ("Via", false) => "Bad Via",
        ("Max-Forwards", _) => "Bad Max-Forwards",
        ("Contact", _) => "Bad Contact",
        ("Request-URI", _) => "Bad Request-URI",
        ("Route", _) => "Bad Route",
        ("Record-Route", _) => "Bad Record-Route",
        ("Expires", _) => "Bad Expires",
        ("Content-Type", _) => "Bad Content-Type",
        ("Date", _) => "Bad Date",
        _ => "Bad Header",
    }
}

fn repeated_phrase(header: &str) -> &'static str {
    match header {
        "To" => "Repeated To",
        "From" => "Repeated From",
        "Call-ID" => "Repeated Call-ID",
        "CSeq" => "Repeated CSeq",
        "Max-Forwards" => "Repeated Max-Forwards",
        "Content-Length" => "Repeated Content-Length",
        _ => "Repeated Header",
    }
}
