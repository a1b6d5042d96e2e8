//! Property tests: round trips for every version, arbitrary input never panics, chunk order
//! does not matter, stream framing does not depend on how the stream is cut, a buffer of
//! packets splits where they join, version sniffing agrees with decoding, and the text forms
//! of timestamps and endpoints read back.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use core::net::SocketAddr;
use core::time::Duration;

use hep_codec::{
    AddressFamily, ChunkIter, ChunkOrder, DecodeErrorKind, Endpoint, HepPacket, IpProto, Mode,
    Packets, ProtoType, RawChunk, StreamDecoder, Timestamp, Version,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Owned inputs for a packet (the packet borrows from it).
#[derive(Debug, Clone)]
struct Owned {
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    nums: [u32; 8],
    opt_nums: [Option<u16>; 9],
    opt_u8: [Option<u8>; 2],
    macs: [Option<u64>; 2],
    jitter: Option<u32>,
    strings: Vec<Option<Vec<u8>>>,
    payload: Vec<u8>,
    compressed: Option<Vec<u8>>,
    extra: Vec<(u16, u16, Vec<u8>)>,
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<[u32; 8]>(),
        any::<[Option<u16>; 9]>(),
        any::<[Option<u8>; 2]>(),
        any::<[Option<u64>; 2]>(),
        any::<Option<u32>>(),
        vec(option::of(vec(any::<u8>(), 0..20)), 9),
        vec(any::<u8>(), 0..300),
        option::of(vec(any::<u8>(), 0..40)),
        // vendor chunks (vendor != 0) and unknown generic types (0x19..=0x1f, 0x2a..)
        vec(
            prop_oneof![
                (1u16..=0xffff, any::<u16>()),
                (Just(0u16), prop_oneof![0x19u16..=0x1f, 0x2au16..=0xffff])
            ]
            .prop_flat_map(|(v, t)| (Just(v), Just(t), vec(any::<u8>(), 0..12))),
            0..4,
        ),
    )
        .prop_map(
            |(
                v6,
                src,
                dst,
                nums,
                opt_nums,
                opt_u8,
                macs,
                jitter,
                strings,
                payload,
                compressed,
                extra,
            )| {
                Owned {
                    v6,
                    src,
                    dst,
                    nums,
                    opt_nums,
                    opt_u8,
                    macs,
                    jitter,
                    strings,
                    payload,
                    compressed,
                    extra,
                }
            },
        )
}

fn addr(v6: bool, b: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// A HEPv3 packet using every field.
fn v3(o: &Owned) -> HepPacket<'_> {
    let s = |i: usize| o.strings[i].as_deref();
    HepPacket {
        version: Version::V3,
        family: Some(if o.v6 {
            AddressFamily::IPV6
        } else {
            AddressFamily::IPV4
        }),
        ip_proto: Some(IpProto(o.nums[0] as u8)),
        src_addr: Some(addr(o.v6, o.src)),
        dst_addr: Some(addr(o.v6, o.dst)),
        src_port: Some(o.nums[1] as u16),
        dst_port: Some(o.nums[2] as u16),
        ts_sec: Some(o.nums[3]),
        ts_usec: Some(o.nums[4]),
        proto_type: Some(ProtoType(o.nums[5] as u8)),
        capture_id: Some(o.nums[6]),
        keep_alive: o.opt_nums[0],
        auth_key: s(0),
        payload: Some(&o.payload),
        compressed_payload: o.compressed.as_deref(),
        correlation_id: s(1),
        vlan: o.opt_nums[1],
        node_name: s(2),
        src_mac: o.macs[0],
        dst_mac: o.macs[1],
        eth_type: o.opt_nums[2],
        tcp_flags: o.opt_u8[0],
        ip_tos: o.opt_u8[1],
        mos: o.opt_nums[3],
        r_factor: o.opt_nums[4],
        geo_location: s(3),
        jitter: o.jitter,
        transaction_type: s(4),
        payload_json_keys: s(5),
        tags_values: s(6),
        tag_type: o.opt_nums[5],
        event_type: o.opt_nums[6],
        group_id: s(7),
        extra: o
            .extra
            .iter()
            .map(|(v, t, b)| RawChunk {
                vendor: *v,
                chunk_type: *t,
                value: b,
            })
            .collect(),
        order: ChunkOrder::default(),
    }
}

