//! The alternative I/O core measured against [`crate::net`]: UDP on a multi-thread `tokio`
//! runtime of `workers` threads. Each UDP listener gets `workers` `SO_REUSEPORT` sockets,
//! each read by its own task (receive → [`Proxy::on_datagram`] → send), and one task fires
//! the proxy's timers. UDP only: TCP listeners are refused (`--io threads` serves them).
//!
//! Selected with the hidden flag `--io tokio`; `docs/architecture.md` ("I/O core") has the
//! measurement that decided the default.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use sip_parser::Transport;
use sip_transaction::{Destination, Flow, Transmit};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

use crate::net::Clock;
use crate::proxy::Proxy;

/// The running tokio server.
#[derive(Debug)]
pub struct Server {
    rt: Runtime,
    proxy: Arc<Proxy>,
    /// The addresses actually bound (port 0 resolved), in the order of the configuration.
    pub bound: Vec<(Transport, SocketAddr)>,
}

#[derive(Debug)]
struct Shared {
    proxy: Arc<Proxy>,
    clock: Clock,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
}

impl Server {
    /// Binds every UDP listener (`workers` sockets each) and starts the runtime.
    pub fn start(proxy: Arc<Proxy>, clock: Clock, workers: usize) -> io::Result<Server> {
        let workers = workers.max(1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("udp-tokio")
            .enable_io()
            .enable_time()
            .build()?;
        let _guard = rt.enter();
        let mut bound = Vec::new();
        let mut sockets = Vec::new();
        let mut udp = HashMap::new();
        for l in &proxy.config().listen {
            if l.address.transport != Transport::Udp {
                return Err(io::Error::other(format!(
                    "{}: --io tokio serves UDP listeners only",
                    l.address
                )));
            }
            let first = crate::net::udp_socket(l.address.addr)
                .map_err(|e| io::Error::new(e.kind(), format!("udp:{}: {e}", l.address.addr)))?;
            let addr = first.local_addr()?;
            bound.push((Transport::Udp, addr));
            for i in 0..workers {
                let s = if i == 0 {
                    first.try_clone()?
                } else {
                    crate::net::udp_socket(addr)?
                };
                s.set_nonblocking(true)?;
                let s = Arc::new(UdpSocket::from_std(s)?);
                udp.entry(addr).or_insert_with(|| s.clone());
                sockets.push((addr, s));
            }
        }
        let shared = Arc::new(Shared {
            proxy: proxy.clone(),
            clock,
            udp,
        });
        for (addr, s) in sockets {
            rt.spawn(shared.clone().udp_task(s, addr));
        }
        rt.spawn(shared.timers());
        drop(_guard);
        Ok(Server { rt, proxy, bound })
    }

    /// Stops: the proxy answers new requests 503 while the transactions in flight finish,
    /// for at most `grace`; then the runtime ends.
    pub fn shutdown(self, grace: Duration) {
        self.proxy.drain();
        let end = std::time::Instant::now() + grace;
        while std::time::Instant::now() < end && self.proxy.transactions() > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.rt.shutdown_timeout(Duration::from_secs(1));
    }
}

impl Shared {
    async fn udp_task(self: Arc<Self>, sock: Arc<UdpSocket>, local: SocketAddr) {
        let mut buf = vec![0u8; 65_535];
        let mut out = Vec::new();
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, peer)) => {
                    let data = bytes::Bytes::copy_from_slice(&buf[..n]);
                    self.proxy.on_datagram(
                        self.clock.now(),
                        data,
                        Flow::udp(local, peer),
                        &mut out,
                    );
                    self.send_all(&mut out).await;
                }
                Err(e) => tracing::trace!(error = %e, "udp receive"),
            }
        }
    }

    async fn timers(self: Arc<Self>) {
        let mut out = Vec::new();
        loop {
            let now = self.clock.now();
            let wait = self
                .proxy
                .next_timeout()
                .map_or(Duration::from_millis(50), |t| t.saturating_sub(now.mono))
                .min(Duration::from_millis(50));
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            self.proxy.on_timer(self.clock.now(), &mut out);
            self.send_all(&mut out).await;
        }
    }

    async fn send_all(&self, out: &mut Vec<Transmit>) {
        for t in out.drain(..) {
            let remote = match &t.destination {
                Destination::Addr => t.flow.remote,
                Destination::Host { host, port } => {
                    let name = String::from_utf8_lossy(host).into_owned();
                    match (name.as_str(), *port)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                    {
                        Some(a) => a,
                        None => continue,
                    }
                }
            };
            if t.flow.transport != Transport::Udp {
                tracing::debug!(transport = %t.flow.transport, "--io tokio sends UDP only");
                continue;
            }
            let Some(s) = self
                .udp
                .get(&t.flow.local)
                .or_else(|| self.udp.values().next())
            else {
                continue;
            };
            let sent = match s.try_send_to(&t.payload, remote) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    s.send_to(&t.payload, remote).await
                }
                r => r,
            };
            if let Err(e) = sent {
                tracing::debug!(to = %remote, error = %e, "udp send failed");
                if let Some(tx) = t.tx {
                    let mut again = Vec::new();
                    self.proxy.transport_error(self.clock.now(), tx, &mut again);
                    for t in again {
                        if let Some(s) = self.udp.get(&t.flow.local) {
                            let _ = s.try_send_to(&t.payload, t.flow.remote);
                        }
                    }
                }
            }
        }
    }
}
