//! `sip-proxy hep`: wrap SIP messages in HEP and send or write them (`encode`), and print HEP
//! packets from files (`decode`) or from the network (`listen`) as JSON lines.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use hep_codec::{
    Collector, DecodeError, HepPacket, Mode, Packets, StreamDecoder, Timestamp, Transport, Version,
};
use serde::Serialize;

/// Arguments of `sip-proxy hep`.
#[derive(Debug, clap::Args)]
pub(crate) struct HepArgs {
    #[command(subcommand)]
    command: HepCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HepCommand {
    /// Wrap SIP messages (one per file) in HEP and send them to a collector or write them.
    Encode(Box<EncodeArgs>),
    /// Print the HEP packets of files (HEPv3 back to back, one HEPv1/v2 packet, or hex text).
    Decode(DecodeArgs),
    /// Receive HEP packets and print each as a JSON line.
    Listen(ListenArgs),
}

#[derive(Debug, clap::Args)]
struct EncodeArgs {
    /// Source address of the captured messages.
    #[arg(long, value_name = "IP:PORT")]
    src: SocketAddr,
    /// Destination address of the captured messages.
    #[arg(long, value_name = "IP:PORT")]
    dst: SocketAddr,
    /// Transport the messages travelled on (TLS, WS and WSS are sent as IP protocol 22, as
    /// Kamailio does).
    #[arg(long, default_value = "udp", value_parser = transport_arg())]
    proto: Transport,
    /// Capture agent id (16 bits for HEPv2).
    #[arg(long, default_value_t = 0)]
    capture_id: u32,
    /// Authentication key (HEPv3 chunk 0x000e).
    #[arg(long)]
    auth_key: Option<String>,
    /// Capture node name (HEPv3 chunk 0x0013).
    #[arg(long)]
    node_name: Option<String>,
    /// Correlation id (HEPv3 chunk 0x0011), e.g. the Call-ID.
    #[arg(long)]
    correlation_id: Option<String>,
    /// HEP version.
    #[arg(long = "version", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    hep_version: u8,
    /// Send the SIP message gzip-compressed in chunk 0x0010 (HEPv3 only).
    #[arg(long)]
    gzip: bool,
    /// Timestamp as SECONDS[.MICROSECONDS] (default: now).
    #[arg(long)]
    ts: Option<Timestamp>,
    /// Send to a collector: udp:HOST:PORT (one packet per datagram) or tcp:HOST:PORT.
    #[arg(long, conflicts_with = "out", required_unless_present = "out", value_parser = collector_arg)]
    send: Option<Collector>,
    /// Write the packets to FILE, back to back (`-` = standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// SIP message files, one message each; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct DecodeArgs {
    /// Reject what heplify-server rejects (default: accept what Kamailio accepts).
    #[arg(long)]
    strict: bool,
    /// Files to read; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ListenArgs {
    /// Where to listen: udp:ADDR:PORT or tcp:ADDR:PORT.
    #[arg(value_parser = collector_arg)]
    addr: Collector,
    /// Stop after N packets (exit 1 if the timeout comes first).
    #[arg(long)]
    count: Option<u64>,
    /// Stop after S seconds.
    #[arg(long)]
    timeout: Option<f64>,
    /// Reject what heplify-server rejects (default: accept what Kamailio accepts).
    #[arg(long)]
    strict: bool,
}

/// Runs the subcommand.
pub(crate) fn run(args: &HepArgs) -> ExitCode {
    let result = match &args.command {
        HepCommand::Encode(a) => encode(a),
        HepCommand::Decode(a) => decode(a),
        HepCommand::Listen(a) => listen(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sip-proxy hep: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_input(path: &Path) -> io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        io::stdin().read_to_end(&mut v)?;
        Ok(v)
    } else {
        fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// `--proto`: a transport name as in a `transport=` URI parameter.
fn transport_arg() -> impl TypedValueParser<Value = Transport> {
    PossibleValuesParser::new(Transport::ALL.map(Transport::param_value))
        .try_map(|name| name.parse::<Transport>())
}

/// `udp:HOST:PORT` / `tcp:HOST:PORT`; HOST may be a name (its first address is taken).
fn collector_arg(s: &str) -> Result<Collector, String> {
    let syntax = || format!("{s}: expected udp:HOST:PORT or tcp:HOST:PORT");
    let (transport, host_port) = s.split_once(':').ok_or_else(syntax)?;
    let transport = transport.parse::<Transport>().map_err(|_| syntax())?;
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))?;
    Collector::new(transport, addr).map_err(|e| format!("{s}: {e}"))
}

fn encode(a: &EncodeArgs) -> io::Result<bool> {
    // clap keeps the number in 1..=3
    let version = Version::from_number(a.hep_version).unwrap_or_default();
    let time = a.ts.unwrap_or_else(|| SystemTime::now().into());
    if a.src.is_ipv4() != a.dst.is_ipv4() {
        return Err(err("--src and --dst must be of the same address family"));
    }
    if version != Version::V3 && a.out.is_some() && a.files.len() > 1 {
        return Err(err(
            "HEPv1/v2 packets have no length field: --out takes one SIP file per output file",
        ));
    }
    let mut packets = Vec::new();
    for f in &a.files {
        let sip = read_input(f)?;
        let gz = if a.gzip {
            hep_codec::gzip::compress(&sip)
        } else {
            Vec::new()
        };
        let mut p = HepPacket::sip(a.src, a.dst, a.proto, time, &sip)
            .with_version(version)
            .with_capture_id(a.capture_id);
        if a.gzip {
            // HEPv1/v2 have no field for it: encoding refuses.
            p.payload = None;
            p.compressed_payload = Some(&gz);
        }
        p.auth_key = a.auth_key.as_deref().map(str::as_bytes);
        p.node_name = a.node_name.as_deref().map(str::as_bytes);
        p.correlation_id = a.correlation_id.as_deref().map(str::as_bytes);
        let mut buf = Vec::with_capacity(p.encoded_len());
        p.encode(&mut buf)
            .map_err(|e| err(format!("{}: {e}", f.display())))?;
        packets.push(buf);
    }
    if let Some(collector) = &a.send {
        let mut socket = collector.connect(Duration::from_secs(5))?;
        for p in &packets {
            socket.send(p)?;
        }
        eprintln!("sent {} HEP packets to {collector}", packets.len());
    } else if let Some(out) = &a.out {
        let mut w: Box<dyn Write> = if out.as_os_str() == "-" {
            Box::new(io::stdout().lock())
        } else {
            Box::new(fs::File::create(out)?)
        };
        for p in &packets {
            w.write_all(p)?;
        }
        w.flush()?;
    }
    Ok(true)
}

/// One JSON line per packet.
#[derive(Debug, Serialize)]
struct PacketJson {
    version: u8,
    family: serde_json::Value,
    proto: serde_json::Value,
    src: Option<String>,
    dst: Option<String>,
    ts_sec: Option<u32>,
    ts_usec: Option<u32>,
    proto_type: Option<u8>,
    capture_id: Option<u32>,
    auth_key: Option<String>,
    correlation_id: Option<String>,
    node_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    compressed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_chunks: Vec<ExtraJson>,
    payload_len: usize,
    payload: String,
    call_id: Option<String>,
    method: Option<String>,
    status: Option<u16>,
}

#[derive(Debug, Serialize)]
struct ExtraJson {
    vendor: u16,
    #[serde(rename = "type")]
    chunk_type: u16,
    len: usize,
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn to_json(p: &HepPacket<'_>) -> PacketJson {
    let family = match p.family {
        Some(f) => f.name().map_or_else(|| f.0.into(), serde_json::Value::from),
        None => serde_json::Value::Null,
    };
    let proto = match p.ip_proto {
        Some(x) => x.name().map_or_else(|| x.0.into(), serde_json::Value::from),
        None => serde_json::Value::Null,
    };
    // A compressed payload is shown inflated (raw if it does not inflate).
    let payload = match p.inflated_payload(usize::from(u16::MAX) * 16) {
        Some(Ok(b)) => b,
        Some(Err(_)) => std::borrow::Cow::Borrowed(p.compressed_payload.unwrap_or_default()),
        None => std::borrow::Cow::Borrowed(&[][..]),
    };
    let payload = &*payload;
    let sip = p
        .is_sip()
        .then(|| sip_parser::Message::parse_slice(payload).ok())
        .flatten();
    PacketJson {
        version: p.version.number(),
        family,
        proto,
        src: p.src_endpoint().map(|e| e.to_string()),
        dst: p.dst_endpoint().map(|e| e.to_string()),
        ts_sec: p.ts_sec,
        ts_usec: p.ts_usec,
        proto_type: p.proto_type.map(|t| t.0),
        capture_id: p.capture_id,
        auth_key: text(p.auth_key),
        correlation_id: text(p.correlation_id),
        node_name: text(p.node_name),
        vlan: p.vlan,
        compressed: p.is_compressed(),
        extra_chunks: p
            .extra
            .iter()
            .map(|c| ExtraJson {
                vendor: c.vendor,
                chunk_type: c.chunk_type,
                len: c.value.len(),
            })
            .collect(),
        payload_len: payload.len(),
        payload: String::from_utf8_lossy(payload).into_owned(),
        call_id: sip.as_ref().and_then(|m| m.call_id().map(str::to_owned)),
        method: sip.as_ref().and_then(|m| m.method().map(str::to_owned)),
        status: sip.as_ref().and_then(sip_parser::Message::status),
    }
}

fn print_packet(out: &mut impl Write, p: &HepPacket<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &to_json(p))?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Hex text (the corpus format: `#` comment lines, then hex digits) → bytes.
fn unhex(data: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut digits = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        for b in line.bytes() {
            if b.is_ascii_hexdigit() {
                digits.push(b);
            } else if !b.is_ascii_whitespace() {
                return None;
            }
        }
    }
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn decode(a: &DecodeArgs) -> io::Result<bool> {
    let mode = if a.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let mut ok = true;
    let mut out = io::stdout().lock();
    for f in &a.files {
        let raw = read_input(f)?;
        let name = f.display();
        if raw.is_empty() {
            eprintln!("{name}: empty, no HEP packet");
            ok = false;
            continue;
        }
        let data = if Version::sniff(&raw).is_ok() {
            raw
        } else {
            unhex(&raw).unwrap_or(raw)
        };
        for (i, packet) in Packets::new(&data, mode).enumerate() {
            match packet {
                Ok(p) => print_packet(&mut out, &p)?,
                Err(e) => {
                    eprintln!("{name}: packet {}: {e}", i + 1);
                    ok = false;
                }
            }
        }
    }
    Ok(ok)
}

enum Received {
    Packet(Vec<u8>, SocketAddr),
    StreamError(DecodeError, SocketAddr),
}

fn tcp_reader(mut conn: TcpStream, peer: SocketAddr, tx: &mpsc::Sender<Received>) {
    let mut dec = StreamDecoder::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    if tx.send(Received::Packet(f.to_vec(), peer)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Received::StreamError(e, peer));
                    return;
                }
            }
        }
    }
}

