//! Sockets and threads around the sans-IO [`Proxy`]: Kamailio's model. Each UDP listener
//! gets `workers` threads, each blocking on its own `SO_REUSEPORT` socket bound to the same
//! address (the kernel spreads datagrams over them); one timer thread fires the proxy's
//! timers; TCP listeners accept on a thread and read each connection on its own thread
//! (bounded by `limits.max_tcp_connections` and `limits.max_tcp_per_ip`).
//!
//! Everything a thread receives goes to [`Proxy::on_datagram`] / [`Proxy::on_message`] (and
//! stream keep-alives and framing errors to the proxy's counters, as for datagrams), and
//! what comes back is sent at once from the socket of the listener it names.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sip_parser::{Limits, StreamDecoder, StreamItem, Transport};
use sip_transaction::{ConnId, Destination, Flow, Transmit};

/// The timer thread's finest tick: due timers are handled in batches at most this often.
const TIMER_TICK: Duration = Duration::from_millis(10);
/// Longest a TCP listener's accept waits before looking at the stop flag again.
const ACCEPT_WAIT: Duration = Duration::from_millis(200);

/// Whether a socket call ended on its timeout (`SO_RCVTIMEO`: `WouldBlock` on Unix,
/// `TimedOut` elsewhere) rather than on an error.
pub(crate) fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
use socket2::{Domain, Protocol, Socket, Type};

use crate::proxy::{Now, Proxy};

