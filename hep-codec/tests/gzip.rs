//! The `gzip` feature: compressed-payload chunk 0x0010 in and out, checked against the
//! system `gzip` tool.
#![cfg(feature = "gzip")]

use std::io::Write;
use std::process::{Command, Stdio};

use hep_codec::gzip::{GzipError, compress, crc32, decompress};
use hep_codec::{HepPacket, Mode, Timestamp, Transport};
use proptest::prelude::*;

const SIP: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\nCall-ID: gz@example.com\r\n\r\n";

fn gzip_tool(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip (Debian essential) is missing");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn our_gzip_is_read_by_gzip_and_back() {
    let ours = compress(SIP);
    assert_eq!(gzip_tool(&["-dc"], &ours), SIP);
    let theirs = gzip_tool(&["-c", "-n"], SIP);
    assert_eq!(decompress(&theirs, 1 << 20).unwrap(), SIP);
    // with a file name in the header
    let named = Command::new("sh")
        .args(["-c", "printf 'SIP/2.0 200 OK\\r\\n\\r\\n' > /tmp/hep-gz-$$.txt && gzip -c /tmp/hep-gz-$$.txt; rm -f /tmp/hep-gz-$$.txt"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        decompress(&named, 1 << 20).unwrap(),
        b"SIP/2.0 200 OK\r\n\r\n"
    );
}

#[test]
fn zlib_streams_and_errors() {
    let z = miniz_oxide::deflate::compress_to_vec_zlib(SIP, 6);
    assert_eq!(decompress(&z, 1 << 20).unwrap(), SIP);
    assert_eq!(decompress(b"plain text", 100), Err(GzipError::BadHeader));
    let mut bad = compress(SIP);
    let n = bad.len();
    bad[n - 8] ^= 1;
    assert_eq!(decompress(&bad, 1 << 20), Err(GzipError::Checksum));
    assert_eq!(decompress(&compress(SIP), 10), Err(GzipError::TooLarge(10)));
    assert!(decompress(&compress(SIP)[..12], 1 << 20).is_err());
}

#[test]
fn compressed_payload_chunk_round_trip() {
    let gz = compress(SIP);
    let mut p = HepPacket::sip(
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5060".parse().unwrap(),
        Transport::Udp,
        Timestamp::new(1, 2),
        b"",
    );
    p.payload = None;
    p.compressed_payload = Some(&gz);
    let mut wire = Vec::new();
    p.encode(&mut wire).unwrap();
    let d = HepPacket::decode_with(&wire, Mode::Strict).unwrap();
    assert!(d.is_compressed());
    assert_eq!(&*d.inflated_payload(1 << 16).unwrap().unwrap(), SIP);
}

proptest! {
    #[test]
    fn gzip_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        prop_assert_eq!(decompress(&compress(&data), 4096).unwrap(), data);
    }

    #[test]
    fn decompress_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decompress(&data, 4096);
    }
}