fn listen(a: &ListenArgs) -> io::Result<bool> {
    let mode = if a.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let addr = a.addr.addr();
    let (tx, rx) = mpsc::channel::<Received>();
    if a.addr.transport() == Transport::Tcp {
        let l = TcpListener::bind(addr)?;
        eprintln!("listening on {}", Collector::tcp(l.local_addr()?));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let peer = conn.peer_addr().unwrap_or(addr);
                let tx = tx.clone();
                std::thread::spawn(move || tcp_reader(conn, peer, &tx));
            }
        });
    } else {
        let sock = UdpSocket::bind(addr)?;
        eprintln!("listening on {}", Collector::udp(sock.local_addr()?));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                if tx.send(Received::Packet(buf[..n].to_vec(), peer)).is_err() {
                    return;
                }
            }
        });
    }
    let deadline = a
        .timeout
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut out = io::stdout().lock();
    let mut ok = true;
    let mut seen = 0u64;
    while a.count.is_none_or(|c| seen < c) {
        let item = match deadline {
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(item) => item,
                Err(_) => break,
            },
            None => match rx.recv() {
                Ok(item) => item,
                Err(_) => break,
            },
        };
        seen += 1;
        match item {
            Received::Packet(data, peer) => match HepPacket::decode_with(&data, mode) {
                Ok(p) => print_packet(&mut out, &p)?,
                Err(e) => {
                    eprintln!("packet {seen} from {peer}: {e}");
                    ok = false;
                }
            },
            Received::StreamError(e, peer) => {
                eprintln!("stream from {peer}: {e}");
                ok = false;
            }
        }
    }
    if let Some(c) = a.count {
        if seen < c {
            eprintln!("timeout: received {seen} of {c} packets");
            ok = false;
        }
    }
    Ok(ok)
}
