//! The recorded chunk order around `CHUNK_ORDER_CAPACITY`, and `ChunkOrder::push` beside it.

use hep_codec::{
    CHUNK_ORDER_CAPACITY, ChunkOrder, HepPacket, Mode, OrderEntry, Timestamp, Transport,
};

/// A strict-valid packet: the 11 core chunks in non-canonical order, then `vendor_chunks`
/// vendor chunks, and a repeated source port between them.
fn packet(vendor_chunks: usize) -> Vec<u8> {
    let base = HepPacket::sip(
        "192.0.2.1:5060".parse().unwrap(),
        "192.0.2.2:5070".parse().unwrap(),
        Transport::Udp,
        Timestamp::new(1_700_000_000, 42),
        b"OPTIONS sip:x SIP/2.0\r\n\r\n",
    );
    let mut canon = Vec::new();
    base.encode(&mut canon).unwrap();
    let mut chunks: Vec<&[u8]> = hep_codec::ChunkIter::new(&canon)
        .map(|c| {
            let (off, raw) = c.unwrap();
            &canon[off..off + 6 + raw.value.len()]
        })
        .collect();
    chunks.reverse();
    let dup_port: &[u8] = &[0, 0, 0, 7, 0, 8, 0x13, 0xc5];
    let vendor: &[u8] = &[0, 2, 0, 0x20, 0, 7, 9];
    let mut body = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        body.extend_from_slice(c);
        if i == 3 {
            body.extend_from_slice(dup_port);
        }
    }
    for _ in 0..vendor_chunks {
        body.extend_from_slice(vendor);
    }
    let mut out = b"HEP3".to_vec();
    out.extend_from_slice(&u16::try_from(6 + body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn order_kept_up_to_capacity_and_forgotten_past_it() {
    // 11 core chunks + 1 repeated port = 12 chunks before the vendor chunks.
    for vendor_chunks in [0, CHUNK_ORDER_CAPACITY - 12, CHUNK_ORDER_CAPACITY - 11, 60] {
        let wire = packet(vendor_chunks);
        let p = HepPacket::decode_with(&wire, Mode::Strict).unwrap();
        assert_eq!(p.extra.len(), vendor_chunks + 1);
        assert_eq!(p.src_port, Some(5061));
        let mut pushed = ChunkOrder::default();
        let mut seen = Vec::new();
        for (_, raw) in hep_codec::ChunkIter::new(&wire).map(Result::unwrap) {
            let generic = raw.vendor == 0 && !seen.contains(&raw.chunk_type);
            seen.push(raw.chunk_type);
            pushed.push(if generic {
                OrderEntry::Generic(raw.chunk_type)
            } else {
                OrderEntry::Extra
            });
        }
        assert_eq!(p.order, pushed, "{vendor_chunks} vendor chunks");
        let mut again = Vec::new();
        p.encode(&mut again).unwrap();
        if 12 + vendor_chunks <= CHUNK_ORDER_CAPACITY {
            assert_eq!(p.order.iter().count(), 12 + vendor_chunks);
            assert_eq!(again, wire);
        } else {
            assert!(p.order.is_empty());
            assert_eq!(p.order.iter().count(), 0);
            assert_eq!(again.len(), wire.len());
            let back = HepPacket::decode_with(&again, Mode::Strict).unwrap();
            assert_eq!(back.extra, p.extra);
            assert_eq!(back.payload, p.payload);
        }
    }
}

#[test]
fn push_past_capacity_forgets_and_stays_forgotten() {
    let mut o = ChunkOrder::default();
    for _ in 0..CHUNK_ORDER_CAPACITY {
        o.push(OrderEntry::Generic(1));
    }
    assert_eq!(o.iter().count(), CHUNK_ORDER_CAPACITY);
    for _ in 0..300 {
        o.push(OrderEntry::Extra);
        assert!(o.is_empty());
    }
    assert_eq!(o.iter().count(), 0);
}