fn without_order(mut p: HepPacket<'_>) -> HepPacket<'_> {
    p.order = ChunkOrder::default();
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v3_roundtrip_all_chunks(o in owned()) {
        let p = v3(&o);
        let mut buf = Vec::new();
        let n = p.encode(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(n, p.encoded_len());
        for mode in [Mode::Strict, Mode::Lenient] {
            let d = HepPacket::decode_with(&buf, mode).unwrap();
            // re-encoding the decoded packet (with its recorded order) is byte-identical
            let mut again = Vec::new();
            d.encode(&mut again).unwrap();
            prop_assert_eq!(&again, &buf);
            prop_assert_eq!(without_order(d), p.clone());
        }
    }

    #[test]
    fn v3_shuffled_chunks_decode_the_same(o in owned(), seed in any::<u64>()) {
        let p = v3(&o);
        let mut buf = Vec::new();
        p.encode(&mut buf).unwrap();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut pos = 6;
        for item in ChunkIter::new(&buf) {
            let (off, raw) = item.unwrap();
            let end = off + 6 + raw.value.len();
            chunks.push(&buf[off..end]);
            pos = end;
        }
        prop_assert_eq!(pos, buf.len());
        // deterministic Fisher-Yates from the seed
        let mut state = seed | 1;
        for i in (1..chunks.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunks.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut shuffled = buf[..6].to_vec();
        for c in &chunks {
            shuffled.extend_from_slice(c);
        }
        let d = HepPacket::decode_with(&shuffled, Mode::Strict).unwrap();
        let mut again = Vec::new();
        d.encode(&mut again).unwrap();
        prop_assert_eq!(&again, &shuffled);
        // extra chunks keep their relative order; compare them as a set
        let mut d = without_order(d);
        let mut want = p.clone();
        d.extra.sort_by_key(|r| (r.vendor, r.chunk_type, r.value));
        want.extra.sort_by_key(|r| (r.vendor, r.chunk_type, r.value));
        prop_assert_eq!(d, want);
    }

    #[test]
    fn v1_v2_roundtrip(o in owned(), v2 in any::<bool>()) {
        let p = HepPacket {
            version: if v2 { Version::V2 } else { Version::V1 },
            family: Some(if o.v6 { AddressFamily::IPV6 } else { AddressFamily::IPV4 }),
            ip_proto: Some(IpProto(o.nums[0] as u8)),
            src_addr: Some(addr(o.v6, o.src)),
            dst_addr: Some(addr(o.v6, o.dst)),
            src_port: Some(o.nums[1] as u16),
            dst_port: Some(o.nums[2] as u16),
            ts_sec: v2.then_some(o.nums[3]),
            ts_usec: v2.then_some(o.nums[4] % 1_000_000),
            capture_id: v2.then_some(o.nums[6] & 0xffff),
            payload: Some(&o.payload),
            ..HepPacket::default()
        };
        let mut buf = Vec::new();
        let n = p.encode(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let d = HepPacket::decode(&buf).unwrap();
        prop_assert_eq!(d, p);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..400)) {
        for mode in [Mode::Strict, Mode::Lenient] {
            if let Ok(p) = HepPacket::decode_with(&data, mode) {
                let mut out = Vec::new();
                let _ = p.encode(&mut out);
            }
        }
        let mut s = StreamDecoder::new();
        s.push(&data);
        while let Ok(Some(_)) = s.next_frame() {}
    }

    #[test]
    fn mutated_packets_never_panic(o in owned(), flips in vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut buf = Vec::new();
        v3(&o).encode(&mut buf).unwrap();
        for (i, b) in flips {
            let i = i % buf.len();
            buf[i] = b;
        }
        buf.truncate(cut % (buf.len() + 1));
        for mode in [Mode::Strict, Mode::Lenient] {
            if let Ok(p) = HepPacket::decode_with(&buf, mode) {
                let mut out = Vec::new();
                let _ = p.encode(&mut out);
            }
        }
    }

    #[test]
    fn stream_split_anywhere(os in vec(owned(), 1..4), cuts in vec(1usize..50, 1..20)) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for o in &os {
            let mut one = Vec::new();
            v3(o).encode(&mut one).unwrap();
            stream.extend_from_slice(&one);
            want.push(one);
        }
        let mut dec = StreamDecoder::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < stream.len() {
            let n = cuts[i % cuts.len()].min(stream.len() - pos);
            dec.push(&stream[pos..pos + n]);
            pos += n;
            i += 1;
            while let Some(f) = dec.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(dec.buffered(), 0);
    }
}

proptest! {
    /// The encoder's stack fast path (SIP-capture-shaped packets) writes exactly what the
    /// general path writes: re-encoding the decoded packet (recorded order, general path)
    /// gives the same bytes, and the chunks are in canonical order.
    #[test]
    fn fast_path_matches_general_path(
        o in owned(),
        mask in any::<u16>(),
    ) {
        let full = v3(&o);
        let pick = |bit: u16| mask & (1 << bit) != 0;
        let p = HepPacket {
            family: full.family.filter(|_| pick(0)),
            ip_proto: full.ip_proto.filter(|_| pick(1)),
            src_addr: full.src_addr.filter(|_| pick(2)),
            dst_addr: full.dst_addr.filter(|_| pick(3)),
            src_port: full.src_port.filter(|_| pick(4)),
            dst_port: full.dst_port.filter(|_| pick(5)),
            ts_sec: full.ts_sec.filter(|_| pick(6)),
            ts_usec: full.ts_usec.filter(|_| pick(7)),
            proto_type: full.proto_type.filter(|_| pick(8)),
            capture_id: full.capture_id.filter(|_| pick(9)),
            auth_key: full.auth_key.filter(|_| pick(10)),
            correlation_id: full.correlation_id.filter(|_| pick(11)),
            payload: full.payload.filter(|_| pick(12)),
            node_name: full.node_name.filter(|_| pick(13)),
            ..HepPacket::default()
        };
        let mut fast = Vec::new();
        p.encode(&mut fast).unwrap();
        prop_assert_eq!(fast.len(), p.encoded_len());
        let d = HepPacket::decode_with(&fast, Mode::Lenient);
        // packets missing mandatory chunks do not decode; compare the chunk walk instead
        let types: Vec<u16> = ChunkIter::new(&fast).map(|c| c.unwrap().1.chunk_type).collect();
        let canonical: Vec<u16> = hep_codec::CANONICAL_ORDER
            .iter()
            .copied()
            .filter(|t| types.contains(t))
            .collect();
        prop_assert_eq!(&types, &canonical);
        if let Ok(d) = d {
            prop_assert!(!d.order.is_empty());
            let mut general = Vec::new();
            d.encode(&mut general).unwrap();
            prop_assert_eq!(&general, &fast);
        }
        // and with a recorded order matching the canonical one, the general path agrees
        let mut with_order = p.clone();
        for t in &types {
            with_order.order.push(hep_codec::OrderEntry::Generic(*t));
        }
        let mut general = Vec::new();
        with_order.encode(&mut general).unwrap();
        prop_assert_eq!(general, fast);
    }
}

/// `SECONDS[.MICROSECONDS]` read the slow way, as the reference for `Timestamp::from_str`.
fn timestamp_model(s: &str) -> Option<Timestamp> {
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(sec) {
        return None;
    }
    let sec = u32::try_from(sec.parse::<u128>().ok()?).ok()?;
    let usec = match frac {
        None => 0,
        Some(f) if digits(f) && f.len() <= 6 => format!("{f:0<6}").parse().ok()?,
        Some(_) => return None,
    };
    Some(Timestamp::new(sec, usec))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Packets written back to back come out one by one; cut anywhere, the whole packets
    /// before the cut still do, then one `Truncated` error at the offset of the cut packet.
    #[test]
    fn packets_split_where_they_join(os in vec(owned(), 0..4), cut in any::<usize>()) {
        let mut file = Vec::new();
        let mut starts = Vec::new();
        for o in &os {
            starts.push(file.len());
            v3(o).encode(&mut file).unwrap();
        }
        let whole: Vec<HepPacket<'_>> =
            Packets::new(&file, Mode::Strict).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(whole.len(), os.len());
        for (got, o) in whole.into_iter().zip(&os) {
            prop_assert_eq!(without_order(got), v3(o));
        }
        let cut = cut % (file.len() + 1);
        let mut it = Packets::new(&file[..cut], Mode::Strict);
        let complete = starts.iter().zip(starts.iter().skip(1).chain([&file.len()]))
            .filter(|&(_, &end)| end <= cut)
            .count();
        for _ in 0..complete {
            prop_assert!(it.next().unwrap().is_ok());
        }
        if let Some(&start) = starts.get(complete).filter(|&&s| s < cut) {
            let e = it.next().unwrap().unwrap_err();
            prop_assert_eq!(e.offset(), start);
            let is_truncated = matches!(e.kind(), DecodeErrorKind::Truncated { .. });
            prop_assert!(is_truncated, "{:?}", e);
        }
        prop_assert!(it.next().is_none());
        prop_assert_eq!(it.offset(), cut);
    }

    /// On any bytes the iterator ends, each packet's offset past the previous one.
    #[test]
    fn packets_of_any_bytes_end(data in vec(any::<u8>(), 0..400), v3_prefix in any::<bool>()) {
        let mut data = data;
        if v3_prefix && data.len() >= 6 {
            data[..4].copy_from_slice(b"HEP3");
        }
        for mode in [Mode::Strict, Mode::Lenient] {
            let mut it = Packets::new(&data, mode);
            let mut last = 0;
            let mut items = 0;
            while it.next().is_some() {
                items += 1;
                prop_assert!(it.offset() > last || it.offset() == data.len());
                last = it.offset();
                prop_assert!(items <= data.len());
            }
            prop_assert_eq!(it.offset(), data.len());
        }
    }

    /// Sniffing tells the version decoding finds, and fails exactly as decoding does.
    #[test]
    fn sniff_agrees_with_decode(data in vec(any::<u8>(), 0..64), lead in 0usize..5) {
        let mut data = data;
        let n = lead.min(data.len());
        data[..n].copy_from_slice(&b"HEP3"[..n.min(4)]);
        match Version::sniff(&data) {
            Ok(v) => {
                if let Ok(p) = HepPacket::decode(&data) {
                    prop_assert_eq!(p.version, v);
                }
            }
            Err(e) => prop_assert_eq!(HepPacket::decode(&data).unwrap_err(), e),
        }
    }

    #[test]
    fn timestamp_text_round_trip(sec in any::<u32>(), usec in 0u32..1_000_000) {
        let t = Timestamp::new(sec, usec);
        prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        prop_assert_eq!(Timestamp::from(t.since_epoch()), t);
        prop_assert_eq!(
            Timestamp::from(Duration::from_secs(u64::from(sec)) + Duration::from_nanos(u64::from(usec) * 1000 + 999)),
            t
        );
    }

    #[test]
    fn timestamp_parse_matches_the_model(s in "[0-9.+ a-]{0,14}") {
        let got = s.parse::<Timestamp>();
        prop_assert_eq!(got.ok(), timestamp_model(&s));
        if let Err(e) = s.parse::<Timestamp>() {
            prop_assert!(e.offset <= s.len());
        }
    }

    #[test]
    fn endpoint_text_reads_back(v6 in any::<bool>(), b in any::<[u8; 16]>(), port in any::<Option<u16>>()) {
        let e = Endpoint { addr: addr(v6, b), port };
        let text = e.to_string();
        if let Some(p) = port {
            prop_assert_eq!(text.parse::<SocketAddr>(), Ok(SocketAddr::new(e.addr, p)));
        } else {
            prop_assert_eq!(text.parse::<IpAddr>(), Ok(e.addr));
        }
    }
}