/// The clocks the proxy is given.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// Starts the monotonic clock now.
    pub fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// Both clocks, now.
    pub fn now(&self) -> Now {
        Now {
            mono: self.epoch.elapsed(),
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A UDP socket bound with `SO_REUSEADDR` + `SO_REUSEPORT` and a large receive buffer.
fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Open TCP connections, by id and by peer.
#[derive(Debug, Default)]
struct Conns {
    next: AtomicU64,
    map: Mutex<ConnMap>,
}

#[derive(Debug, Default)]
struct ConnMap {
    by_id: HashMap<u64, Arc<Conn>>,
    by_peer: HashMap<(SocketAddr, SocketAddr), u64>,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    writer: Mutex<TcpStream>,
}

/// The running server: its threads and how to stop them.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved), in the order of the configuration.
    pub bound: Vec<(Transport, SocketAddr)>,
}

#[derive(Debug)]
struct Shared {
    proxy: Arc<Proxy>,
    clock: Clock,
    stop: AtomicBool,
    udp: HashMap<SocketAddr, UdpSocket>,
    conns: Conns,
    max_conns: usize,
    max_per_ip: usize,
    limits: Limits,
}

impl Server {
    /// Binds every listener and starts the threads. `workers` UDP threads per UDP listener
    /// (at least one).
    pub fn start(proxy: Arc<Proxy>, clock: Clock, workers: usize) -> io::Result<Server> {
        let cfg = proxy.config().clone();
        let workers = workers.max(1);
        let mut udp_first = HashMap::new();
        let mut bound = Vec::new();
        let mut tcp = Vec::new();
        for l in &cfg.listen {
            match l.address.transport {
                Transport::Udp => {
                    let s = udp_socket(l.address.addr).map_err(|e| {
                        io::Error::new(e.kind(), format!("udp:{}: {e}", l.address.addr))
                    })?;
                    let addr = s.local_addr()?;
                    bound.push((Transport::Udp, addr));
                    udp_first.insert(addr, s);
                }
                Transport::Tcp => {
                    let s = TcpListener::bind(l.address.addr).map_err(|e| {
                        io::Error::new(e.kind(), format!("tcp:{}: {e}", l.address.addr))
                    })?;
                    // A blocking accept that gives up every ACCEPT_WAIT to look at the stop
                    // flag (Linux's accept honours SO_RCVTIMEO): a connection is taken at
                    // once, and an idle listener wakes 5 times a second, not 50.
                    socket2::SockRef::from(&s).set_read_timeout(Some(ACCEPT_WAIT))?;
                    bound.push((Transport::Tcp, s.local_addr()?));
                    tcp.push(s);
                }
                other => {
                    return Err(io::Error::other(format!(
                        "{other} listeners are not supported"
                    )));
                }
            }
        }
        let shared = Arc::new(Shared {
            limits: Limits {
                max_message_size: cfg.limits.max_message_size,
                ..Limits::DEFAULT
            },
            max_conns: cfg.limits.max_tcp_connections,
            max_per_ip: cfg.limits.max_tcp_per_ip,
            proxy,
            clock,
            stop: AtomicBool::new(false),
            udp: udp_first
                .iter()
                .map(|(a, s)| Ok((*a, s.try_clone()?)))
                .collect::<io::Result<_>>()?,
            conns: Conns::default(),
        });
        let mut threads = Vec::new();
        for (addr, first) in udp_first {
            for i in 0..workers {
                let sock = if i == 0 {
                    first.try_clone()?
                } else {
                    udp_socket(addr)?
                };
                sock.set_read_timeout(Some(Duration::from_millis(100)))?;
                let sh = shared.clone();
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("udp-{addr}-{i}"))
                        .spawn(move || sh.udp_worker(&sock, addr))?,
                );
            }
        }
        for l in tcp {
            let sh = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("tcp-accept".into())
                    .spawn(move || sh.accept(&l))?,
            );
        }
        let sh = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("timers".into())
                .spawn(move || sh.timers())?,
        );
        Ok(Server {
            shared,
            threads,
            bound,
        })
    }

    /// The proxy.
    pub fn proxy(&self) -> &Arc<Proxy> {
        &self.shared.proxy
    }

    /// Stops: the proxy answers new requests 503 while the transactions in flight finish,
    /// for at most `grace`; then every thread ends.
    pub fn shutdown(self, grace: Duration) {
        self.shared.proxy.drain();
        let end = Instant::now() + grace;
        while Instant::now() < end && self.shared.proxy.transactions() > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Ok(m) = self.shared.conns.map.lock() {
            for c in m.by_id.values() {
                if let Ok(w) = c.writer.lock() {
                    let _ = w.shutdown(Shutdown::Both);
                }
            }
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn udp_worker(self: &Arc<Self>, sock: &UdpSocket, local: SocketAddr) {
        let mut buf = vec![0u8; 65_535];
        let mut out = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            match sock.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    self.proxy.on_datagram(
                        self.clock.now(),
                        data,
                        sip_transaction::Flow::udp(local, peer),
                        &mut out,
                    );
                    self.send_all(&mut out);
                }
                Err(e) if timed_out(&e) => {}
                Err(e) => {
                    // ICMP errors surface here on Linux (connection refused): not fatal.
                    tracing::trace!(error = %e, "udp receive");
                }
            }
        }
    }

    fn timers(self: &Arc<Self>) {
        let mut out = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.clock.now();
            // Timers fire in ticks of TIMER_TICK at least: under load the next deadline is
            // always a fraction of a millisecond away, and waking for each one cost more CPU
            // than the timers themselves (Kamailio's timer ticks at 1/16 s).
            let wait = self
                .proxy
                .next_timeout()
                .map_or(Duration::from_millis(50), |t| t.saturating_sub(now.mono))
                .clamp(TIMER_TICK, Duration::from_millis(50));
            std::thread::sleep(wait);
            self.proxy.on_timer(self.clock.now(), &mut out);
            self.send_all(&mut out);
        }
    }

    fn send_all(self: &Arc<Self>, out: &mut Vec<Transmit>) {
        for t in out.drain(..) {
            let remote = match &t.destination {
                Destination::Addr => t.flow.remote,
                Destination::Host { host, port } => {
                    let name = String::from_utf8_lossy(host).into_owned();
                    let resolved = (name.as_str(), *port)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next());
                    let Some(a) = resolved else {
                        tracing::debug!(host = %name, "response destination does not resolve");
                        continue;
                    };
                    a
                }
            };
            match t.flow.transport {
                Transport::Udp => {
                    let sock = self
                        .udp
                        .get(&t.flow.local)
                        .or_else(|| self.udp.values().next());
                    if let Some(s) = sock {
                        if let Err(e) = s.send_to(&t.payload, remote) {
                            tracing::debug!(to = %remote, error = %e, "udp send failed");
                            self.report(t.tx);
                        }
                    }
                }
                Transport::Tcp => {
                    if let Err(e) = self.tcp_send(t.flow, remote, &t.payload) {
                        tracing::debug!(to = %remote, error = %e, "tcp send failed");
                        self.report(t.tx);
                    }
                }
                other => tracing::debug!(transport = %other, "no such transport here"),
            }
        }
    }

    fn report(&self, tx: Option<sip_transaction::TxRef>) {
        if let Some(tx) = tx {
            let mut out = Vec::new();
            self.proxy.transport_error(self.clock.now(), tx, &mut out);
            // Whatever the failure produces (a 503 upstream …) goes out once, without a
            // second report, so a dead peer cannot loop.
            for t in out {
                if t.flow.transport == Transport::Udp {
                    if let Some(s) = self.udp.get(&t.flow.local) {
                        let _ = s.send_to(&t.payload, t.flow.remote);
                    }
                }
            }
        }
    }

    // ---- TCP --------------------------------------------------------------------------

    fn accept(self: &Arc<Self>, l: &TcpListener) {
        let local = l
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        while !self.stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, peer)) => {
                    if let Err(e) = self.adopt(s, local, peer) {
                        tracing::debug!(from = %peer, error = %e, "tcp connection refused");
                    }
                }
                Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Registers a connection (within the limits) and starts its reader thread.
    fn adopt(
        self: &Arc<Self>,
        s: TcpStream,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Arc<Conn>> {
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        let conn = {
            let mut m = self
                .conns
                .map
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            if m.by_id.len() >= self.max_conns {
                return Err(io::Error::other("too many tcp connections"));
            }
            let n = m.per_ip.entry(remote.ip()).or_default();
            if *n >= self.max_per_ip {
                return Err(io::Error::other(
                    "too many tcp connections from this address",
                ));
            }
            *n += 1;
            let id = self.conns.next.fetch_add(1, Ordering::Relaxed) + 1;
            let conn = Arc::new(Conn {
                id,
                local,
                remote,
                writer: Mutex::new(s.try_clone()?),
            });
            m.by_id.insert(id, conn.clone());
            m.by_peer.insert((local, remote), id);
            conn
        };
        let sh = self.clone();
        let c = conn.clone();
        std::thread::Builder::new()
            .name(format!("tcp-{remote}"))
            .spawn(move || {
                sh.read_conn(s, &c);
                sh.forget(&c);
            })?;
        Ok(conn)
    }

    fn forget(&self, c: &Conn) {
        if let Ok(mut m) = self.conns.map.lock() {
            m.by_id.remove(&c.id);
            m.by_peer.remove(&(c.local, c.remote));
            if let Some(n) = m.per_ip.get_mut(&c.remote.ip()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.per_ip.remove(&c.remote.ip());
                }
            }
        }
    }

    fn read_conn(self: &Arc<Self>, mut s: TcpStream, c: &Conn) {
        let mut dec = StreamDecoder::new(self.limits);
        let mut buf = vec![0u8; 16 * 1024];
        let mut out = Vec::new();
        let flow = Flow {
            transport: Transport::Tcp,
            local: c.local,
            remote: c.remote,
            conn: Some(ConnId(c.id)),
        };
        while !self.stop.load(Ordering::Relaxed) {
            let n = match s.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if timed_out(&e) => continue,
                Err(_) => return,
            };
            dec.feed(&buf[..n]);
            loop {
                match dec.decode() {
                    Ok(Some(StreamItem::Message(m))) => {
                        self.proxy.on_message(self.clock.now(), m, flow, &mut out);
                        self.send_all(&mut out);
                    }
                    Ok(Some(StreamItem::Ping)) => {
                        self.proxy.on_stream_keepalive();
                        if let Ok(mut w) = c.writer.lock() {
                            let _ = w.write_all(b"\r\n");
                        }
                    }
                    Ok(Some(StreamItem::Pong)) => self.proxy.on_stream_keepalive(),
                    Ok(None) => break,
                    Err(e) if e.fatal => {
                        self.proxy.on_stream_error(flow, &e);
                        tracing::debug!(from = %c.remote, "tcp framing lost, closing");
                        return;
                    }
                    Err(e) => self.proxy.on_stream_error(flow, &e),
                }
            }
        }
    }

    fn tcp_send(
        self: &Arc<Self>,
        flow: Flow,
        remote: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let existing = {
            let m = self
                .conns
                .map
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            flow.conn
                .and_then(|id| m.by_id.get(&id.0).cloned())
                .or_else(|| {
                    m.by_peer
                        .iter()
                        .find(|((_, r), _)| *r == remote)
                        .and_then(|(_, id)| m.by_id.get(id).cloned())
                })
        };
        let conn = if let Some(c) = existing {
            c
        } else {
            // RFC 3261 §18.1.1 / §18.2.2: open a connection, then keep reading it like an
            // accepted one.
            let s = TcpStream::connect_timeout(&remote, Duration::from_secs(2))?;
            let local = s.local_addr()?;
            self.adopt(s, local, remote)?
        };

        let mut w = conn
            .writer
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        w.write_all(payload)
    }
}

