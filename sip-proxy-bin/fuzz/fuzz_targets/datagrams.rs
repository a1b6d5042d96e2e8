//! The whole proxy pipeline (sans-IO: `Proxy::on_datagram` and `on_timer`, in virtual time)
//! fed a sequence of datagrams from a few loopback sources: no panic, every message the
//! proxy sends is one it can read back (`Limits::BUILT`), and the first datagram, when it is
//! a valid request other than ACK, gets an answer or is forwarded (a fresh proxy has no
//! transaction it could be a retransmission of). The finding of 2026-12-03 (no answer to a
//! request at the header limit) is of the kind the last check catches.
//!
//! Input: chunks separated by `\0\0`; a chunk's first byte picks the source and listener
//! (bits 0-1) and how far virtual time moves before it (bits 2-7, in 100 ms steps, timers
//! fired); the rest is the datagram. Nothing leaves the process: the resolver is a table.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_parser::{Limits, Message, Transport};
use sip_proxy::config::Config;
use sip_proxy::proxy::{Now, Parts, Proxy, Resolve};
use sip_transaction::{Flow, Transmit};

const CONFIG: &str = r#"
domains = ["sip.test"]
[[listen]]
address = "udp:127.0.0.1:5060"
[[listen]]
address = "udp:127.0.0.2:5062"
[[upstream]]
name = "default"
targets = ["udp:127.0.0.1:5070", "udp:127.0.0.1:5072"]
probe_interval = 0
"#;

/// Every name resolves to one loopback address: no lookups leave the process.
struct Table;

impl Resolve for Table {
    fn resolve(&self, _host: &str) -> Vec<IpAddr> {
        vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))]
    }
}

fn proxy() -> Proxy {
    let cfg = Config::from_toml(CONFIG, "fuzz.toml")
        .expect("the fuzz configuration parses")
        .finish()
        .expect("the fuzz configuration is valid");
    let parts = Parts {
        seed: [9; 32],
        capture: None,
        resolver: Arc::new(Table),
    };
    Proxy::new(cfg, parts, Duration::from_secs(1_700_000_000)).expect("the proxy builds")
}

fn flow(selector: u8) -> Flow {
    let (local, remote) = match selector & 3 {
        0 => ("127.0.0.1:5060", "127.0.0.1:5080"),
        1 => ("127.0.0.1:5060", "127.0.0.1:5070"),
        2 => ("127.0.0.2:5062", "127.0.0.2:5090"),
        _ => ("127.0.0.1:5060", "127.0.0.1:5072"),
    };
    Flow {
        transport: Transport::Udp,
        local: local.parse::<SocketAddr>().unwrap(),
        remote: remote.parse::<SocketAddr>().unwrap(),
        conn: None,
    }
}

fn check_sent(out: &[Transmit]) {
    for t in out {
        if &t.payload[..] == b"\r\n" {
            continue;
        }
        if let Err(e) = Message::parse_with(t.payload.clone(), &Limits::BUILT) {
            panic!(
                "the proxy sent a message it cannot read back ({e}): {:?}",
                t.payload
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let p = proxy();
    let mut mono = Duration::from_secs(1);
    let mut out = Vec::new();
    let mut rest = data;
    let mut first = true;
    let mut chunks = 0;
    while !rest.is_empty() && chunks < 16 {
        chunks += 1;
        let end = rest
            .windows(2)
            .position(|w| w == b"\0\0")
            .unwrap_or(rest.len());
        let chunk = &rest[..end];
        rest = rest.get(end + 2..).unwrap_or_default();
        let Some((&selector, datagram)) = chunk.split_first() else {
            continue;
        };
        let step = Duration::from_millis(100 * u64::from(selector >> 2));
        if !step.is_zero() {
            mono += step;
            let now = Now {
                mono,
                wall: Duration::from_secs(1_700_000_000) + mono,
            };
            p.on_timer(now, &mut out);
            check_sent(&out);
            out.clear();
        }
        let now = Now {
            mono,
            wall: Duration::from_secs(1_700_000_000) + mono,
        };
        let bytes = Bytes::copy_from_slice(datagram);
        let expect_answer = first
            && Message::parse(bytes.clone())
                .is_ok_and(|m| m.is_request() && m.method() != Some("ACK") && m.validate().is_ok());
        first = false;
        p.on_datagram(now, bytes, flow(selector), &mut out);
        check_sent(&out);
        if expect_answer {
            assert!(
                !out.is_empty(),
                "a valid request got neither an answer nor a forward: {datagram:?}"
            );
        }
        out.clear();
    }
});
