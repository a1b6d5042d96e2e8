//! Every malformed case is a typed error with its offset.

use hep_codec::{
    DecodeError, DecodeErrorKind as Kind, EncodeError, HepPacket, Mode, StreamDecoder, Timestamp,
    Transport, Version, chunk,
};

/// Offset and kind of an error, to compare in one assertion.
fn at(e: DecodeError) -> (usize, Kind) {
    (e.offset(), e.kind())
}

fn sample() -> Vec<u8> {
    let mut buf = Vec::new();
    HepPacket::sip(
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5062".parse().unwrap(),
        Transport::Udp,
        Timestamp::new(1, 2),
        b"OPTIONS sip:x SIP/2.0\r\n\r\n",
    )
    .encode(&mut buf)
    .unwrap();
    buf
}

fn set_total(buf: &mut [u8]) {
    let n = buf.len() as u16;
    buf[4..6].copy_from_slice(&n.to_be_bytes());
}

#[test]
fn canonical_order_is_sngreps() {
    let buf = sample();
    let types: Vec<u16> = hep_codec::ChunkIter::new(&buf)
        .map(|c| c.unwrap().1.chunk_type)
        .collect();
    assert_eq!(types, [1, 2, 7, 8, 9, 10, 11, 12, 3, 4, 15]);
}

#[test]
fn short_header() {
    let e = HepPacket::decode(b"HEP3\x00").unwrap_err();
    assert_eq!(
        at(e),
        (
            0,
            Kind::Truncated {
                needed: 6,
                available: 5
            }
        )
    );
    assert_eq!(
        at(HepPacket::decode(b"").unwrap_err()),
        (
            0,
            Kind::Truncated {
                needed: 1,
                available: 0
            }
        )
    );
    // A beginning of "HEP3" is too short to tell, not a foreign packet.
    assert_eq!(
        at(HepPacket::decode(b"HEP").unwrap_err()),
        (
            0,
            Kind::Truncated {
                needed: 4,
                available: 3
            }
        )
    );
    assert_eq!(
        at(HepPacket::decode(b"GET / HTTP/1.1").unwrap_err()),
        (0, Kind::UnknownVersion { found: b'G' })
    );
    assert_eq!(
        at(HepPacket::decode(b"HEP4").unwrap_err()),
        (3, Kind::UnknownVersion { found: b'4' })
    );
}

#[test]
fn total_length_differs_from_buffer() {
    let mut buf = sample();
    buf.push(0);
    let n = buf.len();
    let e = HepPacket::decode_with(&buf, Mode::Strict).unwrap_err();
    assert_eq!(
        at(e),
        (
            4,
            Kind::LengthMismatch {
                declared: n - 1,
                actual: n
            }
        )
    );
    // lenient ignores trailing bytes
    HepPacket::decode_with(&buf, Mode::Lenient).unwrap();
    buf.truncate(n - 2);
    let e = HepPacket::decode_with(&buf, Mode::Lenient).unwrap_err();
    assert_eq!(
        at(e),
        (
            4,
            Kind::LengthMismatch {
                declared: n - 1,
                actual: n - 2
            }
        )
    );
}

#[test]
fn chunk_length_below_six_and_past_end() {
    let mut buf = sample();
    // first chunk (family) at 6: length field at 10..12
    buf[10..12].copy_from_slice(&5u16.to_be_bytes());
    let e = HepPacket::decode(&buf).unwrap_err();
    assert_eq!(e, DecodeError::new(6, Kind::ChunkTooShort { length: 5 }));
    assert_eq!(
        e.to_string(),
        "at offset 6: chunk length 5 is below the 6-byte chunk header"
    );
    let mut buf = sample();
    buf[10..12].copy_from_slice(&0xfff0u16.to_be_bytes());
    let left = buf.len() - 6;
    assert_eq!(
        at(HepPacket::decode(&buf).unwrap_err()),
        (
            6,
            Kind::ChunkOverrun {
                length: 0xfff0,
                remaining: left
            }
        )
    );
    // a dangling partial chunk header at the end
    let mut buf = sample();
    buf.extend_from_slice(&[0, 0, 0]);
    set_total(&mut buf);
    let n = buf.len();
    assert_eq!(
        at(HepPacket::decode(&buf).unwrap_err()),
        (
            n - 3,
            Kind::ChunkOverrun {
                length: 6,
                remaining: 3
            }
        )
    );
}

