#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod chunk;
mod collector;
mod decode;
mod encode;
mod error;
#[cfg(feature = "gzip")]
pub mod gzip;
mod packet;
#[cfg(feature = "std")]
mod sender;
mod sink;
mod stream;
mod types;

pub use bytes;
pub use sip_parser::Transport;

pub use chunk::{ChunkIter, RawChunk};
pub use collector::{Collector, UnsupportedCollectorTransport};
#[cfg(feature = "std")]
pub use collector::{CollectorAddrError, CollectorSocket};
pub use decode::Mode;
pub use encode::{CANONICAL_ORDER, MAX_PACKET_LEN};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use packet::{CHUNK_ORDER_CAPACITY, ChunkOrder, HepPacket, OrderEntry};
#[cfg(feature = "std")]
pub use sender::{HepConfig, HepSender, SinkStats, WriterSink};
pub use sink::{CaptureEvent, CaptureSink, NullSink};
pub use stream::{Packets, StreamDecoder, frame_len};
pub use types::{AddressFamily, Endpoint, IpProto, ProtoType, Timestamp, TimestampError, Version};
