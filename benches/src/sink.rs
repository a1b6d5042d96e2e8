//! Where `proxy_fields` puts the values it reads.

use core::fmt;
use core::hint::black_box;
use std::collections::BTreeMap;

/// The header fields a proxy reads on every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// Request method.
    Method,
    /// Request-URI.
    RequestUri,
    /// Response status code.
    Status,
    /// `branch` parameter of the topmost Via.
    TopViaBranch,
    /// Call-ID.
    CallId,
    /// CSeq sequence number.
    CSeqSeq,
    /// CSeq method.
    CSeqMethod,
    /// `tag` parameter of From.
    FromTag,
    /// `tag` parameter of To.
    ToTag,
    /// Max-Forwards.
    MaxForwards,
    /// URI of the first Route entry.
    FirstRoute,
    /// Content-Length.
    ContentLength,
}

/// Receives the values `proxy_fields` reads. Absent optional values are simply not reported.
pub trait Sink {
    /// A textual value (branch, Call-ID, tag).
    fn text(&mut self, field: Field, value: &[u8]);
    /// A numeric value (status, CSeq number, Max-Forwards, Content-Length).
    fn num(&mut self, field: Field, value: u64);
    /// A typed value with a textual form (a method).
    fn shown<T: fmt::Display + ?Sized>(&mut self, field: Field, value: &T);
    /// A typed value the benchmark only has to touch (a parsed URI).
    fn opaque<T: ?Sized>(&mut self, field: Field, value: &T);
}

/// The benchmark sink: every value goes through [`black_box`], nothing else happens.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlackBox;

impl Sink for BlackBox {
    #[inline]
    fn text(&mut self, _field: Field, value: &[u8]) {
        black_box(value);
    }
    #[inline]
    fn num(&mut self, _field: Field, value: u64) {
        black_box(value);
    }
    #[inline]
    fn shown<T: fmt::Display + ?Sized>(&mut self, _field: Field, value: &T) {
        black_box(value);
    }
    #[inline]
    fn opaque<T: ?Sized>(&mut self, _field: Field, value: &T) {
        black_box(value);
    }
}

/// The test sink: records every value as text, keyed by field.
#[derive(Debug, Default, Clone)]
pub struct Record(pub BTreeMap<Field, String>);

impl Sink for Record {
    fn text(&mut self, field: Field, value: &[u8]) {
        self.0
            .insert(field, String::from_utf8_lossy(value).into_owned());
    }
    fn num(&mut self, field: Field, value: u64) {
        self.0.insert(field, value.to_string());
    }
    fn shown<T: fmt::Display + ?Sized>(&mut self, field: Field, value: &T) {
        self.0.insert(field, value.to_string());
    }
    fn opaque<T: ?Sized>(&mut self, field: Field, _value: &T) {
        self.0.insert(field, "<present>".to_owned());
    }
}
