//! What crosses the boundary between the layer and the caller's I/O: flows (where a message
//! came from or goes), transmits (bytes to send), events for the transaction user, and the
//! [`Output`] buffer both are written into.

use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::Bytes;
use sip_parser::{Message, Transport};

/// The caller's handle for a connection (TCP, TLS, WebSocket), echoed back in transmits so
/// that responses go out on the connection the request came in on (RFC 3261 §18.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Where a message came from or goes: transport, the local socket (listener) and the remote
/// address, plus the connection for stream transports.
///
/// ```
/// use sip_transaction::Flow;
/// use sip_parser::Transport;
/// let f = Flow::udp("127.0.0.1:5060".parse().unwrap(), "127.0.0.1:40000".parse().unwrap());
/// assert_eq!(f.transport, Transport::Udp);
/// assert!(f.conn.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Transport.
    pub transport: Transport,
    /// The local socket the message arrived on or leaves from.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// The connection, for stream transports (`None`: the caller picks or opens one).
    pub conn: Option<ConnId>,
}

impl Flow {
    /// A UDP flow.
    pub fn udp(local: SocketAddr, remote: SocketAddr) -> Self {
        Flow {
            transport: Transport::Udp,
            local,
            remote,
            conn: None,
        }
    }

    /// True for reliable transports (no retransmission timers).
    pub fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }
}

/// Where a transmit goes: an address, or a host name the caller must resolve (a response
/// whose Via names its `maddr` or sent-by as a domain, RFC 3263 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The flow's remote address.
    Addr,
    /// Resolve this host (A/AAAA) and send to the port.
    Host {
        /// Host name as written in the Via.
        host: Bytes,
        /// Port (the transport's default when the Via gave none).
        port: u16,
    },
}

/// Which transaction a transmit belongs to, so a send failure can be reported back with
/// [`TransactionLayer::transport_error`](crate::TransactionLayer::transport_error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxRef {
    /// A server transaction.
    Server(ServerTxId),
    /// A client transaction.
    Client(ClientTxId),
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport, local socket, remote address (and connection).
    pub flow: Flow,
    /// Where exactly: `flow.remote`, or a name to resolve first.
    pub destination: Destination,
    /// The message.
    pub payload: Bytes,
    /// The transaction it belongs to (`None` for stateless sends).
    pub tx: Option<TxRef>,
}

/// A server transaction, as the transaction user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(pub(crate) u64);

/// A client transaction, as the transaction user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(pub(crate) u64);

/// What the layer tells the transaction user (TU).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new request created server transaction `tx`: answer it
    /// ([`respond`](crate::TransactionLayer::respond)) or proxy it
    /// ([`forward`](crate::TransactionLayer::forward)). ACKs never come here.
    Request {
        /// The new server transaction.
        tx: ServerTxId,
        /// The request as received.
        request: Message,
        /// Where it came from.
        flow: Flow,
    },
    /// An ACK that matched no INVITE server transaction: the ACK for a 2xx, which is its own
    /// transaction (RFC 3261 §17.1.1.3, RFC 6026). A proxy forwards it statelessly along the
    /// route; a UAS hands it to its dialog.
    Ack {
        /// The ACK.
        request: Message,
        /// Where it came from.
        flow: Flow,
    },
    /// A CANCEL matched INVITE server transaction `tx`. The layer already answered the
    /// CANCEL with 200 and, for a transaction the TU answers itself, the INVITE with 487
    /// (RFC 3261 §9.2); a proxied INVITE has its pending branches cancelled (§16.10).
    Cancelled {
        /// The INVITE's server transaction.
        tx: ServerTxId,
    },
    /// A response to a client transaction the TU started with
    /// [`send_request`](crate::TransactionLayer::send_request).
    Response {
        /// The client transaction.
        tx: ClientTxId,
        /// The response.
        response: Message,
    },
    /// A TU client transaction ended without a final response: Timer B or F fired (treat
    /// as 408 Request Timeout, RFC 3261 §8.1.3.1).
    Timeout {
        /// The client transaction.
        tx: ClientTxId,
    },
    /// A TU client transaction failed in transport (treat as 503, §8.1.3.1).
    TransportError {
        /// The client transaction.
        tx: ClientTxId,
    },
    /// A response that matched no client transaction and is not for one of our branches: a
    /// proxy forwards it statelessly (§16.7 step 1 ends "process as a stateless proxy"), a
    /// UA drops it.
    StrayResponse {
        /// The response.
        response: Message,
        /// Where it came from.
        flow: Flow,
    },
    /// A response the proxy core forwarded upstream for server transaction `tx` (every
    /// provisional but 100, every 2xx, the chosen final). Dialog tracking and call
    /// statistics read these.
    Forwarded {
        /// The proxied request's server transaction.
        tx: ServerTxId,
        /// Status forwarded.
        status: u16,
        /// The response as received from downstream (before our Via was removed).
        response: Message,
    },
    /// Every branch of proxied transaction `tx` ended without a 2xx or 6xx and the plan
    /// asked for a failure hook ([`ForwardPlan::on_failure`](crate::ForwardPlan)): call
    /// [`forward`](crate::TransactionLayer::forward) with new targets (failover) or
    /// [`finish`](crate::TransactionLayer::finish) to send the best response, `best`.
    BranchesFailed {
        /// The proxied request's server transaction.
        tx: ServerTxId,
        /// The status of the best response so far (408 when every branch timed out).
        best: u16,
        /// The best status of the branches of the latest `forward` (or q group): what a
        /// failover decision looks at (a 486 after an earlier timeout is final).
        last: u16,
    },
    /// Server transaction `tx` ended. `acked` is false when Timer H fired (the final
    /// response to an INVITE was never acknowledged).
    ServerTerminated {
        /// The transaction.
        tx: ServerTxId,
        /// False when an INVITE's final non-2xx response was never ACKed.
        acked: bool,
    },
    /// Client transaction `tx` ended.
    ClientTerminated {
        /// The transaction.
        tx: ClientTxId,
    },
}

/// The caller-owned buffer every layer call writes into: drain `transmits` to the sockets
/// and `events` to the TU after each call, then [`clear`](Self::clear) (or reuse as is).
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to send, in order.
    pub transmits: Vec<Transmit>,
    /// Events for the transaction user, in order.
    pub events: Vec<Event>,
}

impl Output {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties both lists (keeping their capacity).
    pub fn clear(&mut self) {
        self.transmits.clear();
        self.events.clear();
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty() && self.events.is_empty()
    }
}
