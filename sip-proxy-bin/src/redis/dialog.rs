//! [`RedisDialogs`]: the [`DialogStore`] every node shares, so that a dialog created through
//! node A is known to node B, and each dialog's lifetime is ended by exactly one node.
//!
//! A dialog is the hash `PREFIX:dlg:{ID}` (fields `rev`, `timeout` in Unix ms, `cid` its
//! Call-ID, `rec` the record as JSON); its id is also in the set `PREFIX:dlg:cid:{CALL-ID}`
//! (to find it from an in-dialog request) and in the sorted set `PREFIX:dlg:due` scored by
//! its timeout. Only the dialog's own hash is written by scripts, so each decision is atomic
//! and touches one slot (Redis Cluster); the two indexes are written after it, may briefly
//! list an id whose hash is gone, and every reader checks the hash.
//!
//! * `put` keeps the highest `rev` and refuses a rev at or below a removal's tombstone
//!   (`gone`, kept an hour);
//! * `claim_expired` is one script: if the stored timeout has passed, the hash becomes a
//!   tombstone and the caller gets the record; a second caller — another node seeing the same
//!   deadline — finds the tombstone and gets [`Claim::Absent`]. So each dialog's timeout
//!   fires on exactly one node, whichever nodes track it and whichever died;
//! * `expired` lists the due ids, earliest first, for every node's periodic reaping.

use std::sync::Arc;
use std::time::Duration;

use ::redis::{Connection, RedisResult, Script};
use serde_json::{Value, json};
use sip_dialog::{
    Claim, DialogFlags, DialogRecord, DialogState, DialogStore, DialogUid, StoreError,
};

use super::pool::{Error, Pool};

/// Tombstones and records of dialogs nobody ended are kept this long past their timeout.
const GRACE_MS: u64 = 3_600_000;

/// KEYS[1] the dialog; ARGV rev, timeout ms, call-id, record, expiry ms. 1: written.
const PUT: &str = r"
local rev = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '-1')
local gone = tonumber(redis.call('HGET', KEYS[1], 'gone') or '-1')
if rev <= cur or rev <= gone then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'timeout', ARGV[2], 'cid', ARGV[3], 'rec', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
";

/// KEYS[1] the dialog; ARGV rev, tombstone ms.
const REMOVE: &str = r"
local gone = tonumber(redis.call('HGET', KEYS[1], 'gone') or '-1')
local rev = tonumber(ARGV[1])
if gone > rev then rev = gone end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gone', rev)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// KEYS[1] the dialog; ARGV now ms, tombstone ms. Returns 'C'..record (claimed),
/// 'R'..record (not due) or '' (absent).
const CLAIM: &str = r"
local t = redis.call('HGET', KEYS[1], 'timeout')
if not t then return '' end
local rec = redis.call('HGET', KEYS[1], 'rec')
if tonumber(t) > tonumber(ARGV[1]) then return 'R' .. rec end
local rev = redis.call('HGET', KEYS[1], 'rev')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gone', tonumber(rev) + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'C' .. rec
";

/// The shared dialog store (see the module documentation).
pub struct RedisDialogs {
    pool: Arc<Pool>,
    prefix: String,
    put: Script,
    remove: Script,
    claim: Script,
}

impl std::fmt::Debug for RedisDialogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDialogs")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Times in the record: nanoseconds since the Unix epoch (exact for 500 years).
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn err(op: &'static str, id: Option<DialogUid>) -> impl FnOnce(Error) -> StoreError {
    move |e| match e {
        Error::Unavailable(detail) => StoreError::Unavailable { op, detail },
        Error::Backend(b) => StoreError::Failed {
            op,
            id,
            detail: b.to_string(),
        },
    }
}

