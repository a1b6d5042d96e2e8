//! Batched UDP receive and send (`recvmmsg` / `sendmmsg`, Linux), through `nix`'s safe
//! wrappers: one system call moves up to [`BATCH`] datagrams. Measured against one
//! `recv_from` / `send_to` per datagram; see `docs/architecture.md` ("I/O core").

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};

/// Datagrams per system call.
pub const BATCH: usize = 16;
const SIZE: usize = 65_535;

/// Receive buffers and headers for one socket.
#[derive(Debug)]
pub struct RecvBatch {
    buf: Vec<u8>,
    hdrs: MultiHeaders<SockaddrStorage>,
    got: Vec<(usize, SocketAddr)>,
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    a.as_sockaddr_in()
        .map(|a| SocketAddr::from(*a))
        .or_else(|| a.as_sockaddr_in6().map(|a| SocketAddr::from(*a)))
}

impl RecvBatch {
    /// Buffers for [`BATCH`] datagrams of up to 64 KiB.
    pub fn new() -> Self {
        RecvBatch {
            buf: vec![0; BATCH * SIZE],
            hdrs: MultiHeaders::preallocate(BATCH, None),
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Blocks until at least one datagram is there (or the socket's read timeout), then
    /// takes every one queued, up to [`BATCH`]. Returns how many.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        let mut chunks = self.buf.chunks_mut(SIZE);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let res = recvmmsg(
            sock.as_raw_fd(),
            &mut self.hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        for r in res {
            if let Some(a) = r.address.as_ref().and_then(to_std) {
                self.got.push((r.bytes, a));
            }
        }
        Ok(self.got.len())
    }

    /// The `i`th datagram of the last [`RecvBatch::recv`] and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (n, a) = *self.got.get(i)?;
        let start = i.checked_mul(SIZE)?;
        Some((self.buf.get(start..start + n.min(SIZE))?, a))
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// Headers for batched sends from one socket.
#[derive(Debug)]
pub struct SendBatch {
    hdrs: MultiHeaders<SockaddrStorage>,
}

impl SendBatch {
    /// Headers for [`BATCH`] datagrams.
    pub fn new() -> Self {
        SendBatch {
            hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Sends up to [`BATCH`] datagrams in one call; returns how many went (the rest, from
    /// the first that failed, are the caller's to retry one by one).
    pub fn send(&mut self, sock: &UdpSocket, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        let msgs = msgs.get(..BATCH.min(msgs.len())).unwrap_or_default();
        let slices: Vec<[IoSlice<'_>; 1]> = msgs.iter().map(|(p, _)| [IoSlice::new(p)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = msgs
            .iter()
            .map(|(_, a)| Some(SockaddrStorage::from(*a)))
            .collect();
        let no_cmsg: [ControlMessage<'_>; 0] = [];
        let res = sendmmsg(
            sock.as_raw_fd(),
            &mut self.hdrs,
            slices.iter(),
            addrs,
            no_cmsg,
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(res.count())
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}
