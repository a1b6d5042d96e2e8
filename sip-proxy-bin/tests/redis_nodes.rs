//! Two `sip-proxy run` nodes sharing one store, end to end on loopback; every scenario runs
//! against each kind of store (modules `redis_server`, `valkey`, `redis_cluster`):
//!
//! * one `redis-server` (`--redis`; Debian `redis-server`, in scripts/apt-packages.txt);
//! * one `valkey-server` (`--redis`; Debian `valkey-server`, installed by scripts/test);
//! * a Redis Cluster of three `redis-server` masters (`--cluster-enabled yes`, formed with
//!   `redis-cli --cluster create … --cluster-replicas 0`, up once every node reports
//!   `cluster_state:ok`), the nodes given its seeds with `--redis-cluster`. The keys of a
//!   run are asserted to live on more than one master: the scripts are slot-safe.
//!
//! Each server runs on free loopback ports, `--save '' --appendonly no`; a missing server
//! fails the test, never skips it. Then two nodes, A and B, each naming the other with `--redis-peer` (Record-Route topology: each
//! node record-routes its own address and takes a Route to its peer's as its own, so an
//! in-dialog request of a node that died can be sent to the other). The phones are UDP
//! sockets of the test; the registered user authenticates with digest (shared nonce
//! secret). What is asserted, in order:
//!
//! 1. register on A (401 then 200), a call via B reaches the contact and ends;
//! 2. the credentials A accepted, replayed to B and to A, get no 2xx; a fresh `nc` of A's
//!    nonce is accepted by B (nonces verify across nodes, replays do not);
//! 3. a source banned on A (failed authentications) gets nothing from B;
//! 4. unregister on B: A answers 480 for the user within the cache bound (1 s);
//! 5. Redis killed (every master of a cluster): REGISTER gets 503 with Retry-After, a call
//!    to a user the node had looked up still reaches it; Redis restarted (a cluster from
//!    its nodes' config files): REGISTER gets 200 again within 5 s;
//! 6. a call set up via A, A killed with -9, the BYE sent via B reaches the callee and both
//!    get their 200; the dialog is gone from Redis.
//!
//! A second test runs a call with a 2-second lifetime through A with both nodes up: the
//! dialog's timeout fires on exactly one node (each party gets one BYE). A third does the
//! register / call via B / A killed mid-call with SIPp as the clients. A fourth drives the
//! stores directly from two `Shared` handles: optimistic concurrency of the location store,
//! dialog find / claim-exactly-once / tombstones, replay state and bans across nodes, then
//! 24 AORs and 24 dialogs spread over the masters, each seen once by counts, scan,
//! expired (earliest first, across the 64 dialog buckets), load_all and clear.
//!
//! Every wait has a deadline; the processes are killed on drop. Each test's scratch
//! directory (servers' files, node configs and logs, SIPp traces) is removed when it passes
//! and kept when it fails.

mod support;

use std::fmt::Write as _;
use std::net::{SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sip_parser::{Message, ResponseBuilder};
use support::dir::TempDir;
use support::net::{LO1, free_tcp_port, free_udp_port};
use support::proc::{Proc, require};
use support::proxy::Proxy;
use support::sipp::{Sipp, scenario};
use support::ua::{Phone, request_is};
use support::users::add;

const REALM: &str = "localhost";
const PASSWORD: &str = "s3cret-alice";

/// Which server the nodes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One Debian `redis-server`.
    Redis,
    /// One `valkey-server` (Debian `valkey-server`, bookworm-backports).
    Valkey,
    /// A Redis Cluster of three `redis-server` masters formed with `redis-cli --cluster`.
    Cluster,
}

impl Kind {
    fn server(self) -> &'static str {
        match self {
            Kind::Redis | Kind::Cluster => "redis-server",
            Kind::Valkey => "valkey-server",
        }
    }
}

/// The shared store of a test: one server, or the three masters of a cluster.
struct Store {
    kind: Kind,
    dir: PathBuf,
    ports: Vec<u16>,
    procs: Vec<Proc>,
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let p = free_tcp_port();
        if p < 55_000 && TcpListener::bind((LO1, p + 10_000)).is_ok() {
            return p;
        }
    }
}

fn conn_to(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let c = client
        .get_connection_with_timeout(Duration::from_millis(200))
        .ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    Some(c)
}