/// Reads a whole file into a string (errors name the file).
pub fn read_file(path: &std::path::Path) -> io::Result<String> {
    let mut s = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ListenAddr, ListenerConfig};
    use crate::proxy::{Parts, SystemResolver};

    fn options(n: u32) -> String {
        format!(
            "OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-tcp-{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:t@localhost>;tag=t{n}\r\nTo: <sip:localhost>\r\n\
             Call-ID: tcp-{n}@test\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// Reads from `s` until `want` has been seen (bounded by the socket's read timeout).
    fn read_until(s: &mut TcpStream, want: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(want) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "waiting for {want:?}: {e}; got {:?}",
                    String::from_utf8_lossy(&got)
                ),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// TCP frames count like datagrams: every frame (message, CRLFCRLF ping, one that does
    /// not parse) in `received`, the ones that do not parse (skipped, or losing the framing
    /// and closing the connection) in `parse_errors`. Loopback only, every wait bounded.
    #[test]
    fn tcp_frames_are_counted_like_datagrams() {
        let cfg = Config {
            listen: vec![ListenerConfig {
                address: ListenAddr {
                    transport: Transport::Tcp,
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                },
                advertise: None,
            }],
            ..Config::default()
        }
        .finish()
        .expect("config");
        let proxy = Proxy::new(
            cfg,
            Parts {
                seed: [7; 32],
                capture: None,
                resolver: Arc::new(SystemResolver),
            },
            Duration::from_secs(1_700_000_000),
        )
        .expect("proxy");
        let server = Server::start(Arc::new(proxy), Clock::new(), 1).expect("server");
        let addr = server.bound[0].1;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(options(1).as_bytes()).unwrap();
        assert!(read_until(&mut s, "tcp-1@test").starts_with("SIP/2.0 200"));
        s.write_all(b"\r\n\r\n").unwrap();
        assert_eq!(read_until(&mut s, "\r\n"), "\r\n", "ping answered");
        // A message that frames (Content-Length known) but does not parse: skipped.
        s.write_all(b"BAD LINE\r\nno colon here\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
        s.write_all(options(2).as_bytes()).unwrap();
        assert!(read_until(&mut s, "tcp-2@test").starts_with("SIP/2.0 200"));
        let stats = &server.proxy().stats;
        assert_eq!(stats.received.get(), 4, "two requests, a ping, a bad frame");
        assert_eq!(stats.parse_errors.get(), 1);
        assert_eq!(stats.requests.get(), 2);
        // A broken Content-Length loses the framing: counted, and the connection closes.
        s.write_all(b"OPTIONS sip:localhost SIP/2.0\r\nContent-Length: x\r\n\r\n")
            .unwrap();
        let rest = read_until(&mut s, "never");
        assert!(rest.is_empty(), "closed without an answer: {rest:?}");
        assert_eq!(stats.received.get(), 5);
        assert_eq!(stats.parse_errors.get(), 2);
        server.shutdown(Duration::ZERO);
    }
}
