//! Error types.

/// Why a Digest header value could not be parsed. Offsets are byte offsets into the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The value is longer than [`crate::header::MAX_HEADER_LEN`].
    #[error("header value too long")]
    TooLong,
    /// The value is not UTF-8.
    #[error("header value is not UTF-8 (at byte {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// Something else was found where `what` was expected.
    #[error("expected {what} at byte {offset}")]
    Expected {
        /// What was expected.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// A quoted-string is not closed.
    #[error("unterminated quoted string starting at byte {offset}")]
    UnterminatedQuote {
        /// Offset of the opening quote.
        offset: usize,
    },
    /// A backslash escape of a character that cannot be escaped.
    #[error("invalid escape at byte {offset}")]
    BadEscape {
        /// Offset of the backslash.
        offset: usize,
    },
    /// A control character inside a quoted string.
    #[error("invalid character at byte {offset}")]
    BadCharacter {
        /// Offset of the character.
        offset: usize,
    },
    /// A parameter appears twice.
    #[error("duplicate parameter at byte {offset}")]
    Duplicate {
        /// Offset of the second occurrence.
        offset: usize,
    },
    /// More than [`crate::header::MAX_PARAMS`] parameters.
    #[error("too many parameters")]
    TooManyParams,
    /// A required parameter is missing.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// `nc` is not 8 hex digits.
    #[error("nc is not 8 hex digits")]
    BadNonceCount,
    /// A `username*` value is not an RFC 8187 ext-value in UTF-8 or ISO-8859-1.
    #[error("invalid username* ext-value at byte {offset}")]
    BadExtValue {
        /// Offset of the value.
        offset: usize,
    },
}

/// A malformed line in an htdigest / plain credentials file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct FileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Client-side failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No challenge could be parsed.
    #[error("no usable Digest challenge: {0}")]
    Parse(ParseError),
    /// No offered challenge uses an algorithm and qop this client supports.
    #[error("no supported algorithm / qop offered")]
    Unsupported,
    /// The server re-challenged a request that carried our credentials, without `stale=true`:
    /// the credentials were rejected; retrying would loop.
    #[error("credentials rejected by the server")]
    Rejected,
    /// No previous challenge to answer pre-emptively.
    #[error("no nonce cached for a pre-emptive authorization")]
    NoNonce,
}
