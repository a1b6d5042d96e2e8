//! [`RedisDialogs`]: the [`DialogStore`] every node shares, so that a dialog created through
//! node A is known to node B, and each dialog's lifetime is ended by exactly one node.
//!
//! # Keys, and why each script touches one slot
//!
//! Dialogs are spread over [`BUCKETS`] buckets by their id (`id % 64`, the tag `dNN`, two
//! hex digits). A dialog is the hash `PREFIX:dlg:{dNN}:ID` (fields `rev`, `timeout` in Unix
//! ms, `cid` its Call-ID, `rec` the record as JSON) and is listed in its bucket's sorted set
//! `PREFIX:dlg:due:{dNN}`, scored by its timeout. Both carry the bucket's hash tag, so they
//! share a Redis Cluster slot and each decision is one script over both keys: a dialog and
//! its deadline never disagree. The buckets spread the dialogs and the reaping over up to 64
//! slots (so over up to 64 cluster masters) instead of one sorted set every node writes.
//!
//! The set `PREFIX:dlg:cid:{CALL-ID}` (another slot) lists the ids of a Call-ID, to find a
//! dialog from an in-dialog request. It is only a hint, written next to the script (same
//! round trip: a pipeline on one server, a cluster pipeline on a cluster): it may briefly
//! list an id whose hash is gone, and every reader checks the hash.
//!
//! * `put` keeps the highest `rev` and refuses a rev at or below a removal's tombstone
//!   (`gone`, kept an hour), and files the deadline in the same script;
//! * `claim_expired` is one script: if the stored timeout has passed, the hash becomes a
//!   tombstone, leaves its bucket, and the caller gets the record; a second caller — another
//!   node seeing the same deadline — finds the tombstone and gets [`Claim::Absent`]. So each
//!   dialog's timeout fires on exactly one node, whichever nodes track it and whichever died;
//! * `expired` reads the due ids of every bucket (one pipelined round trip, one per master
//!   on a cluster), earliest first, for every node's periodic reaping.

use std::sync::Arc;
use std::time::Duration;

use ::redis::{Cmd, RedisResult, Script};
use serde_json::{Value, json};
use sip_dialog::{
    Claim, DialogFlags, DialogRecord, DialogState, DialogStore, DialogUid, StoreError,
};

use super::pool::{Conn, Error, Pool};

/// Buckets of dialogs (hash tags `d00`…`d3f`): the slots dialogs are spread over.
pub(super) const BUCKETS: u64 = 64;

/// Tombstones and records of dialogs nobody ended are kept this long past their timeout.
const GRACE_MS: u64 = 3_600_000;

/// KEYS[1] the dialog, KEYS[2] its bucket; ARGV rev, timeout ms, call-id, record, expiry
/// ms, id. 1: written.
const PUT: &str = r"
local rev = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '-1')
local gone = tonumber(redis.call('HGET', KEYS[1], 'gone') or '-1')
if rev <= cur or rev <= gone then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'timeout', ARGV[2], 'cid', ARGV[3], 'rec', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
return 1
";

/// KEYS[1] the dialog, KEYS[2] its bucket; ARGV rev, tombstone ms, id.
const REMOVE: &str = r"
local gone = tonumber(redis.call('HGET', KEYS[1], 'gone') or '-1')
local rev = tonumber(ARGV[1])
if gone > rev then rev = gone end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gone', rev)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
";

/// KEYS[1] the dialog, KEYS[2] its bucket; ARGV now ms, tombstone ms, id. Returns
/// 'C'..record (claimed), 'R'..record (not due) or '' (absent).
const CLAIM: &str = r"
local t = redis.call('HGET', KEYS[1], 'timeout')
if not t then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return ''
end
local rec = redis.call('HGET', KEYS[1], 'rec')
if tonumber(t) > tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[2], t, ARGV[3])
  return 'R' .. rec
end
local rev = redis.call('HGET', KEYS[1], 'rev')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gone', tonumber(rev) + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
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

/// Runs `f`, which sends an `EVALSHA` of `script`; after a Redis restart the script is no
/// longer cached there (`NOSCRIPT`): load it (on every master of a cluster) and run `f`
/// again.
fn with_script<T>(
    c: &mut Conn,
    script: &Script,
    mut f: impl FnMut(&mut Conn) -> RedisResult<T>,
) -> RedisResult<T> {
    match f(c) {
        Err(e) if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) => {
            script.prepare_invoke().load(c)?;
            f(c)
        }
        r => r,
    }
}

/// `EVALSHA` of `script` as a plain command (to go in a batch with others).
fn evalsha(script: &Script, keys: &[&str]) -> Cmd {
    let mut c = ::redis::cmd("EVALSHA");
    c.arg(script.get_hash()).arg(keys.len()).arg(keys);
    c
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

    /// The dialog's hash and its bucket's sorted set (one slot).
    fn keys(&self, id: DialogUid) -> (String, String) {
        let b = id.0 % BUCKETS;
        (
            format!("{}:dlg:{{d{b:02x}}}:{}", self.prefix, id.to_hex().as_str()),
            self.due_key(b),
        )
    }

    fn due_key(&self, bucket: u64) -> String {
        format!("{}:dlg:due:{{d{bucket:02x}}}", self.prefix)
    }

    fn cid_key(&self, call_id: &str) -> String {
        format!("{}:dlg:cid:{{{call_id}}}", self.prefix)
    }

    fn corrupt(id: Option<DialogUid>) -> impl Fn(String) -> StoreError {
        move |detail| StoreError::Corrupt { id, detail }
    }

    fn read(&self, id: DialogUid) -> Cmd {
        let mut c = ::redis::cmd("HGET");
        c.arg(self.keys(id).0).arg("rec");
        c
    }
}