/// The record as JSON (every field of Kamailio's `dialog` table row).
pub(super) fn encode(r: &DialogRecord) -> String {
    fn pairs(v: &[(Box<str>, Box<str>)]) -> Vec<[&str; 2]> {
        v.iter().map(|(a, b)| [&**a, &**b]).collect()
    }
    json!({
        "id": r.id.0,
        "rev": r.rev,
        "state": r.state.number(),
        "call_id": &*r.call_id,
        "from_uri": &*r.from_uri,
        "from_tag": &*r.from_tag,
        "to_uri": &*r.to_uri,
        "to_tag": &*r.to_tag,
        "caller_cseq": r.caller_cseq,
        "callee_cseq": r.callee_cseq,
        "caller_route_set": r.caller_route_set.iter().map(|s| &**s).collect::<Vec<_>>(),
        "callee_route_set": r.callee_route_set.iter().map(|s| &**s).collect::<Vec<_>>(),
        "caller_contact": &*r.caller_contact,
        "callee_contact": &*r.callee_contact,
        "caller_socket": String::from_utf8_lossy(&r.caller_socket),
        "callee_socket": String::from_utf8_lossy(&r.callee_socket),
        "created_ns": ns(r.created),
        "start_ns": ns(r.start_time),
        "timeout_ns": ns(r.timeout),
        "lifetime_ns": ns(r.lifetime),
        "flags": r.flags.0,
        "sflags": r.sflags,
        "request_uri": &*r.request_uri,
        "profiles": pairs(&r.profiles),
        "vars": pairs(&r.vars),
    })
    .to_string()
}

/// A profile or variable: (name, value).
type Pair = (Box<str>, Box<str>);

/// A record written by [`encode`].
pub(super) fn decode(text: &[u8]) -> Result<DialogRecord, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let s = |k: &str| -> Result<Box<str>, String> {
        v.get(k)
            .and_then(Value::as_str)
            .map(Box::from)
            .ok_or_else(|| format!("no `{k}`"))
    };
    let n = |k: &str| -> Result<u64, String> {
        v.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("no `{k}`"))
    };
    let n32 = |k: &str| -> Result<u32, String> {
        u32::try_from(n(k)?).map_err(|_| format!("`{k}` out of range"))
    };
    let list = |k: &str| -> Result<Vec<Box<str>>, String> {
        v.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("no `{k}`"))?
            .iter()
            .map(|x| x.as_str().map(Box::from).ok_or_else(|| format!("`{k}`")))
            .collect()
    };
    let pairs = |k: &str| -> Result<Vec<Pair>, String> {
        v.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("no `{k}`"))?
            .iter()
            .map(|p| {
                match (
                    p.get(0).and_then(Value::as_str),
                    p.get(1).and_then(Value::as_str),
                ) {
                    (Some(a), Some(b)) => Ok((Box::from(a), Box::from(b))),
                    _ => Err(format!("`{k}`")),
                }
            })
            .collect()
    };
    let state = u8::try_from(n("state")?)
        .ok()
        .and_then(DialogState::from_number)
        .ok_or("bad `state`")?;
    Ok(DialogRecord {
        id: DialogUid(n("id")?),
        rev: n("rev")?,
        state,
        call_id: s("call_id")?,
        from_uri: s("from_uri")?,
        from_tag: s("from_tag")?,
        to_uri: s("to_uri")?,
        to_tag: s("to_tag")?,
        caller_cseq: n32("caller_cseq")?,
        callee_cseq: n32("callee_cseq")?,
        caller_route_set: list("caller_route_set")?,
        callee_route_set: list("callee_route_set")?,
        caller_contact: s("caller_contact")?,
        callee_contact: s("callee_contact")?,
        caller_socket: s("caller_socket")?.into_boxed_bytes(),
        callee_socket: s("callee_socket")?.into_boxed_bytes(),
        created: Duration::from_nanos(n("created_ns")?),
        start_time: Duration::from_nanos(n("start_ns")?),
        timeout: Duration::from_nanos(n("timeout_ns")?),
        lifetime: Duration::from_nanos(n("lifetime_ns")?),
        flags: DialogFlags(n32("flags")?),
        sflags: n32("sflags")?,
        request_uri: s("request_uri")?,
        profiles: pairs("profiles")?,
        vars: pairs("vars")?,
    })
}

