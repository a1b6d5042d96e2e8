//! Explicit, configurable bounds on everything the parser accepts from the network.

/// Bounds applied while framing and reading a message.
///
/// Every quantity an attacker controls has a limit here; the defaults suit a proxy on the
/// public Internet (a UDP datagram is at most 65 535 bytes anyway).
///
/// ```
/// let limits = sip_parser::Limits { max_headers: 64, ..sip_parser::Limits::default() };
/// assert_eq!(limits.max_message_size, 65_535);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (start line + headers + body) in bytes.
    pub max_message_size: usize,
    /// Most header fields (lines, not list entries).
    pub max_headers: usize,
    /// Longest header field in bytes, folded continuation lines included.
    pub max_header_line: usize,
    /// Most continuation (folded) lines in one header field.
    pub max_fold_lines: usize,
    /// Most entries a list header iterator (Via, Route, Record-Route, Contact, Path, …)
    /// yields in one message before it reports an error.
    pub max_list_entries: usize,
}

impl Limits {
    /// The defaults: 65 535-byte messages, 128 header fields, 8 KiB per header field,
    /// 16 fold lines per field, 128 entries per list header.
    pub const DEFAULT: Self = Self {
        max_message_size: 65_535,
        max_headers: 128,
        max_header_line: 8 * 1024,
        max_fold_lines: 16,
        max_list_entries: 128,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
