//! Stream decoding: the first byte picks chunk sizes; the items must not depend on them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_parser::{Limits, StreamDecoder, StreamItem};

fn run(data: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, String>> {
    let mut d = StreamDecoder::new(Limits::default());
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        d.feed(c);
        loop {
            match d.decode() {
                Ok(Some(StreamItem::Message(m))) => out.push(Ok(m.as_wire().to_vec())),
                Ok(Some(k)) => out.push(Err(format!("{k:?}"))),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    if e.fatal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    assert_eq!(run(rest, usize::from(k % 17) + 1), run(rest, rest.len().max(1)));
});