/// The records among `HGET … rec` answers (absent ones skipped).
fn records(values: Vec<::redis::Value>) -> RedisResult<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if let Some(t) = ::redis::from_redis_value::<Option<Vec<u8>>>(v)? {
            out.push(t);
        }
    }
    Ok(out)
}

impl DialogStore for RedisDialogs {
    fn put(&self, r: &DialogRecord) -> Result<(), StoreError> {
        let (key, due) = self.keys(r.id);
        let hex = r.id.to_hex();
        let timeout = ms(r.timeout);
        let until = timeout.saturating_add(GRACE_MS);
        let cid = self.cid_key(&r.call_id);
        let text = encode(r);
        let mut script = evalsha(&self.put, &[&key, &due]);
        script
            .arg(r.rev)
            .arg(timeout)
            .arg(&*r.call_id)
            .arg(&text)
            .arg(until)
            .arg(hex.as_str());
        // One round trip: the script decides on the dialog's own slot; the Call-ID index is
        // a hint every reader checks against it (a refused stale put may leave an entry,
        // harmless: see `claim_expired`).
        let mut sadd = ::redis::cmd("SADD");
        sadd.arg(&cid).arg(hex.as_str());
        let mut gt = ::redis::cmd("PEXPIREAT");
        gt.arg(&cid).arg(until).arg("GT");
        let mut nx = ::redis::cmd("PEXPIREAT");
        nx.arg(&cid).arg(until).arg("NX");
        let cmds = [script, sadd, gt, nx];
        self.pool
            .run(|c| with_script(c, &self.put, |c| c.query_all(&cmds).map(drop)))
            .map_err(err("put", Some(r.id)))
    }

    /// The dialog becomes a tombstone and leaves its bucket; its Call-ID index entry
    /// expires with the index (readers skip tombstones).
    fn remove(&self, id: DialogUid, rev: u64) -> Result<(), StoreError> {
        let (key, due) = self.keys(id);
        let hex = id.to_hex();
        self.pool
            .run(|c| {
                self.remove
                    .key(&key)
                    .key(&due)
                    .arg(rev)
                    .arg(GRACE_MS)
                    .arg(hex.as_str())
                    .invoke::<()>(c)
            })
            .map_err(err("remove", Some(id)))
    }

    fn load_all(&self) -> Result<Vec<DialogRecord>, StoreError> {
        let pattern = format!("{}:dlg:{{*", self.prefix);
        let mut texts = Vec::new();
        self.pool
            .scan_keys(&pattern, 1000, |c, keys| {
                let cmds: Vec<Cmd> = keys
                    .iter()
                    .map(|k| {
                        let mut c = ::redis::cmd("HGET");
                        c.arg(k).arg("rec");
                        c
                    })
                    .collect();
                texts.extend(records(c.query_all(&cmds)?)?);
                Ok(())
            })
            .map_err(err("load_all", None))?;
        texts
            .iter()
            .map(|t| decode(t).map_err(Self::corrupt(None)))
            .collect()
    }

    fn get(&self, id: DialogUid) -> Result<Option<DialogRecord>, StoreError> {
        let cmd = self.read(id);
        let text: Option<Vec<u8>> = self
            .pool
            .run(|c| cmd.query(c))
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
                let cmds: Vec<Cmd> = ids
                    .iter()
                    .take(64)
                    .filter_map(|id| DialogUid::from_hex(id.as_bytes()))
                    .map(|uid| self.read(uid))
                    .collect();
                records(c.query_all(&cmds)?)
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
        let (key, due) = self.keys(id);
        let hex = id.to_hex();
        let out: Vec<u8> = self
            .pool
            .run(|c| {
                self.claim
                    .key(&key)
                    .key(&due)
                    .arg(ms(now))
                    .arg(GRACE_MS)
                    .arg(hex.as_str())
                    .invoke(c)
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
            Some((_, rec)) => Ok(Claim::Refreshed(
                decode(rec).map_err(Self::corrupt(Some(id)))?,
            )),
        }
    }

    fn expired(&self, now: Duration, limit: usize) -> Result<Vec<DialogUid>, StoreError> {
        let cmds: Vec<Cmd> = (0..BUCKETS)
            .map(|b| {
                let mut c = ::redis::cmd("ZRANGE");
                c.arg(self.due_key(b))
                    .arg("-inf")
                    .arg(ms(now))
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .arg("WITHSCORES");
                c
            })
            .collect();
        let buckets = self
            .pool
            .run(|c| c.query_all(&cmds))
            .map_err(err("expired", None))?;
        let mut due: Vec<(f64, DialogUid)> = Vec::new();
        for v in buckets {
            let pairs: Vec<(String, f64)> =
                ::redis::from_redis_value(v).map_err(|e| StoreError::Failed {
                    op: "expired",
                    id: None,
                    detail: e.to_string(),
                })?;
            due.extend(
                pairs
                    .into_iter()
                    .filter_map(|(id, at)| Some((at, DialogUid::from_hex(id.as_bytes())?))),
            );
        }
        due.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    fn clear(&self) -> Result<(), StoreError> {
        let pattern = format!("{}:dlg:*", self.prefix);
        self.pool
            .scan_keys(&pattern, 1000, |c, keys| {
                // One command per key: on a cluster, a multi-key UNLINK must stay in a slot.
                let cmds: Vec<Cmd> = keys
                    .iter()
                    .map(|k| {
                        let mut c = ::redis::cmd("UNLINK");
                        c.arg(k);
                        c
                    })
                    .collect();
                c.query_all(&cmds).map(drop)
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