impl Store {
    fn start(kind: Kind, dir: &Path) -> Store {
        let ports = match kind {
            Kind::Redis | Kind::Valkey => vec![free_tcp_port()],
            Kind::Cluster => (0..3).map(|_| free_cluster_port()).collect(),
        };
        let mut s = Store {
            kind,
            dir: dir.to_owned(),
            ports,
            procs: Vec::new(),
        };
        s.launch();
        if kind == Kind::Cluster {
            require("redis-cli");
            let nodes: Vec<String> = s.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            let out = Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&nodes)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "redis-cli --cluster create: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            s.wait_cluster_ok();
        }
        s
    }

    /// Starts the server(s) on their ports (again: a cluster node finds its cluster in its
    /// config file) and waits until each answers PING.
    fn launch(&mut self) {
        require(self.kind.server());
        for &port in &self.ports {
            let mut cmd = Command::new(self.kind.server());
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if self.kind == Kind::Cluster {
                cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                    .arg(self.dir.join(format!("nodes-{port}.conf")));
            }
            let name = format!("{} {port}", self.kind.server());
            self.procs.push(Proc::spawn(&name, &mut cmd));
        }
        for &port in &self.ports {
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(mut c) = conn_to(port) {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        break;
                    }
                }
                assert!(
                    Instant::now() < end,
                    "{} on {port} did not answer within 10 s",
                    self.kind.server()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn wait_cluster_ok(&self) {
        let end = Instant::now() + Duration::from_secs(20);
        for &port in &self.ports {
            loop {
                let info: String = conn_to(port)
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c).ok())
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "the cluster not ok within 20 s: {info}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Kills the server(s) (SIGKILL).
    fn stop(&mut self) {
        for p in &mut self.procs {
            p.kill();
        }
        self.procs.clear();
    }

    /// Starts them again, empty (no persistence), on the same ports.
    fn restart(&mut self) {
        self.launch();
        if self.kind == Kind::Cluster {
            self.wait_cluster_ok();
        }
    }

    /// The `sip-proxy run` arguments naming this store.
    fn node_args(&self) -> Vec<String> {
        match self.kind {
            Kind::Redis | Kind::Valkey => {
                vec![
                    "--redis".into(),
                    format!("redis://127.0.0.1:{}/", self.ports[0]),
                ]
            }
            Kind::Cluster => self
                .ports
                .iter()
                .flat_map(|p| ["--redis-cluster".into(), format!("redis://127.0.0.1:{p}")])
                .collect(),
        }
    }

    fn target(&self) -> sip_proxy::redis::Target {
        use sip_proxy::redis::Target;
        match self.kind {
            Kind::Redis | Kind::Valkey => {
                Target::Single(format!("redis://127.0.0.1:{}/", self.ports[0]))
            }
            Kind::Cluster => Target::Cluster(
                self.ports
                    .iter()
                    .map(|p| format!("redis://127.0.0.1:{p}"))
                    .collect(),
            ),
        }
    }

    /// The keys matching `pattern` on each master (each server of the test).
    fn keys(&self, pattern: &str) -> Vec<Vec<String>> {
        self.ports
            .iter()
            .map(|&p| {
                let mut c = conn_to(p).expect("the store is up");
                let mut keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap();
                keys.sort();
                keys
            })
            .collect()
    }

    /// A connection of the test's own (a cluster connection on a cluster).
    fn conn(&self) -> Box<dyn redis::ConnectionLike> {
        match self.kind {
            Kind::Redis | Kind::Valkey => Box::new(conn_to(self.ports[0]).unwrap()),
            Kind::Cluster => match self.target() {
                sip_proxy::redis::Target::Cluster(urls) => Box::new(
                    redis::cluster::ClusterClient::new(urls)
                        .unwrap()
                        .get_connection()
                        .unwrap(),
                ),
                sip_proxy::redis::Target::Single(_) => unreachable!(),
            },
        }
    }

    /// Dialogs due to be ended, all buckets on all masters.
    fn due(&self) -> usize {
        let mut n = 0;
        for (i, keys) in self.keys("sp:dlg:due:*").into_iter().enumerate() {
            let mut c = conn_to(self.ports[i]).unwrap();
            for k in keys {
                n += redis::cmd("ZCARD").arg(&k).query::<usize>(&mut c).unwrap();
            }
        }
        n
    }

    /// On a cluster, the masters holding a key matching `pattern`: more than one proves the
    /// keys of one kind are spread over slots of several nodes.
    fn assert_spread(&self, pattern: &str) {
        if self.kind != Kind::Cluster {
            return;
        }
        let per_master = self.keys(pattern);
        let holding = per_master.iter().filter(|k| !k.is_empty()).count();
        assert!(
            holding >= 2,
            "keys `{pattern}` on {holding} master(s) only: {per_master:?}"
        );
    }
}

/// One node: `sip-proxy run` on `udp:127.0.0.1:port` with the store and its peer, in its
/// own directory `DIR/NAME` (its log; its data directory: the control socket, nothing else
/// with a store).
fn start_node(dir: &Path, name: &str, port: u16, peer: u16, store: &Store, toml: &str) -> Proxy {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, toml).unwrap();
    let own = dir.join(name);
    std::fs::create_dir_all(&own).unwrap();
    let peer = format!("127.0.0.1:{peer}");
    let mut args = vec!["--config", cfg.to_str().unwrap()];
    args.extend(["--domain", REALM, "--workers", "1", "--shutdown-grace", "0"]);
    let store_args = store.node_args();
    args.extend(store_args.iter().map(String::as_str));
    args.extend(["--redis-peer", &peer]);
    Proxy::run(&own, &[SocketAddrV4::new(LO1, port)], &args)
}

fn node_toml(dir: &Path, users: &Path, extra: &str) -> String {
    let secret = dir.join("nonce.key");
    if !secret.exists() {
        std::fs::write(&secret, [7u8; 32]).unwrap();
    }
    format!(
        "[auth]\nusers_file = \"{}\"\nsecret_file = \"{}\"\nban_after = 2\nban_seconds = 60\n{extra}",
        users.display(),
        secret.display()
    )
}

/// Alice's registration client: REGISTERs with digest authentication.
struct Registrar<'p> {
    phone: &'p Phone,
    client: sip_auth::DigestClient,
    cseq: u32,
    branch: u32,
    /// The last Authorization sent.
    last_auth: Option<String>,
}

