//! The `sip_trace` file: one JSON line per SIP message received or sent, with the columns of
//! Kamailio's `sip_trace` table (time, Call-ID, method, status, from/to IP:port, transport,
//! direction, From tag, the message). Written by a thread of its own through a bounded
//! queue, so the SIP path never waits on the disk: when the queue is full the message is
//! dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};

use bytes::Bytes;
use hep_codec::{CaptureEvent, CaptureSink};
use serde::Serialize;
use sip_parser::{Limits, Message};

/// One row.
#[derive(Debug, Serialize)]
struct Row<'a> {
    time: f64,
    callid: &'a str,
    method: &'a str,
    status: Option<u16>,
    fromip: String,
    toip: String,
    transport: &'a str,
    direction: &'a str,
    fromtag: &'a str,
    msg: &'a str,
}

struct Item {
    time: f64,
    src: SocketAddr,
    dst: SocketAddr,
    transport: &'static str,
    direction: &'static str,
    payload: Bytes,
}

/// The sink: give it to the proxy as (part of) its capture.
#[derive(Debug)]
pub struct TraceFile {
    tx: SyncSender<Item>,
    /// Our own addresses: a message from one of them is "out", else "in".
    locals: Vec<SocketAddr>,
    dropped: Arc<AtomicU64>,
}

impl TraceFile {
    /// Appends to `path` (created 0600 when missing); `queue` messages may wait.
    pub fn open(path: &Path, locals: Vec<SocketAddr>, queue: usize) -> io::Result<Self> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file: File = opts
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let (tx, rx) = mpsc::sync_channel::<Item>(queue.max(1));
        std::thread::Builder::new()
            .name("sip-trace".into())
            .spawn(move || {
                let mut w = BufWriter::new(file);
                while let Ok(item) = rx.recv() {
                    write_row(&mut w, &item);
                    // Flush when the queue is drained, not per message.
                    while let Ok(item) = rx.try_recv() {
                        write_row(&mut w, &item);
                    }
                    let _ = w.flush();
                }
            })?;
        Ok(TraceFile {
            tx,
            locals,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Messages dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn write_row(w: &mut impl Write, it: &Item) {
    let Ok(m) = Message::parse_with(it.payload.clone(), &Limits::BUILT) else {
        return;
    };
    let from_tag = m
        .from()
        .ok()
        .and_then(|f| f.tag())
        .unwrap_or_default()
        .to_owned();
    let method = match m.method() {
        Some(x) => x.to_owned(),
        None => m.cseq().map(|c| c.method.to_owned()).unwrap_or_default(),
    };
    let row = Row {
        time: it.time,
        callid: m.call_id().unwrap_or_default(),
        method: &method,
        status: m.status(),
        fromip: it.src.to_string(),
        toip: it.dst.to_string(),
        transport: it.transport,
        direction: it.direction,
        fromtag: &from_tag,
        msg: &String::from_utf8_lossy(&it.payload),
    };
    let _ = serde_json::to_writer(&mut *w, &row);
    let _ = w.write_all(b"\n");
}

impl CaptureSink for TraceFile {
    fn capture(&self, e: &CaptureEvent<'_>) {
        let item = Item {
            time: e.time.since_epoch().as_secs_f64(),
            src: e.src,
            dst: e.dst,
            transport: e.transport.param_value(),
            direction: if self.locals.contains(&e.dst) {
                "in"
            } else {
                "out"
            },
            payload: Bytes::copy_from_slice(e.payload),
        };
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Several sinks as one.
pub struct Fanout(pub Vec<Arc<dyn CaptureSink + Send + Sync>>);

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fanout({} sinks)", self.0.len())
    }
}

impl CaptureSink for Fanout {
    fn capture(&self, e: &CaptureEvent<'_>) {
        for s in &self.0 {
            s.capture(e);
        }
    }
}
