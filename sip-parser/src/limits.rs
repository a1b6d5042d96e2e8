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

    /// For re-reading a message this program built or edited itself: a response built from a
    /// request, a request with a proxy's Via, Record-Route and Path added. What was received
    /// passed the receive limits and an edit adds a bounded amount, so a message that sat at
    /// those limits may now be past them; these bounds only stop runaway growth and never
    /// refuse what an edit of a message within [`Limits::DEFAULT`] produced.
    ///
    /// ```
    /// use sip_parser::{Limits, Message};
    /// let mut raw = String::from("OPTIONS sip:example.com SIP/2.0\r\n");
    /// for i in 0..128 {
    ///     raw.push_str(&format!("X-Extra: {i}\r\n"));
    /// }
    /// raw.push_str("\r\n");
    /// let built = bytes::Bytes::from(raw);
    /// assert!(Message::parse(built.clone()).is_ok());
    /// // The same with one header more, as a proxy's edit leaves it:
    /// let m = Message::parse(built).unwrap();
    /// let mut e = m.edit();
    /// e.prepend_header("Path", "<sip:127.0.0.1;lr>");
    /// assert!(Message::parse(e.to_bytes()).is_err());
    /// assert!(Message::parse_with(e.to_bytes(), &Limits::BUILT).is_ok());
    /// ```
    pub const BUILT: Self = Self {
        max_message_size: 1 << 20,
        max_headers: 1024,
        max_header_line: 64 * 1024,
        max_fold_lines: 16,
        max_list_entries: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
