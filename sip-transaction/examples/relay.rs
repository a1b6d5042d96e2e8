//! A stateful, Record-Routing SIP relay over UDP, built on `sip-transaction` and std sockets:
//!
//! ```text
//! cargo run --release -p sip-transaction --example relay -- \
//!     --listen 127.0.0.1:5060 --forward 127.0.0.1:5070
//! ```
//!
//! Dialog-initial requests go to `--forward`, statefully and Record-Routed; in-dialog requests
//! (and anything the forward side sends) follow their Route set or Request-URI. One thread:
//! the socket's read timeout is the layer's next timer. Host names are not resolved (an
//! application would do RFC 3263 here); literal IP addresses are.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_parser::{Message, ResponseBuilder, Transport, Uri};
use sip_transaction::{
    Config, Destination, Event, Flow, ForwardPlan, Listener, NextHop, Output, Target,
    TransactionLayer,
};

fn main() -> std::io::Result<()> {
    let (listen, forward) = args();
    let socket = UdpSocket::bind(listen)?;
    let listen = socket.local_addr()?; // the real port when given port 0
    let cfg = Config {
        listeners: vec![Listener::new(Transport::Udp, listen)],
        ..Config::default()
    };
    let layer = TransactionLayer::with_random_seed(&cfg);
    let epoch = Instant::now(); // the layer's time is a Duration since any fixed instant
    let mut out = Output::new();
    let mut buf = vec![0u8; 65_535];
    println!("relay listening on {listen}, forwarding to {forward}");
    loop {
        // Sleep until a datagram arrives or the next timer is due.
        let wait = layer.next_timeout().map_or(Duration::from_secs(1), |t| {
            t.saturating_sub(epoch.elapsed())
        });
        socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let msg = Message::parse(Bytes::copy_from_slice(&buf[..n]));
                if let Ok(msg) = msg {
                    // A full table or an unmatchable request is dropped here; a real proxy
                    // answers 503 / 400 statelessly.
                    let _ = layer.receive(epoch.elapsed(), msg, Flow::udp(listen, from), &mut out);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => eprintln!("recv: {e}"),
        }
        let now = epoch.elapsed();
        layer.handle_timeout(now, &mut out);
        // Events may queue more transmits: take them out first.
        for event in std::mem::take(&mut out.events) {
            on_event(&layer, now, event, listen, forward, &mut out);
        }
        for t in out.transmits.drain(..) {
            let to = match t.destination {
                Destination::Addr => Some(t.flow.remote),
                Destination::Host { host, port } => resolve(&host, Some(port)),
            };
            if let Some(to) = to {
                let _ = socket.send_to(&t.payload, to); // UDP: retransmissions cover losses
            }
        }
        out.events.clear(); // nothing to tell anyone about the rest
    }
}

/// The routing logic: the whole "script" of this proxy.
fn on_event(
    layer: &TransactionLayer,
    now: Duration,
    event: Event,
    listen: SocketAddr,
    forward: SocketAddr,
    out: &mut Output,
) {
    match event {
        // A new server transaction: pick a destination and proxy it statefully.
        Event::Request { tx, request, flow } => {
            let in_dialog = request.to().is_ok_and(|t| t.tag().is_some());
            let dest = if in_dialog || flow.remote == forward {
                next_hop(layer, &request).filter(|&a| a != listen)
            } else {
                Some(forward)
            };
            let Some(dest) = dest else {
                let resp = ResponseBuilder::new(&request, 404, "Not Found").build();
                if let Ok(resp) = Message::parse(resp) {
                    let _ = layer.respond(now, tx, &resp, out);
                }
                return;
            };
            let plan = ForwardPlan {
                targets: vec![Target::to(Flow::udp(listen, dest))],
                record_route: !in_dialog, // stay on the path of the dialog it creates
                ..ForwardPlan::default()
            };
            // 483 / 482 are answered by the layer itself.
            let _ = layer.forward(now, tx, plan, out);
        }
        // The ACK for a 2xx is a transaction of its own: relay it statelessly along its route.
        Event::Ack { request, flow } => {
            if let Some(dest) = next_hop(layer, &request).filter(|&a| a != listen) {
                let target = Target::to(Flow::udp(listen, dest));
                let _ = layer.relay(&request, flow, &target, false, out);
            }
        }
        // A response no transaction is waiting for (a 2xx retransmission after the INVITE
        // transaction ended): back along its Via, statelessly.
        Event::StrayResponse { response, .. } => {
            let _ = layer.relay_response(&response, out);
        }
        // CANCEL, timeouts, forwarded responses: the layer handled them.
        _ => {}
    }
}

/// Where a request goes after Route processing: the first Route entry not ours, else the
/// Request-URI.
fn next_hop(layer: &TransactionLayer, request: &Message) -> Option<SocketAddr> {
    let (NextHop::Route(raw) | NextHop::RequestUri(raw)) = layer.next_hop(request);
    let uri = Uri::parse(raw).ok()?;
    resolve(uri.host.as_bytes(), uri.port)
}

/// A literal IP address (`[v6]` too) and port, the SIP default 5060 when none is given.
fn resolve(host: &[u8], port: Option<u16>) -> Option<SocketAddr> {
    let host = std::str::from_utf8(host).ok()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port.unwrap_or(5060)))
}

/// `--listen IP:PORT --forward IP:PORT`, or a usage message.
fn args() -> (SocketAddr, SocketAddr) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut listen, mut forward, mut bad) = (None, None, false);
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1).and_then(|v| v.parse().ok())) {
            ("--listen", Some(a)) => listen = Some(a),
            ("--forward", Some(a)) => forward = Some(a),
            _ => bad = true,
        }
    }
    if let (false, Some(l), Some(f)) = (bad, listen, forward) {
        return (l, f);
    }
    eprintln!("usage: relay --listen IP:PORT --forward IP:PORT");
    std::process::exit(2);
}
