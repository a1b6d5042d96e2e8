//! The "typical binding" of issue 11's memory target, shared by `tests/memory.rs` (which
//! asserts the target) and `benches/memory.rs` (which prints the figures): a 40-byte Contact
//! URI, a 30-byte Call-ID, a 25-byte User-Agent, no Path, an IPv4 source and local socket,
//! one binding per AOR (so every AOR's interned text is charged to its binding).

use core::time::Duration;

use sip_location::{
    Binding, BindingFields, Changes, Flags, LocationStore, MemoryConfig, MemoryStore, Op, Source,
};
use sip_parser::Transport;

pub(crate) const T0: u64 = 1_700_000_000;

pub(crate) fn aor(i: usize) -> String {
    format!("sip:u{i:07}@example.com")
}

/// The typical binding number `i`.
pub(crate) fn binding(i: usize) -> Binding {
    let contact = format!("sip:u{i:07}@203.0.113.{:03}:5060;line=abc", i % 256);
    let call_id = format!("{i:010}-a84b4c76e66710@pc33");
    assert_eq!((contact.len(), call_id.len()), (40, 30));
    let ua = "Grandstream GXP2170 1.0.1";
    assert_eq!(ua.len(), 25);
    let mut f = BindingFields::new(&contact, T0 + 3600);
    f.last_modified_ms = T0 * 1000;
    f.q = None;
    f.call_id = &call_id;
    f.cseq = 1;
    f.user_agent = ua;
    f.source = Some(Source {
        addr: format!("198.51.100.{}:{}", i % 250, 1024 + i % 60000)
            .parse()
            .unwrap(),
        transport: Transport::Udp,
        local: Some("192.0.2.1:5060".parse().unwrap()),
        flow: None,
    });
    f.flags = Flags::NAT | Flags::KEEPALIVE;
    Binding::new(&f).unwrap()
}

/// A store sized for `n` bindings.
pub(crate) fn store(n: usize) -> MemoryStore {
    MemoryStore::new(MemoryConfig {
        max_bindings: n.max(1),
        ..MemoryConfig::default()
    })
}

/// Registers bindings `0..n`, one per AOR.
pub(crate) fn fill(store: &MemoryStore, n: usize) {
    let now = Duration::from_secs(T0);
    for i in 0..n {
        let ch = Changes::new(aor(i)).with(Op::Put(binding(i)));
        store.apply(&ch, now).unwrap();
    }
}

/// Resident set size of this process in bytes (Linux), for the "fits in RAM" check.
#[allow(dead_code)] // not every user of this file reads it
pub(crate) fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