/// Runs a pipeline holding an `EVALSHA` of `script`; after a Redis restart the script is
/// no longer cached there (`NOSCRIPT`): load it and run the pipeline again.
fn with_script<T>(
    c: &mut Connection,
    script: &Script,
    mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
) -> RedisResult<T> {
    match f(c) {
        Err(e) if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) => {
            script.prepare_invoke().load(c)?;
            f(c)
        }
        r => r,
    }
}

impl RedisDialogs {
    /// A store on `pool` under `prefix`.
    pub fn new(pool: Arc<Pool>, prefix: &str) -> Self {
        RedisDialogs {
            pool,
            prefix: prefix.to_owned(),
            put: Script::new(PUT),
            remove: Script::new(REMOVE),
            claim: Script::new(CLAIM),
        }
    }

    fn key(&self, id: DialogUid) -> String {
        format!("{}:dlg:{{{}}}", self.prefix, id.to_hex().as_str())
    }

    fn cid_key(&self, call_id: &str) -> String {
        format!("{}:dlg:cid:{{{call_id}}}", self.prefix)
    }

    fn due_key(&self) -> String {
        format!("{}:dlg:due", self.prefix)
    }

    fn corrupt(id: Option<DialogUid>) -> impl Fn(String) -> StoreError {
        move |detail| StoreError::Corrupt { id, detail }
    }

    fn read(&self, c: &mut Connection, id: DialogUid) -> RedisResult<Option<Vec<u8>>> {
        ::redis::cmd("HGET").arg(self.key(id)).arg("rec").query(c)
    }
}

