//! Error types.

/// Why a Digest header value could not be read. Offsets are byte offsets into the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestHeaderError {
    /// The value breaks the auth-param grammar (see `sip_parser::AuthScanner`).
    #[error("malformed {what} at byte {offset}")]
    Syntax {
        /// Where.
        offset: usize,
        /// What was expected or is wrong.
        what: &'static str,
    },
    /// The scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A parameter appears twice (or both `username` and `username*`).
    #[error("duplicate parameter at byte {offset}")]
    Duplicate {
        /// Offset of the second occurrence's name.
        offset: usize,
    },
    /// A required parameter is missing.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// `nc` is not 8 hex digits.
    #[error("nc at byte {offset} is not 8 hex digits")]
    BadNonceCount {
        /// Offset of the value.
        offset: usize,
    },
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
    Parse(DigestHeaderError),
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