#[test]
fn fixed_size_chunk_of_wrong_size() {
    let mut buf = sample();
    // append a 3-byte VLAN chunk, a size heplify-server rejects
    buf.extend_from_slice(&[0, 0, 0, 0x12, 0, 9, 1, 2, 3]);
    set_total(&mut buf);
    let off = buf.len() - 9;
    assert_eq!(
        HepPacket::decode_with(&buf, Mode::Strict).unwrap_err(),
        DecodeError::new(
            off,
            Kind::BadChunkSize {
                chunk_type: chunk::VLAN,
                expected: 2,
                found: 3
            }
        )
    );
    // lenient keeps it raw, and re-encodes it as it was
    let p = HepPacket::decode_with(&buf, Mode::Lenient).unwrap();
    assert_eq!(p.vlan, None);
    assert_eq!(p.extra.len(), 1);
    let mut out = Vec::new();
    p.encode(&mut out).unwrap();
    assert_eq!(out, buf);
}

#[test]
fn reserved_type_zero() {
    let mut buf = sample();
    buf.extend_from_slice(&[0, 0, 0, 0, 0, 6]);
    set_total(&mut buf);
    let off = buf.len() - 6;
    assert_eq!(
        at(HepPacket::decode(&buf).unwrap_err()),
        (off, Kind::ReservedChunkType)
    );
}

#[test]
fn missing_mandatory_chunk() {
    // drop the capture id chunk (type 12, 10 bytes) from the sample
    let buf = sample();
    let mut out = buf[..6].to_vec();
    for c in hep_codec::ChunkIter::new(&buf) {
        let (off, raw) = c.unwrap();
        if raw.chunk_type != chunk::CAPTURE_ID {
            out.extend_from_slice(&buf[off..off + 6 + raw.value.len()]);
        }
    }
    set_total(&mut out);
    let end = out.len();
    assert_eq!(
        HepPacket::decode_with(&out, Mode::Strict).unwrap_err(),
        DecodeError::new(
            end,
            Kind::MissingChunk {
                chunk_type: chunk::CAPTURE_ID
            }
        )
    );
    // Kamailio accepts 10 of 11 core chunks
    HepPacket::decode_with(&out, Mode::Lenient).unwrap();
    // but not without an address
    let mut no_addr = buf[..6].to_vec();
    for c in hep_codec::ChunkIter::new(&buf) {
        let (off, raw) = c.unwrap();
        if raw.chunk_type != chunk::IPV4_DST {
            no_addr.extend_from_slice(&buf[off..off + 6 + raw.value.len()]);
        }
    }
    set_total(&mut no_addr);
    assert_eq!(
        at(HepPacket::decode_with(&no_addr, Mode::Lenient).unwrap_err()),
        (
            no_addr.len(),
            Kind::MissingChunk {
                chunk_type: chunk::IPV4_DST
            }
        )
    );
}

#[test]
fn v1_v2_errors() {
    assert_eq!(
        at(HepPacket::decode(&[2, 16, 2, 17, 0, 1]).unwrap_err()),
        (
            0,
            Kind::Truncated {
                needed: 8,
                available: 6
            }
        )
    );
    assert_eq!(
        at(HepPacket::decode(&[2, 16, 7, 17, 0, 1, 0, 2]).unwrap_err()),
        (2, Kind::UnsupportedFamily { found: 7 })
    );
    assert_eq!(
        at(HepPacket::decode_with(&[1, 20, 2, 17, 0, 1, 0, 2], Mode::Strict).unwrap_err()),
        (
            1,
            Kind::BadHeaderLength {
                version: 1,
                found: 20
            }
        )
    );
    assert_eq!(
        at(HepPacket::decode(&[2, 16, 2, 17, 0, 1, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0]).unwrap_err()),
        (
            16,
            Kind::Truncated {
                needed: 12,
                available: 1
            }
        )
    );
    assert_eq!(
        at(HepPacket::decode(&[1, 16, 2, 17, 0, 1, 0, 2, 1, 2, 3]).unwrap_err()),
        (
            8,
            Kind::Truncated {
                needed: 8,
                available: 3
            }
        )
    );
}

