//! Decoder fuzz target: any bytes, both modes, never panics; whatever decodes re-encodes to
//! a packet that decodes to the same fields; version sniffing fails exactly when decoding
//! fails on the version; a buffer of packets and the stream decoder split it, always moving
//! forward; the gzip/zlib inflater and the timestamp parser run without panicking.
#![no_main]

use hep_codec::{ChunkOrder, HepPacket, Mode, Packets, StreamDecoder, Timestamp, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [Mode::Strict, Mode::Lenient] {
        let decoded = HepPacket::decode_with(data, mode);
        match Version::sniff(data) {
            Ok(v) => {
                if let Ok(p) = &decoded {
                    assert_eq!(p.version, v, "sniffed version is the decoded one");
                }
            }
            Err(e) => assert_eq!(decoded.as_ref().err(), Some(&e), "sniff fails as decode"),
        }
        if let Ok(p) = decoded {
            let mut out = Vec::new();
            if p.encode(&mut out).is_ok() {
                let mut q = HepPacket::decode_with(&out, Mode::Lenient)
                    .expect("re-encoded packet decodes");
                let mut p2 = p.clone();
                p2.order = ChunkOrder::default();
                q.order = ChunkOrder::default();
                assert_eq!(p2, q, "decode(encode(decode(x))) == decode(x)");
            }
        }
        let mut packets = Packets::new(data, mode);
        let mut last = 0;
        while let Some(item) = packets.next() {
            if let Err(e) = item {
                assert!(e.offset() <= data.len(), "error offset inside the buffer");
            }
            assert!(packets.offset() > last, "each packet moves forward");
            last = packets.offset();
        }
        assert_eq!(packets.offset(), data.len());
    }
    let _ = hep_codec::gzip::decompress(data, 1 << 16);
    if let Ok(Ok(t)) = core::str::from_utf8(data).map(str::parse::<Timestamp>) {
        assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t), "timestamp text round trip");
    }
    let mut s = StreamDecoder::new();
    for piece in data.chunks(7) {
        s.push(piece);
        while let Ok(Some(frame)) = s.next_frame() {
            let _ = HepPacket::decode(&frame);
        }
    }
});
