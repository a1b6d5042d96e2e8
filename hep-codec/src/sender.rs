//! `std` sinks: a HEP sender to a UDP/TCP collector with a bounded, dropping queue, and a
//! sink that writes HEP packets to any `Write` (a file).

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::collector::{Collector, CollectorSocket};
use crate::sink::{CaptureEvent, CaptureSink};
use crate::types::Version;
use sip_parser::Transport;

/// How captured messages are wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepConfig {
    /// Capture agent id (chunk 0x000c; 16 bits in HEPv2).
    pub capture_id: u32,
    /// Authentication key, sent when set.
    pub auth_key: Option<Vec<u8>>,
    /// Node name (chunk 0x0013), sent when set.
    pub node_name: Option<Vec<u8>>,
    /// HEP version to send.
    pub version: Version,
}

impl Default for HepConfig {
    fn default() -> Self {
        Self {
            capture_id: 0,
            auth_key: None,
            node_name: None,
            version: Version::V3,
        }
    }
}

impl HepConfig {
    /// Encodes `event` as configured; `None` if it cannot be encoded (e.g. too long).
    pub fn encode(&self, event: &CaptureEvent<'_>) -> Option<Vec<u8>> {
        let mut p = event.to_packet(
            self.capture_id,
            self.auth_key.as_deref(),
            self.node_name.as_deref(),
        );
        p.version = self.version;
        let mut out = Vec::with_capacity(p.encoded_len());
        p.encode(&mut out).ok()?;
        Some(out)
    }
}

/// Counters of a [`HepSender`] or [`WriterSink`].
#[derive(Debug, Default)]
pub struct SinkStats {
    sent: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

impl SinkStats {
    /// Packets handed to the socket / writer.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    /// Messages dropped: queue full, collector unreachable, or not encodable.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// I/O errors seen (each also counts as a drop).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.drop_one();
    }
}

/// Mirrors captured messages to a HEP collector from a background thread.
///
/// [`CaptureSink::capture`] encodes on the caller's thread and hands the packet to a bounded
/// queue with `try_send`: when the queue is full (collector slow) or the collector is gone,
/// the message is dropped and counted, never waited for.
#[derive(Debug)]
pub struct HepSender {
    config: HepConfig,
    tx: Option<SyncSender<Vec<u8>>>,
    stats: Arc<SinkStats>,
    worker: Option<JoinHandle<()>>,
}

/// How long a TCP sender waits before reconnecting after a failure.
const TCP_RETRY: Duration = Duration::from_secs(1);

impl HepSender {
    /// Starts the sender thread. `queue` is the queue capacity in packets (at least 1).
    ///
    /// A UDP socket is opened here (an error is returned now); a TCP collector is connected
    /// by the sender thread, and reconnected after a failure with a back-off, messages being
    /// dropped meanwhile.
    pub fn start(collector: Collector, config: HepConfig, queue: usize) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(queue.max(1));
        let stats = Arc::new(SinkStats::default());
        let st = Arc::clone(&stats);
        let socket = match collector.transport() {
            Transport::Tcp => None,
            _ => Some(collector.connect(TCP_RETRY)?),
        };
        let worker = std::thread::Builder::new()
            .name("hep-sender".into())
            .spawn(move || send_loop(collector, socket, &rx, &st))?;
        Ok(Self {
            config,
            tx: Some(tx),
            stats,
            worker: Some(worker),
        })
    }

    /// Live counters.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// Stops accepting messages, sends what is queued, and returns the final counters.
    pub fn close(mut self) -> Arc<SinkStats> {
        self.shutdown();
        Arc::clone(&self.stats)
    }

    fn shutdown(&mut self) {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The sender thread: sends each queued packet, (re)connecting a TCP collector.
fn send_loop(
    collector: Collector,
    mut socket: Option<CollectorSocket>,
    rx: &Receiver<Vec<u8>>,
    st: &SinkStats,
) {
    let mut retry_at = Instant::now();
    for pkt in rx {
        if socket.is_none() && Instant::now() >= retry_at {
            match collector.connect(TCP_RETRY) {
                Ok(s) => socket = Some(s),
                Err(_) => retry_at = Instant::now() + TCP_RETRY,
            }
        }
        let Some(s) = socket.as_mut() else {
            st.drop_one();
            continue;
        };
        if s.send(&pkt).is_ok() {
            st.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            st.error();
            // A stream may hold part of a packet now: start a new one. A datagram socket
            // is still fine.
            if collector.transport() == Transport::Tcp {
                socket = None;
                retry_at = Instant::now() + TCP_RETRY;
            }
        }
    }
}

impl Drop for HepSender {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl CaptureSink for HepSender {
    fn capture(&self, event: &CaptureEvent<'_>) {
        let Some(tx) = &self.tx else {
            self.stats.drop_one();
            return;
        };
        let Some(pkt) = self.config.encode(event) else {
            self.stats.drop_one();
            return;
        };
        match tx.try_send(pkt) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.stats.drop_one(),
        }
    }
}

/// Writes each captured message as a HEP packet to a writer (e.g. a file), back to back, on
/// the caller's thread. Write errors are counted, not returned.
#[derive(Debug)]
pub struct WriterSink<W: Write> {
    config: HepConfig,
    out: Mutex<W>,
    stats: SinkStats,
}

impl<W: Write> WriterSink<W> {
    /// Wraps a writer.
    pub fn new(out: W, config: HepConfig) -> Self {
        Self {
            config,
            out: Mutex::new(out),
            stats: SinkStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<W: Write> CaptureSink for WriterSink<W> {
    fn capture(&self, event: &CaptureEvent<'_>) {
        let Some(pkt) = self.config.encode(event) else {
            self.stats.drop_one();
            return;
        };
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if out.write_all(&pkt).is_ok() {
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.error();
        }
    }
}
