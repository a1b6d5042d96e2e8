//! The benchmark corpus: realistic SIP messages, embedded at compile time from `corpus/*.sip`
//! (CRLF line endings, exact Content-Length).

use bytes::Bytes;

/// One corpus message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Short name, used in benchmark ids (`parse/<name>`).
    pub name: &'static str,
    /// The file it comes from, under `benches/corpus/`.
    pub file: &'static str,
    /// The message bytes, in a refcounted heap buffer as a transport would hand it over.
    pub bytes: Bytes,
}

macro_rules! corpus {
    ($($name:literal => $file:literal,)*) => {
        /// `(name, file, bytes)` of every corpus message, in benchmark order.
        pub const RAW: &[(&str, &str, &[u8])] = &[
            $(($name, $file, include_bytes!(concat!("../corpus/", $file)))),*
        ];
    };
}

corpus! {
    "invite_sdp" => "01_invite_sdp.sip",
    "ringing_180" => "02_ringing_180.sip",
    "ok_200_sdp" => "03_ok_200_sdp.sip",
    "ack" => "04_ack.sip",
    "bye" => "05_bye.sip",
    "register_auth" => "06_register_auth.sip",
    "unauthorized_401" => "07_unauthorized_401.sip",
    "options" => "08_options.sip",
    "subscribe" => "09_subscribe.sip",
    "notify" => "10_notify.sip",
    "invite_compact_folded" => "11_invite_compact_folded.sip",
}

/// Loads the corpus. Each message is copied into its own heap `Bytes` and cloned once, so the
/// buffer is already in its shared (refcounted) form: cloning it inside a benchmark costs an
/// atomic increment and no allocation, as with a buffer received from a socket.
pub fn load() -> Vec<Message> {
    RAW.iter()
        .map(|&(name, file, data)| {
            let bytes = Bytes::from(data.to_vec());
            drop(bytes.clone());
            Message { name, file, bytes }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_crlf_with_exact_content_length() {
        for m in load() {
            let data = &m.bytes[..];
            for (i, &b) in data.iter().enumerate() {
                if b == b'\n' {
                    assert!(i > 0 && data[i - 1] == b'\r', "{}: bare LF at {i}", m.file);
                }
            }
            let head_end = memchr::memmem::find(data, b"\r\n\r\n").expect("head terminator") + 4;
            let head = core::str::from_utf8(&data[..head_end]).expect("utf-8 head");
            let declared: usize = head
                .split("\r\n")
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    let name = name.trim();
                    (name.eq_ignore_ascii_case("content-length") || name == "l")
                        .then(|| value.trim().parse().expect("numeric Content-Length"))
                })
                .expect("Content-Length present");
            assert_eq!(declared, data.len() - head_end, "{}", m.file);
        }
    }
}
