#![allow(clippy::cast_precision_loss, reason = "ratios of counts for display")]
//! What one binding and one dialog cost in Redis: registers `N` AORs (one binding each,
//! fields as a typical phone's REGISTER fills them) through the proxy's Redis location store
//! and prints Redis's `used_memory` growth per binding and `MEMORY USAGE` of one AOR's key;
//! then writes `N / 10` confirmed dialogs through the dialog store and prints the growth per
//! dialog (its hash, its Call-ID index entry and its due-bucket entry). Used for the figures in
//! `docs/scaling.md`.
//!
//! ```text
//! redis-server --port 6390 --save '' --appendonly no &
//! cargo run --release -p sip-proxy --example redis_footprint -- redis://127.0.0.1:6390/ 100000
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip_dialog::DialogStore as _;
use sip_location::{Binding, BindingFields, Changes, LocationStore, Op, Source};
use sip_parser::Transport;
use sip_proxy::config::RedisConfig;
use sip_proxy::redis::Shared;

fn used_memory(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(c)
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let n: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
    redis::cmd("FLUSHDB").exec(&mut conn)?;
    let before = used_memory(&mut conn);
    let target = sip_proxy::redis::Target::Single(url.clone());
    let shared = Shared::start(&RedisConfig::default(), &target, 10)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let expires = now.as_secs() + 3600;
    let started = Instant::now();
    for i in 0..n {
        let aor = format!("sip:user{i:07}@example.com");
        let contact = format!("sip:user{i:07}@198.51.100.{}:5060;transport=udp", i % 250);
        let call_id = format!("{:032x}@198.51.100.{}", i * 7919, i % 250);
        let addr: SocketAddr = format!("198.51.100.{}:{}", i % 250, 5060 + i % 1000).parse()?;
        let b = Binding::new(&BindingFields {
            last_modified_ms: u64::try_from(now.as_millis())?,
            call_id: &call_id,
            cseq: 1,
            user_agent: "Linphone/5.2.5 (belle-sip/5.2.0)",
            source: Some(Source::new(addr, Transport::Udp)),
            ..BindingFields::new(&contact, expires)
        })?;
        shared
            .location
            .apply(&Changes::new(aor).with(Op::Put(b)), now)?;
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let after = used_memory(&mut conn);
    let sample: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("sp:loc:{sip:user0000000@example.com}")
        .arg("SAMPLES")
        .arg(0)
        .query(&mut conn)?;
    let encoded: Vec<Vec<u8>> = redis::cmd("HGETALL")
        .arg("sp:loc:{sip:user0000000@example.com}")
        .query(&mut conn)?;
    let binding_len = encoded.get(3).map_or(0, Vec::len);
    println!(
        "bindings written: {n} in {elapsed:.2?} ({:.0}/s, one client thread)",
        n as f64 / elapsed.as_secs_f64()
    );
    println!("encoded binding: {binding_len} bytes");
    println!("MEMORY USAGE of one AOR key: {sample} bytes");
    println!(
        "used_memory growth: {} bytes = {:.0} bytes per binding",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / n as f64
    );
    let dialogs = n / 10;
    let before = used_memory(&mut conn);
    for i in 0..dialogs {
        let mut r = sip_dialog::doc_record();
        r.id = sip_dialog::DialogUid(1_000_000 + i as u64);
        r.call_id = format!("{:032x}@198.51.100.{}", i * 104_729, i % 250).into();
        r.timeout = now + Duration::from_secs(3600);
        r.caller_contact = format!("sip:user{i:07}@198.51.100.{}:5060", i % 250).into();
        shared.dialogs.put(&r)?;
    }
    let after = used_memory(&mut conn);
    println!(
        "dialogs written: {dialogs}; used_memory growth {} bytes = {:.0} bytes per dialog",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / dialogs.max(1) as f64
    );
    Ok(())
}