impl<'p> Registrar<'p> {
    fn new(phone: &'p Phone, password: &str) -> Self {
        Registrar {
            phone,
            client: sip_auth::DigestClient::new("alice", password),
            cseq: 0,
            branch: 0,
            last_auth: None,
        }
    }

    fn register_text(&mut self, expires: u32, auth: Option<&str>) -> String {
        self.cseq += 1;
        self.branch += 1;
        let mut m = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {ip}:{p};branch=z9hG4bK-reg{port}-{b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@{REALM}>;tag=reg{p}\r\n\
             To: <sip:alice@{REALM}>\r\n\
             Call-ID: reg-{p}@test\r\n\
             CSeq: {c} REGISTER\r\n\
             Contact: <sip:alice@{ip}:{p}>;expires={expires}\r\n",
            ip = self.phone.ip,
            p = self.phone.port,
            port = self.phone.port,
            b = self.branch,
            c = self.cseq
        );
        if let Some(a) = auth {
            let _ = write!(m, "Authorization: {a}\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }

    /// REGISTER to `node`, answering one challenge: the final status and the response.
    fn register(&mut self, node: u16, expires: u32) -> Message {
        let text = self.register_text(expires, None);
        self.phone.send((LO1, node), text);
        let r = self.phone.final_to("REGISTER answer", "REGISTER");
        if r.status() != Some(401) {
            return r;
        }
        let challenges: Vec<String> = String::from_utf8_lossy(r.buffer())
            .lines()
            .filter_map(|l| l.strip_prefix("WWW-Authenticate: ").map(str::to_owned))
            .collect();
        let ch: Vec<&[u8]> = challenges.iter().map(String::as_bytes).collect();
        self.client.accepted();
        let auth = self
            .client
            .respond(&ch, &register_request(), &format!("cn{}", self.cseq))
            .unwrap();
        self.last_auth = Some(auth.clone());
        let text = self.register_text(expires, Some(&auth));
        self.phone.send((LO1, node), text);
        self.phone
            .final_to("authenticated REGISTER answer", "REGISTER")
    }

    /// REGISTER to `node` with exactly this Authorization value.
    fn register_with(&mut self, node: u16, auth: &str) -> Message {
        let text = self.register_text(3600, Some(auth));
        self.phone.send((LO1, node), text);
        self.phone.final_to("REGISTER answer", "REGISTER")
    }

    /// The next `nc` on the last nonce.
    fn next_nc(&mut self) -> String {
        let a = self
            .client
            .authorize(&register_request(), &format!("cn{}", self.cseq))
            .unwrap();
        self.last_auth = Some(a.clone());
        a
    }
}

fn register_request() -> sip_auth::ClientRequest<'static> {
    sip_auth::ClientRequest {
        method: "REGISTER",
        uri: "sip:localhost",
        body: b"",
    }
}

/// A call in progress: what the caller needs for ACK and BYE.
struct Call {
    id: String,
    to_tag: String,
    routes: Vec<String>,
    callee: u16,
}

fn invite_text(caller: &Phone, call_id: &str) -> String {
    format!(
        "INVITE sip:alice@{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carol@example.org>;tag=c-{call_id}\r\n\
         To: <sip:alice@{REALM}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:carol@127.0.0.1:{a}>\r\n\
         Content-Length: 0\r\n\r\n",
        a = caller.port
    )
}

/// INVITE via `node`, answered 200 by `callee` (which must receive it), ACKed via `node`.
fn set_up(node: u16, caller: &Phone, callee: &Phone, call_id: &str) -> Call {
    caller.send((LO1, node), invite_text(caller, call_id));
    let (inv, via) = callee.expect("INVITE at the callee", |m| {
        m.method() == Some("INVITE") && m.call_id() == Some(call_id)
    });
    let ok = ResponseBuilder::new(&inv, 200, "OK")
        .to_tag("callee1")
        .copy_record_route()
        .header("Contact", format!("<sip:alice@127.0.0.1:{}>", callee.port))
        .build();
    callee.sock.send_to(&ok, via).unwrap();
    let (ok, _) = caller.expect("final answer to the INVITE", |m| {
        m.status().is_some_and(|s| s >= 200) && m.call_id() == Some(call_id)
    });
    assert_eq!(ok.status(), Some(200), "{call_id}");
    let mut routes: Vec<String> = ok
        .record_routes()
        .map(|r| format!("<{}>", String::from_utf8_lossy(r.unwrap().raw_uri)))
        .collect();
    routes.reverse();
    assert!(!routes.is_empty(), "the node record-routes");
    let call = Call {
        id: call_id.to_owned(),
        to_tag: ok.to().unwrap().tag().unwrap().to_owned(),
        routes,
        callee: callee.port,
    };
    caller.send((LO1, node), in_dialog(caller, &call, "ACK", 1));
    callee.expect("ACK at the callee", request_is("ACK"));
    call
}

fn in_dialog(caller: &Phone, call: &Call, method: &str, seq: u32) -> String {
    let mut m = format!(
        "{method} sip:alice@127.0.0.1:{b} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{a};branch=z9hG4bK-{id}-{method}{seq};rport\r\n\
         Max-Forwards: 70\r\n",
        b = call.callee,
        a = caller.port,
        id = call.id
    );
    for r in &call.routes {
        let _ = write!(m, "Route: {r}\r\n");
    }
    let _ = write!(
        m,
        "From: <sip:carol@example.org>;tag=c-{id}\r\n\
         To: <sip:alice@{REALM}>;tag={t}\r\n\
         Call-ID: {id}\r\n\
         CSeq: {seq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        id = call.id,
        t = call.to_tag
    );
    m
}

/// BYE via `node`: the callee gets it and answers 200; the caller gets the 200.
fn hang_up(node: u16, caller: &Phone, callee: &Phone, call: &Call) {
    caller.send((LO1, node), in_dialog(caller, call, "BYE", 2));
    let (bye, via) = callee.expect("BYE at the callee", request_is("BYE"));
    callee
        .sock
        .send_to(&ResponseBuilder::new(&bye, 200, "OK").build(), via)
        .unwrap();
    let (r, _) = caller.expect("200 for the BYE", |m| {
        m.status().is_some_and(|s| s >= 200)
            && m.call_id() == Some(call.id.as_str())
            && m.cseq().is_ok_and(|c| c.method == "BYE")
    });
    assert_eq!(r.status(), Some(200));
}

/// Two nodes, A and B, on one store.
struct Nodes {
    users: PathBuf,
    store: Store,
    a: (u16, Option<Proxy>),
    b: (u16, Option<Proxy>),
    /// Their directory: the last field, so removed only once every process is gone.
    dir: TempDir,
}

fn nodes(kind: Kind, name: &str, extra: &str) -> Nodes {
    let dir = TempDir::new(&format!("redis-nodes-{kind:?}-{name}"));
    let users = dir.join("users.htdigest");
    let out = add(&users, REALM, "alice", PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::start(kind, &dir);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let toml = node_toml(&dir, &users, extra);
    let a = start_node(&dir, "a", pa, pb, &store, &toml);
    let b = start_node(&dir, "b", pb, pa, &store, &toml);
    Nodes {
        users,
        store,
        a: (pa, Some(a)),
        b: (pb, Some(b)),
        dir,
    }
}

fn two_nodes_share_registrations_dialogs_bans_and_nonces(kind: Kind) {
    let mut c = nodes(kind, "main", "");
    let (pa, pb) = (c.a.0, c.b.0);
    let alice = Phone::new();
    let carol = Phone::new();

    // 1. Register on A, call via B.
    let mut reg = Registrar::new(&alice, PASSWORD);
    let r = reg.register(pa, 3600);
    assert_eq!(
        r.status(),
        Some(200),
        "REGISTER on A: {}",
        String::from_utf8_lossy(r.buffer())
    );
    let accepted = reg.last_auth.clone().unwrap();
    let call = set_up(pb, &carol, &alice, "call-via-b");
    hang_up(pb, &carol, &alice, &call);

    // 2. Replayed credentials get no 2xx on either node; a fresh nc of A's nonce passes on B.
    for node in [pb, pa] {
        let r = reg.register_with(node, &accepted);
        assert!(
            r.status().is_some_and(|s| s >= 400),
            "replayed credentials answered {:?} by {node}",
            r.status()
        );
    }
    let fresh = reg.next_nc();
    let r = reg.register_with(pb, &fresh);
    assert_eq!(r.status(), Some(200), "A's nonce with a fresh nc on B");

    // 3. A source banned on A gets nothing from B.
    let mallory = Phone::on("127.0.0.2");
    let mut bad = Registrar::new(&mallory, "wrong");
    for _ in 0..3 {
        let r = bad.register(pa, 60);
        assert_ne!(r.status(), Some(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    mallory.send((LO1, pa), bad.register_text(60, None));
    assert!(
        mallory.wait(Duration::from_secs(1), |_| true).is_none(),
        "banned on A"
    );
    mallory.send((LO1, pb), bad.register_text(60, None));
    assert!(
        mallory.wait(Duration::from_secs(1), |_| true).is_none(),
        "a source banned on A is banned on B"
    );
    // Others are still served by B.
    assert_eq!(reg.register(pb, 3600).status(), Some(200));

    // 4. Unregister on B: A stops routing to alice within the cache bound.
    let call = set_up(pa, &carol, &alice, "call-via-a-1"); // A has alice cached
    hang_up(pa, &carol, &alice, &call);
    assert_eq!(reg.register(pb, 0).status(), Some(200), "unregister on B");
    let gone = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("after-unreg-{n}");
        carol.send((LO1, pa), invite_text(&carol, &id));
        // Either A still routes to alice (who refuses: 486), or it answers 480 itself.
        let end = Instant::now() + Duration::from_secs(5);
        let status = loop {
            assert!(Instant::now() < end, "no final answer to an INVITE via A");
            if let Some((inv, via)) = alice.wait(Duration::from_millis(20), request_is("INVITE")) {
                let busy = ResponseBuilder::new(&inv, 486, "Busy Here")
                    .to_tag("x")
                    .build();
                alice.sock.send_to(&busy, via).unwrap();
            }
            if let Some((r, _)) = carol.wait(Duration::from_millis(20), |m| {
                m.status().is_some_and(|s| s >= 200) && m.call_id() == Some(id.as_str())
            }) {
                break r.status();
            }
        };
        if status == Some(480) {
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_millis(1500),
            "A still routes to alice {:?} after the unregistration on B",
            gone.elapsed()
        );
    }

    // 5. Redis down: REGISTER answered 503 + Retry-After, known users still routed.
    assert_eq!(
        reg.register(pa, 3600).status(),
        Some(200),
        "re-register on A"
    );
    let call = set_up(pb, &carol, &alice, "call-via-b-2"); // B looks alice up
    hang_up(pb, &carol, &alice, &call);
    c.store.stop();
    std::thread::sleep(Duration::from_millis(200));
    let r = reg.register(pb, 3600);
    assert_eq!(r.status(), Some(503), "REGISTER while Redis is down");
    assert!(r.header("Retry-After").is_some(), "503 with Retry-After");
    let call = set_up(pb, &carol, &alice, "call-while-down");
    hang_up(pb, &carol, &alice, &call);
    c.store.restart();
    let back = Instant::now();
    loop {
        let r = reg.register(pb, 3600);
        if r.status() == Some(200) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no full service 5 s after Redis came back: {:?}",
            r.status()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let call = set_up(pa, &carol, &alice, "call-after-restart");
    hang_up(pa, &carol, &alice, &call);

    // 6. A call through A survives A: BYE via B.
    let call = set_up(pa, &carol, &alice, "call-a-dies");
    assert_eq!(c.store.due(), 1, "the confirmed dialog is in Redis");
    c.a.1.take().unwrap().kill(); // SIGKILL
    hang_up(pb, &carol, &alice, &call);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.store.due(), 0, "B ended the dialog A created");
    // Nonce, failure and location keys of this run live in slots of several masters.
    c.store.assert_spread("sp:*");
    let _ = (&c.dir, &c.users, &c.b);
}

fn a_dialog_lifetime_ends_on_exactly_one_node(kind: Kind) {
    let c = nodes(kind, "expiry", "[dialog]\nmax_duration = 2\n");
    let (pa, pb) = (c.a.0, c.b.0);
    let alice = Phone::new();
    let carol = Phone::new();
    let mut reg = Registrar::new(&alice, PASSWORD);
    assert_eq!(reg.register(pb, 3600).status(), Some(200));
    let _call = set_up(pa, &carol, &alice, "call-expires");
    // Each party gets exactly one BYE (from A or B), within the lifetime plus two passes
    // of housekeeping, and no second one.
    for (who, phone) in [("callee", &alice), ("caller", &carol)] {
        let (bye, via) = phone
            .wait(Duration::from_secs(6), request_is("BYE"))
            .unwrap_or_else(|| panic!("no BYE at the {who}"));
        phone
            .sock
            .send_to(&ResponseBuilder::new(&bye, 200, "OK").build(), via)
            .unwrap();
    }
    for (who, phone) in [("callee", &alice), ("caller", &carol)] {
        assert!(
            phone
                .wait(Duration::from_secs(3), request_is("BYE"))
                .is_none(),
            "a second BYE at the {who}"
        );
    }
    assert_eq!(c.store.due(), 0);
    let _ = (pb, &c.dir, &c.users, &c.a, &c.b);
}

/// The SIPp UAC scenario with its pause and the port its BYE goes to.
fn uac_scenario(dir: &Path, name: &str, pause_ms: u32, bye_port: u16) -> PathBuf {
    let text = std::fs::read_to_string(scenario("redis_uac"))
        .unwrap()
        .replace("@PAUSE@", &pause_ms.to_string())
        .replace("@BYE_PORT@", &bye_port.to_string());
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// SIPp as `role` with the scenario file `file` on 127.0.0.1:`port`: one call, 20 s at most.
fn sipp(dir: &Path, role: &str, file: &Path, port: u16) -> Sipp {
    Sipp::with_file(dir, role, file, SocketAddrV4::new(LO1, port))
        .calls(1)
        .timeout(Duration::from_secs(20))
}

fn sipp_clients_register_on_a_call_via_b_and_survive_a(kind: Kind) {
    let mut c = nodes(kind, "sipp", "");
    let (pa, pb) = (SocketAddrV4::new(LO1, c.a.0), SocketAddrV4::new(LO1, c.b.0));
    let dir = c.dir.to_path_buf();
    let callee_port = free_udp_port();
    // The callee registers on A (digest), then answers on the contact it registered.
    sipp(&dir, "register", &scenario("redis_register"), callee_port)
        .service("alice")
        .arg("-au")
        .arg("alice")
        .arg("-ap")
        .arg(PASSWORD)
        .run(pa)
        .assert_ok();

    // A call via B reaches the contact registered on A.
    let uas = sipp(&dir, "uas", &scenario("redis_uas"), callee_port).spawn();
    let via_b = uac_scenario(&dir, "via_b.xml", 200, pb.port());
    sipp(&dir, "uac", &via_b, free_udp_port())
        .service("alice")
        .run(pb)
        .assert_ok();
    uas.succeeds("the call via B");

    // A call set up via A; A killed with -9 during the call; the BYE via B ends it, both
    // sides getting their 200 (the SIPp runs succeed only then).
    let uas = sipp(&dir, "uas2", &scenario("redis_uas"), callee_port).spawn();
    let a_dies = uac_scenario(&dir, "a_dies.xml", 3000, pb.port());
    let uac = sipp(&dir, "uac2", &a_dies, free_udp_port())
        .service("alice")
        .spawn_to(pa);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if c.store.due() == 1 {
            break;
        }
        assert!(
            Instant::now() < end,
            "the call via A was not confirmed within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.a.1.take().unwrap().kill(); // SIGKILL
    uac.succeeds("the BYE via B after A died");
    uas.succeeds("the BYE via B after A died");
    assert_eq!(c.store.due(), 0, "B ended the dialog A created");
    let _ = (&c.users, &c.b);
}

/// The stores themselves, two "nodes" (two `Shared`) on one Redis: the trait rules of
/// `sip_location::LocationStore` and `sip_dialog::DialogStore` hold across nodes.
fn shared_stores_follow_the_trait_rules_across_nodes(kind: Kind) {
    use sip_dialog::{Claim, DialogStore};
    use sip_location::{Binding, BindingFields, Changes, EventKind, LocationStore, Op, StoreError};
    use sip_proxy::config::RedisConfig;
    use sip_proxy::redis::{Replay, Shared};

    let dir = TempDir::new(&format!("redis-nodes-{kind:?}-stores"));
    let store = Store::start(kind, &dir);
    let cfg = RedisConfig::default();
    let a = Shared::start(&cfg, &store.target(), 4).unwrap();
    let b = Shared::start(&cfg, &store.target(), 4).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let aor = "sip:bob@example.com";
    let binding =
        |contact: &str| Binding::new(&BindingFields::new(contact, now.as_secs() + 60)).unwrap();

    // A write on A is seen by B; B's write on the version it read wins, A's stale one
    // conflicts (RFC 3261 §10.3: processed completely or not at all).
    let first = a
        .location
        .apply(
            &Changes::new(aor).with(Op::Put(binding("sip:bob@192.0.2.1"))),
            now,
        )
        .unwrap();
    assert_eq!(first.events[0].kind, EventKind::Saved);
    let seen = b.location.lookup(aor, now).unwrap();
    assert_eq!(seen.version, first.version);
    assert_eq!(seen.bindings()[0].contact(), "sip:bob@192.0.2.1");
    b.location
        .apply(
            &Changes::expecting(aor, seen.version).with(Op::Put(binding("sip:bob@192.0.2.2"))),
            now,
        )
        .unwrap();
    let stale = a
        .location
        .apply(&Changes::expecting(aor, first.version).with(Op::Clear), now);
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let mut con = store.conn();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("sp:loc:{{{aor}}}"))
        .query(&mut *con)
        .unwrap();
    assert!(
        (1..=60).contains(&ttl),
        "the key expires with its binding: {ttl}"
    );
    // Unconditional removal from A (administration): both bindings go, the key too.
    let gone = a.location.remove(aor, None, now).unwrap();
    assert_eq!(gone.len(), 2);
    assert!(b.location.lookup(aor, now).unwrap().is_empty());

    // Dialogs: a record put by A is found by B by Call-ID and tags (either order); once
    // its timeout passed, exactly one claim wins; a stale put after the end is ignored.
    let mut rec = sip_dialog::doc_record();
    rec.timeout = now.saturating_sub(Duration::from_secs(1));
    a.dialogs.put(&rec).unwrap();
    let found = b
        .dialogs
        .find(&rec.call_id, &rec.to_tag, &rec.from_tag)
        .unwrap();
    assert_eq!(found.as_ref(), Some(&rec));
    assert_eq!(b.dialogs.expired(now, 10).unwrap(), [rec.id]);
    let claims = [
        a.dialogs.claim_expired(rec.id, now).unwrap(),
        b.dialogs.claim_expired(rec.id, now).unwrap(),
    ];
    assert_eq!(claims[0], Claim::Claimed(rec.clone()));
    assert_eq!(claims[1], Claim::Absent);
    a.dialogs.put(&rec).unwrap(); // same rev, after the end
    assert_eq!(b.dialogs.get(rec.id).unwrap(), None);
    // Its index entry may come back with the stale put: a claim finds the tombstone and
    // drops it.
    assert_eq!(b.dialogs.claim_expired(rec.id, now).unwrap(), Claim::Absent);
    assert!(b.dialogs.expired(now, 10).unwrap().is_empty());
    // A timeout another node pushed later: the claim gives the newer record back.
    let mut later = sip_dialog::doc_record();
    later.id = sip_dialog::DialogUid(rec.id.0 + 1);
    later.timeout = now + Duration::from_secs(60);
    b.dialogs.put(&later).unwrap();
    assert_eq!(
        a.dialogs.claim_expired(later.id, now).unwrap(),
        Claim::Refreshed(later.clone())
    );
    a.dialogs.remove(later.id, later.rev + 1).unwrap();
    assert_eq!(b.dialogs.get(later.id).unwrap(), None);
    // Scripts are loaded again when Redis lost them (a restart).
    redis::cmd("SCRIPT").arg("FLUSH").exec(&mut *con).unwrap();
    let mut third = later.clone();
    third.id = sip_dialog::DialogUid(later.id.0 + 1);
    a.dialogs.put(&third).unwrap();
    assert_eq!(b.dialogs.get(third.id).unwrap(), Some(third.clone()));
    redis::cmd("SCRIPT").arg("FLUSH").exec(&mut *con).unwrap();
    a.dialogs.remove(third.id, third.rev + 1).unwrap();
    assert_eq!(b.dialogs.get(third.id).unwrap(), None);

    // Digest replay state: an nc used on A is refused on B; a greater one is accepted.
    let life = Duration::from_secs(300);
    assert_eq!(a.check_replay("n1", Some(1), life).unwrap(), Replay::Fresh);
    assert_eq!(
        b.check_replay("n1", Some(1), life).unwrap(),
        Replay::Replayed
    );
    assert_eq!(b.check_replay("n1", Some(2), life).unwrap(), Replay::Fresh);
    assert_eq!(
        a.check_replay("n1", Some(2), life).unwrap(),
        Replay::Replayed
    );
    assert_eq!(a.check_replay("n2", None, life).unwrap(), Replay::Fresh);
    assert_eq!(b.check_replay("n2", None, life).unwrap(), Replay::Replayed);

    // Bans: a ban from A reaches B through the channel.
    let ip: std::net::IpAddr = "192.0.2.77".parse().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while !b.subscribed() {
        assert!(Instant::now() < end, "B's subscription not up within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.ban(ip, Duration::from_secs(60)).unwrap();
    while !b.is_banned(ip) {
        assert!(Instant::now() < end, "the ban did not reach B within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.record_failure(ip, Duration::from_secs(60)).unwrap(), 1);
    assert_eq!(b.record_failure(ip, Duration::from_secs(60)).unwrap(), 2);
    b.record_success(ip).unwrap();
    assert_eq!(a.record_failure(ip, Duration::from_secs(60)).unwrap(), 1);
    // B learns of failures counted by A only through their message, and a success on B then
    // resets A's count; a source nobody counted a failure of costs B no round trip (the
    // reset is skipped: a DEL would show in Redis's command statistics).
    let other: std::net::IpAddr = "192.0.2.78".parse().unwrap();
    assert_eq!(a.record_failure(other, Duration::from_secs(60)).unwrap(), 1);
    std::thread::sleep(Duration::from_millis(200));
    b.record_success(other).unwrap();
    assert_eq!(a.record_failure(other, Duration::from_secs(60)).unwrap(), 1);
    let dels = |con: &mut dyn redis::ConnectionLike| -> u64 {
        // On a cluster, the statistics of one node: enough, as nothing is sent to any.
        let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_del:calls="))
            .and_then(|v| v.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };
    let mut node = conn_to(store.ports[0]).unwrap();
    let before = dels(&mut node);
    let clean: std::net::IpAddr = "192.0.2.79".parse().unwrap();
    for _ in 0..10 {
        b.record_success(clean).unwrap();
    }
    assert_eq!(
        dels(&mut node),
        before,
        "no reset for a source without failures"
    );

    // Many AORs and dialogs: their keys spread over the slots of several masters (on a
    // cluster), and what reads them all (counts, scan, expired, load_all, clear) sees each
    // once, whichever master holds it.
    b.dialogs.clear().unwrap();
    let mut aors = Vec::new();
    for i in 0..24 {
        let aor = format!("sip:user{i}@example.com");
        a.location
            .apply(
                &Changes::new(&aor).with(Op::Put(binding(&format!("sip:u{i}@192.0.2.9")))),
                now,
            )
            .unwrap();
        aors.push(aor);
    }
    let mut recs = Vec::new();
    for i in 0..24u64 {
        let mut r = sip_dialog::doc_record();
        r.id = sip_dialog::DialogUid::new(2, 100 + i);
        r.call_id = format!("spread-{i}@test").into();
        r.timeout = now.saturating_sub(Duration::from_secs(24 - i)); // earliest first
        a.dialogs.put(&r).unwrap();
        recs.push(r);
    }
    store.assert_spread("sp:loc:*");
    store.assert_spread("sp:dlg:{*");
    store.assert_spread("sp:dlg:due:*");
    let counts = b.location.counts().unwrap();
    assert_eq!((counts.aors, counts.bindings), (24, 24));
    let mut seen = Vec::new();
    let mut cursor = sip_location::Cursor::START;
    loop {
        let next = b
            .location
            .scan(cursor, 5, now, &mut |aor, bs| {
                assert_eq!(bs.len(), 1);
                seen.push(aor.to_owned());
            })
            .unwrap();
        match next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    seen.sort();
    aors.sort();
    assert_eq!(seen, aors, "scan sees every AOR of every master once");
    let ids: Vec<_> = recs.iter().map(|r| r.id).collect();
    assert_eq!(b.dialogs.expired(now, 100).unwrap(), ids, "earliest first");
    assert_eq!(b.dialogs.expired(now, 3).unwrap(), ids[..3]);
    let mut all = b.dialogs.load_all().unwrap();
    all.sort_by_key(|r| r.id.0);
    assert_eq!(all, recs);
    let found = b
        .dialogs
        .find("spread-7@test", &recs[7].from_tag, &recs[7].to_tag)
        .unwrap();
    assert_eq!(found.as_ref(), Some(&recs[7]));
    b.dialogs.clear().unwrap();
    assert!(b.dialogs.load_all().unwrap().is_empty());
    assert_eq!(store.due(), 0);
}

/// The scenarios above, each against every kind of store.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod redis_server {
            $(#[test] fn $name() { super::$name(super::Kind::Redis) })*
        }
        mod valkey {
            $(#[test] fn $name() { super::$name(super::Kind::Valkey) })*
        }
        mod redis_cluster {
            $(#[test] fn $name() { super::$name(super::Kind::Cluster) })*
        }
    };
}

on_every_store!(
    two_nodes_share_registrations_dialogs_bans_and_nonces,
    a_dialog_lifetime_ends_on_exactly_one_node,
    sipp_clients_register_on_a_call_via_b_and_survive_a,
    shared_stores_follow_the_trait_rules_across_nodes,
);
