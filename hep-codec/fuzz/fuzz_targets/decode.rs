//! Decoder fuzz target: any bytes, both modes, never panics; whatever decodes re-encodes to
//! a packet that decodes to the same fields; the stream decoder splits and the gzip/zlib
//! inflater runs without panicking.
#![no_main]

use hep_codec::{ChunkOrder, HepPacket, Mode, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [Mode::Strict, Mode::Lenient] {
        let Ok(p) = HepPacket::decode_with(data, mode) else {
            continue;
        };
        let mut out = Vec::new();
        if p.encode(&mut out).is_ok() {
            let mut q =
                HepPacket::decode_with(&out, Mode::Lenient).expect("re-encoded packet decodes");
            let mut p2 = p.clone();
            p2.order = ChunkOrder::default();
            q.order = ChunkOrder::default();
            assert_eq!(p2, q, "decode(encode(decode(x))) == decode(x)");
        }
    }
    let _ = hep_codec::gzip::decompress(data, 1 << 16);
    let mut s = StreamDecoder::new();
    for piece in data.chunks(7) {
        s.push(piece);
        while let Ok(Some(frame)) = s.next_frame() {
            let _ = HepPacket::decode(&frame);
        }
    }
});