#[test]
fn v2_kamailio_layout() {
    // Kamailio siptrace HEPv2: length byte 16, LE time block, LE capture id, 2 pad bytes.
    let mut buf = vec![
        2, 16, 2, 17, 0x13, 0xc4, 0x13, 0xc6, 127, 0, 0, 1, 127, 0, 0, 2,
    ];
    buf.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    buf.extend_from_slice(&250_000u32.to_le_bytes());
    buf.extend_from_slice(&2001u16.to_le_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(b"SIP/2.0 200 OK\r\n\r\n");
    let p = HepPacket::decode(&buf).unwrap();
    assert_eq!(p.version, Version::V2);
    assert_eq!(p.src().unwrap(), "127.0.0.1:5060".parse().unwrap());
    assert_eq!(p.dst().unwrap(), "127.0.0.2:5062".parse().unwrap());
    assert_eq!(
        (p.ts_sec, p.ts_usec, p.capture_id),
        (Some(1_700_000_000), Some(250_000), Some(2001))
    );
    assert_eq!(p.payload, Some(&b"SIP/2.0 200 OK\r\n\r\n"[..]));
    let mut out = Vec::new();
    p.encode(&mut out).unwrap();
    assert_eq!(out, buf);
    // hep-erlang style length byte 28 is accepted too
    let mut buf = buf.clone();
    buf[1] = 28;
    assert_eq!(
        HepPacket::decode(&buf).unwrap().payload,
        Some(&b"SIP/2.0 200 OK\r\n\r\n"[..])
    );
    // sngrep 1.6 sends the high byte of the total length as the header length: lenient
    // mode (like Kamailio) ignores it, strict mode rejects it
    let mut sngrep = buf.clone();
    sngrep[1] = 1;
    assert_eq!(HepPacket::decode(&sngrep).unwrap().capture_id, Some(2001));
    assert_eq!(
        at(HepPacket::decode_with(&sngrep, Mode::Strict).unwrap_err()),
        (
            1,
            Kind::BadHeaderLength {
                version: 2,
                found: 1
            }
        )
    );
    // a big-endian time block is recognised by its microseconds
    buf[16..20].copy_from_slice(&1_700_000_000u32.to_be_bytes());
    buf[20..24].copy_from_slice(&250_000u32.to_be_bytes());
    let q = HepPacket::decode(&buf).unwrap();
    assert_eq!((q.ts_sec, q.ts_usec), (Some(1_700_000_000), Some(250_000)));
}

#[test]
fn encode_errors() {
    let big = vec![b'x'; 70_000];
    let p = HepPacket::sip(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        Transport::Udp,
        Timestamp::new(0, 0),
        &big,
    );
    assert!(matches!(
        p.encode(&mut Vec::new()),
        Err(EncodeError::TooLong { .. })
    ));
    let small = HepPacket::sip(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        Transport::Udp,
        Timestamp::new(0, 0),
        b"x",
    );
    let mut tiny = [0u8; 10];
    assert!(matches!(
        small.encode(&mut &mut tiny[..]),
        Err(EncodeError::BufferTooSmall { available: 10, .. })
    ));
    let mut v2 = small.clone();
    v2.version = Version::V2;
    v2.capture_id = Some(70_000);
    assert_eq!(
        v2.encode(&mut Vec::new()),
        Err(EncodeError::CaptureIdTooLarge(70_000))
    );
    v2.capture_id = Some(1);
    v2.dst_addr = Some("::1".parse().unwrap());
    assert_eq!(
        v2.encode(&mut Vec::new()),
        Err(EncodeError::MixedAddressFamilies)
    );
    v2.src_port = None;
    assert_eq!(
        v2.encode(&mut Vec::new()),
        Err(EncodeError::MissingField("src_port"))
    );
    // HEPv1/v2 have no field for a compressed payload: refused, for either version, even
    // beside a plain payload, and nothing is written
    for version in [Version::V1, Version::V2] {
        let mut gz = small.clone().with_version(version);
        gz.compressed_payload = Some(b"\x1f\x8b\x08");
        let mut out = Vec::new();
        assert_eq!(
            gz.encode(&mut out),
            Err(EncodeError::CompressedPayloadNeedsV3)
        );
        assert!(out.is_empty());
        gz.payload = None;
        assert_eq!(
            gz.encode(&mut out),
            Err(EncodeError::CompressedPayloadNeedsV3)
        );
        gz.version = Version::V3;
        assert!(gz.encode(&mut out).is_ok());
    }
}

#[test]
fn stream_errors_carry_the_stream_offset() {
    let one = sample();
    let mut s = StreamDecoder::new();
    s.push(&one);
    s.push(b"HEPX");
    assert!(s.next_frame().unwrap().is_some());
    assert_eq!(
        s.next_frame().unwrap_err(),
        DecodeError::new(one.len() + 3, Kind::UnknownVersion { found: b'X' })
    );
    let mut s = StreamDecoder::new();
    s.push(b"HEP3\x00\x02");
    assert_eq!(
        at(s.next_frame().unwrap_err()),
        (
            4,
            Kind::LengthMismatch {
                declared: 2,
                actual: 6
            }
        )
    );
    let mut s = StreamDecoder::new();
    s.push(b"HE");
    assert_eq!(s.next_frame().unwrap(), None);
}

#[test]
fn packets_in_a_buffer() {
    let one = sample();
    let n = one.len();
    // A packet that is framed right but does not decode (capture id chunk 2 bytes short of
    // its fixed size, refused in strict mode) is an error, and the next packet follows.
    let mut bad = one.clone();
    let cap = hep_codec::ChunkIter::new(&one)
        .map(Result::unwrap)
        .find(|(_, c)| c.chunk_type == chunk::CAPTURE_ID)
        .unwrap()
        .0;
    bad[cap + 4..cap + 6].copy_from_slice(&8u16.to_be_bytes());
    bad.drain(cap + 8..cap + 10);
    set_total(&mut bad);
    let file = [one.as_slice(), &bad, &one].concat();
    let items: Vec<_> = hep_codec::Packets::new(&file, Mode::Strict).collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    assert_eq!(
        at(items[1].clone().unwrap_err()),
        (
            n + cap,
            Kind::BadChunkSize {
                chunk_type: chunk::CAPTURE_ID,
                expected: 4,
                found: 2
            }
        )
    );
    // Broken framing is the last item, at its offset in the buffer. (The 5-byte tail is
    // last in its buffer; the others have a good packet after them.)
    for (tail, kind) in [
        (
            &b"HEP3\x00\x03"[..],
            Kind::LengthMismatch {
                declared: 3,
                actual: 6 + n,
            },
        ),
        (
            b"HEP3\x00",
            Kind::Truncated {
                needed: 6,
                available: 5,
            },
        ),
        (
            b"HEP3\x01\x00",
            Kind::Truncated {
                needed: 256,
                available: 6 + n,
            },
        ),
        (b"GET", Kind::UnknownVersion { found: b'G' }),
    ] {
        let after: &[u8] = if tail.len() == 5 { &[] } else { &one };
        let file = [one.as_slice(), tail, after].concat();
        let mut it = hep_codec::Packets::new(&file, Mode::Lenient);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.offset(), n);
        let e = it.next().unwrap().unwrap_err();
        let off = if matches!(kind, Kind::LengthMismatch { .. }) {
            n + 4
        } else {
            n
        };
        assert_eq!(at(e), (off, kind), "{tail:?}");
        assert!(it.next().is_none());
        assert_eq!(it.offset(), file.len());
    }
    // A HEPv1/v2 packet has no length: it runs to the end of the buffer.
    let mut v2 = Vec::new();
    HepPacket::decode(&one)
        .unwrap()
        .with_version(Version::V2)
        .encode(&mut v2)
        .unwrap();
    let file = [one.as_slice(), &v2].concat();
    let got: Vec<_> = hep_codec::Packets::new(&file, Mode::Strict)
        .map(|p| p.unwrap().version)
        .collect();
    assert_eq!(got, [Version::V3, Version::V2]);
    assert_eq!(hep_codec::Packets::new(&[], Mode::Strict).count(), 0);
}
