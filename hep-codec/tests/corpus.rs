//! The shared real HEPv3 vector (heplify-server's decoder test packet).

use core::net::{IpAddr, Ipv4Addr};

use hep_codec::{AddressFamily, HepPacket, IpProto, Mode, ProtoType, Version};

/// The vector, as hex text, from `../shared/corpus/hep` beside the project (read at run time,
/// as `sip-parser`'s corpus test does, so that a checkout without it still builds).
fn hex() -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/hep/heplify-server_decoder_test_hepPacket.hex");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared corpus must exist)", path.display()))
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.bytes().filter(u8::is_ascii_hexdigit))
        .collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn heplify_vector_decodes_to_the_documented_fields() {
    let bytes = unhex(&hex());
    assert_eq!(bytes.len(), 778);
    for mode in [Mode::Strict, Mode::Lenient] {
        let p = HepPacket::decode_with(&bytes, mode).unwrap();
        assert_eq!(p.version, Version::V3);
        assert_eq!(p.family, Some(AddressFamily::IPV4));
        assert_eq!(p.ip_proto, Some(IpProto::UDP));
        assert_eq!(
            p.src_addr,
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 247, 250)))
        );
        assert_eq!(
            p.dst_addr,
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 245, 250)))
        );
        assert_eq!((p.src_port, p.dst_port), (Some(5060), Some(5060)));
        assert_eq!((p.ts_sec, p.ts_usec), (Some(1_520_606_104), Some(119_540)));
        assert_eq!(p.proto_type, Some(ProtoType::SIP));
        assert_eq!(p.capture_id, Some(0));
        assert_eq!(p.auth_key, Some(&b""[..]));
        assert_eq!(p.correlation_id, None);
        assert!(p.extra.is_empty());
        let payload = p.payload.unwrap();
        assert_eq!(payload.len(), 673);
        assert!(payload.starts_with(b"SIP/2.0 200 OK\r\nCall-ID: BC099884@6dfcffe8\r\n"));
        assert!(payload.ends_with(b"m=audio 0 RTP/AVP 8"));
    }
}

#[test]
fn heplify_vector_reencodes_byte_identical() {
    let bytes = unhex(&hex());
    let p = HepPacket::decode(&bytes).unwrap();
    let mut out = Vec::new();
    assert_eq!(p.encode(&mut out).unwrap(), 778);
    assert_eq!(out, bytes);
    assert_eq!(p.encoded_len(), 778);
}

#[test]
fn heplify_vector_with_payload_as_bytes_is_zero_copy() {
    let bytes = bytes::Bytes::from(unhex(&hex()));
    let p = HepPacket::decode(&bytes).unwrap();
    let payload = p.payload_bytes(&bytes).unwrap();
    assert_eq!(payload.len(), 673);
    assert_eq!(payload.as_ptr(), p.payload.unwrap().as_ptr());
}
