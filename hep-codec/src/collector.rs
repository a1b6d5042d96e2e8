//! Where captured messages go: a HEP collector's transport and address, and (with `std`) the
//! socket that reaches it.

use core::fmt;
use core::net::SocketAddr;

use sip_parser::Transport;

/// A HEP collector (HOMER/heplify-server, Kamailio `sipcapture`, `sngrep -L`): UDP, one
/// packet per datagram, or TCP, HEPv3 packets back to back. Printed as `udp:192.0.2.9:9060`
/// (the transport spelled as in a `transport=` URI parameter).
///
/// ```
/// use hep_codec::{Collector, Transport, UnsupportedCollectorTransport};
///
/// let c = Collector::udp("192.0.2.9:9060".parse().unwrap());
/// assert_eq!(c.transport(), Transport::Udp);
/// assert_eq!(c.to_string(), "udp:192.0.2.9:9060");
/// assert_eq!(
///     Collector::new(Transport::Tcp, "[2001:db8::9]:9060".parse().unwrap()).unwrap().to_string(),
///     "tcp:[2001:db8::9]:9060"
/// );
/// let tls = Collector::new(Transport::Tls, "192.0.2.9:9061".parse().unwrap());
/// assert_eq!(tls, Err(UnsupportedCollectorTransport(Transport::Tls)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collector {
    transport: Transport,
    addr: SocketAddr,
}

/// A transport a HEP collector is not reached over (only UDP and TCP are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a HEP collector is reached over UDP or TCP, not {0}")]
pub struct UnsupportedCollectorTransport(pub Transport);

impl Collector {
    /// A collector reached over UDP.
    pub const fn udp(addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Udp,
            addr,
        }
    }

    /// A collector reached over TCP.
    pub const fn tcp(addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Tcp,
            addr,
        }
    }

    /// A collector reached over `transport`, which must be UDP or TCP.
    pub const fn new(
        transport: Transport,
        addr: SocketAddr,
    ) -> Result<Self, UnsupportedCollectorTransport> {
        match transport {
            Transport::Udp | Transport::Tcp => Ok(Self { transport, addr }),
            other => Err(UnsupportedCollectorTransport(other)),
        }
    }

    /// UDP or TCP.
    pub const fn transport(&self) -> Transport {
        self.transport
    }

    /// The collector's address.
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl fmt::Display for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.param_value(), self.addr)
    }
}

#[cfg(feature = "std")]
pub use socket::{CollectorAddrError, CollectorSocket};

#[cfg(feature = "std")]
mod socket {
    use std::io::{self, Write};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
    use std::time::Duration;

    use super::{Collector, Transport, UnsupportedCollectorTransport};

    /// An open way to a [`Collector`]: a UDP socket, or a TCP connection.
    #[derive(Debug)]
    pub struct CollectorSocket {
        inner: Inner,
    }

    #[derive(Debug)]
    enum Inner {
        Udp(UdpSocket, SocketAddr),
        Tcp(TcpStream),
    }

    /// Why `udp:HOST:PORT` / `tcp:HOST:PORT` names no collector.
    #[derive(Debug, thiserror::Error)]
    pub enum CollectorAddrError {
        /// Not `TRANSPORT:HOST:PORT`.
        #[error("`{0}`: expected udp:HOST:PORT or tcp:HOST:PORT")]
        Syntax(String),
        /// The host did not resolve.
        #[error("`{0}`: {1}")]
        Resolve(String, io::Error),
        /// TLS, SCTP …
        #[error("`{0}`: {1}")]
        Transport(String, UnsupportedCollectorTransport),
    }

    impl Collector {
        /// Reads `udp:HOST:PORT` or `tcp:HOST:PORT`; HOST may be a name, its first address
        /// is taken (the system resolver).
        ///
        /// ```
        /// let c = hep_codec::Collector::resolve("udp:127.0.0.1:9060").unwrap();
        /// assert_eq!(c.to_string(), "udp:127.0.0.1:9060");
        /// assert!(hep_codec::Collector::resolve("tls:127.0.0.1:9060").is_err());
        /// ```
        pub fn resolve(s: &str) -> Result<Self, CollectorAddrError> {
            use std::net::ToSocketAddrs;
            let syntax = || CollectorAddrError::Syntax(s.to_owned());
            let (transport, host_port) = s.split_once(':').ok_or_else(syntax)?;
            let transport = transport.parse::<Transport>().map_err(|_| syntax())?;
            let addr = host_port
                .to_socket_addrs()
                .map_err(|e| CollectorAddrError::Resolve(s.to_owned(), e))?
                .next()
                .ok_or_else(syntax)?;
            Collector::new(transport, addr)
                .map_err(|e| CollectorAddrError::Transport(s.to_owned(), e))
        }

        /// Opens the way to the collector. UDP: a socket bound to an ephemeral port on the
        /// unspecified address of the collector's family (`0.0.0.0` or `::`). TCP: a
        /// connection (Nagle off), waiting at most `timeout` for it.
        pub fn connect(&self, timeout: Duration) -> io::Result<CollectorSocket> {
            let inner = if self.transport == Transport::Tcp {
                let s = TcpStream::connect_timeout(&self.addr, timeout)?;
                s.set_nodelay(true)?;
                Inner::Tcp(s)
            } else {
                let any: SocketAddr = if self.addr.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                Inner::Udp(UdpSocket::bind(any)?, self.addr)
            };
            Ok(CollectorSocket { inner })
        }
    }

    impl CollectorSocket {
        /// Sends one encoded HEP packet: one datagram, or written whole to the connection.
        /// After a TCP error the stream may hold part of a packet: open a new connection.
        pub fn send(&mut self, packet: &[u8]) -> io::Result<()> {
            match &mut self.inner {
                Inner::Udp(sock, to) => sock.send_to(packet, *to).map(drop),
                Inner::Tcp(conn) => conn.write_all(packet),
            }
        }

        /// The local address the packets leave from.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            match &self.inner {
                Inner::Udp(sock, _) => sock.local_addr(),
                Inner::Tcp(conn) => conn.local_addr(),
            }
        }
    }
}