impl DialogStore for RedisDialogs {
    fn put(&self, r: &DialogRecord) -> Result<(), StoreError> {
        let key = self.key(r.id);
        let hex = r.id.to_hex();
        let timeout = ms(r.timeout);
        let until = timeout.saturating_add(GRACE_MS);
        let cid = self.cid_key(&r.call_id);
        let due = self.due_key();
        let text = encode(r);
        let mut script = self.put.key(&key);
        script
            .arg(r.rev)
            .arg(timeout)
            .arg(&*r.call_id)
            .arg(&text)
            .arg(until);
        // One round trip: the script decides on the dialog's own key; the indexes are
        // hints every reader checks against it (a refused stale put may leave an index
        // entry, harmless: see `claim_expired`).
        let mut p = ::redis::pipe();
        p.invoke_script(&script)
            .ignore()
            .cmd("ZADD")
            .arg(&due)
            .arg(timeout)
            .arg(hex.as_str())
            .ignore()
            .cmd("SADD")
            .arg(&cid)
            .arg(hex.as_str())
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&cid)
            .arg(until)
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&cid)
            .arg(until)
            .arg("NX")
            .ignore();
        self.pool
            .run(|c| with_script(c, &self.put, |c| p.exec(c)))
            .map_err(err("put", Some(r.id)))
    }

    /// The dialog becomes a tombstone and leaves the due set; its Call-ID index entry
    /// expires with the index (readers skip tombstones).
    fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError> {
        let key = self.key(id);
        let hex = id.to_hex();
        let due = self.due_key();
        let mut script = self.remove.key(&key);
        script.arg(rev).arg(GRACE_MS);
        let mut p = ::redis::pipe();
        p.invoke_script(&script)
            .ignore()
            .cmd("ZREM")
            .arg(&due)
            .arg(hex.as_str())
            .ignore();
        self.pool
            .run(|c| with_script(c, &self.remove, |c| p.exec(c)))
            .map_err(err("remove", Some(id)))
    }

    fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError> {
        let pattern = format!("{}:dlg:{{*", self.prefix);
        let texts = self
            .pool
            .run(|c| {
                let mut out = Vec::new();
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(c)?;
                    if !keys.is_empty() {
                        let mut p = ::redis::pipe();
                        for k in &keys {
                            p.cmd("HGET").arg(k).arg("rec");
                        }
                        let recs: Vec<Option<Vec<u8>>> = p.query(c)?;
                        out.extend(recs.into_iter().flatten());
                    }
                    if next == 0 {
                        return Ok(out);
                    }
                    cursor = next;
                }
            })
            .map_err(err("load_all", None))?;
        texts
            .iter()
            .map(|t| decode(t).map_err(Self::corrupt(None)))
            .collect()
    }

    fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
        let text = self
            .pool
            .run(|c| self.read(c, id))
            .map_err(err("get", Some(id)))?;
        text.map(|t| decode(&t).map_err(Self::corrupt(Some(id))))
            .transpose()
    }

    fn find(
        &self,
        call_id: &str,
        tag_a: &str,
        tag_b: &str,
    ) -> Result<Option<DialogRecord>, StoreError> {
        let cid = self.cid_key(call_id);
        let texts = self
            .pool
            .run(|c| {
                let ids: Vec<String> = ::redis::cmd("SMEMBERS").arg(&cid).query(c)?;
                let mut out = Vec::new();
                for id in ids.iter().take(64) {
                    if let Some(uid) = DialogUid::from_hex(id.as_bytes()) {
                        if let Some(t) = self.read(c, uid)? {
                            out.push(t);
                        }
                    }
                }
                Ok(out)
            })
            .map_err(err("find", None))?;
        for t in texts {
            let r = decode(&t).map_err(Self::corrupt(None))?;
            let (f, to) = (&*r.from_tag, &*r.to_tag);
            if (f == tag_a && to == tag_b) || (f == tag_b && to == tag_a) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn claim_expired(&self, id: DialogUid, now: Duration) -> Result<Claim, StoreError> {
        let key = self.key(id);
        let hex = id.to_hex();
        let due = self.due_key();
        let out: Vec<u8> = self
            .pool
            .run(|c| {
                let out: Vec<u8> = self.claim.key(&key).arg(ms(now)).arg(GRACE_MS).invoke(c)?;
                if out.first() != Some(&b'R') {
                    ::redis::cmd("ZREM").arg(&due).arg(hex.as_str()).exec(c)?;
                }
                Ok(out)
            })
            .map_err(err("claim_expired", Some(id)))?;
        match out.split_first() {
            None => Ok(Claim::Absent),
            Some((b'C', rec)) => {
                let r = decode(rec).map_err(Self::corrupt(Some(id)))?;
                let cid = self.cid_key(&r.call_id);
                // The index entry is only a hint: losing this write is harmless.
                let _ = self
                    .pool
                    .run(|c| ::redis::cmd("SREM").arg(&cid).arg(hex.as_str()).exec(c));
                Ok(Claim::Claimed(r))
            }
            Some((_, rec)) => {
                let r = decode(rec).map_err(Self::corrupt(Some(id)))?;
                // The due set may hold an earlier deadline (a stale put): put it right,
                // so that reaping does not claim this dialog again every pass.
                let _ = self.pool.run(|c| {
                    ::redis::cmd("ZADD")
                        .arg(&due)
                        .arg(ms(r.timeout))
                        .arg(hex.as_str())
                        .exec(c)
                });
                Ok(Claim::Refreshed(r))
            }
        }
    }

    fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError> {
        let due = self.due_key();
        let ids: Vec<String> = self
            .pool
            .run(|c| {
                ::redis::cmd("ZRANGE")
                    .arg(&due)
                    .arg("-inf")
                    .arg(ms(now))
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query(c)
            })
            .map_err(err("expired", None))?;
        Ok(ids
            .iter()
            .filter_map(|s| DialogUid::from_hex(s.as_bytes()))
            .collect())
    }

    fn clear(&self) -> Result<(), StoreError> {
        let pattern = format!("{}:dlg:*", self.prefix);
        self.pool
            .run(|c| {
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(c)?;
                    if !keys.is_empty() {
                        ::redis::cmd("UNLINK").arg(&keys).exec(c)?;
                    }
                    if next == 0 {
                        return Ok(());
                    }
                    cursor = next;
                }
            })
            .map_err(err("clear", None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut r = sip_dialog::doc_record();
        r.vars.push(("k".into(), "v \"quoted\"".into()));
        r.profiles.push(("caller".into(), String::new().into()));
        assert_eq!(decode(encode(&r).as_bytes()).unwrap(), r);
        assert!(decode(b"{\"id\":1}").is_err());
    }
}
