//! What the `interop_*` tests share (each declares `mod common;` too, whose `users` helper
//! this reuses): the real `sip-proxy run` binary, SIPp (Debian's
//! `sip-tester`) with the scenarios in `tests/scenarios/`, raw UDP user agents, and the
//! plumbing around them.
//!
//! Rules every helper keeps:
//! * everything binds and sends to 127.0.0.1 / 127.0.0.2 only (SIPp with `-bind_local`, its
//!   control socket on `-ci 127.0.0.1`);
//! * ports are picked free by the kernel, so tests run in parallel;
//! * every process is in its own process group, has a deadline, and is killed (the whole
//!   group, by its id) when its owner is dropped — a failing test leaves nothing behind;
//! * a missing peer program fails the test with what to install; nothing is skipped.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sip_parser::Message;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sip-proxy");

/// The two loopback addresses the tests use (a "private" and a "public" side).
pub(crate) const LO1: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// See [`LO1`].
pub(crate) const LO2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The SIP domain (and digest realm) the proxy serves in these tests.
pub(crate) const DOMAIN: &str = "sip.test";

// ---------------------------------------------------------------------------------------
// programs, directories, ports

/// Fails the test when `program` is not on the PATH.
pub(crate) fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed: the interop tests need it (Debian packages in \
         scripts/apt-packages.txt: sip-tester for sipp, iproute2 for ip, util-linux for \
         unshare; ./scripts/test installs them)"
    );
}

/// A fresh scratch directory, removed on drop unless `KEEP_INTEROP_DIRS` is set.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A new directory named after the test.
    pub(crate) fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "sip-proxy-interop-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// A path inside the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_INTEROP_DIRS").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        } else {
            eprintln!("kept {}", self.0.display());
        }
    }
}

/// A UDP port free on `ip` right now (the kernel's choice).
pub(crate) fn free_udp_port(ip: Ipv4Addr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP address on `ip`.
pub(crate) fn free_addr(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, free_udp_port(ip))
}

/// Whether some socket is bound on UDP `addr` (per /proc/net/udp).
pub(crate) fn udp_bound(addr: SocketAddrV4) -> bool {
    let ip = u32::from_le_bytes(addr.ip().octets());
    let needle = format!("{ip:08X}:{:04X} ", addr.port());
    fs::read_to_string("/proc/net/udp").is_ok_and(|t| t.contains(&needle))
}

/// Waits until a socket is bound on UDP `addr`.
pub(crate) fn wait_udp_bound(addr: SocketAddrV4, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if udp_bound(addr) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing bound udp {addr} within {limit:?}");
}

// ---------------------------------------------------------------------------------------
// processes

/// A child process in its own process group. Dropping it terminates the group (SIGTERM,
/// then SIGKILL after two seconds) and reaps the child.
pub(crate) struct Proc {
    child: Option<Child>,
    /// What it is, for messages.
    pub(crate) name: String,
}

/// Sends `signal` (`-TERM`, `-USR1` …) to process `pid`, or to its group with `group`.
fn signal(pid: u32, signal: &str, group: bool) {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let _ = Command::new("kill")
        .args([signal, "--", &target])
        .stderr(Stdio::null())
        .status();
}

impl Proc {
    /// Starts `cmd` (stdin closed) in a new process group.
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// The process id (also its group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends `sig` to the process itself.
    pub(crate) fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            signal(c.id(), sig, false);
        }
    }

    /// Waits up to `limit` for the exit; after that the group is killed and `None` is
    /// returned. Helpers left in the group are killed either way.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + limit;
        let mut status = None;
        while Instant::now() < deadline {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if status.is_none() {
            eprintln!("{}: still running after {limit:?}, killing it", self.name);
        }
        signal(child.id(), "-KILL", true);
        let s = child.wait().unwrap();
        status.map(|_| s)
    }

    /// SIGTERM, then [`wait`](Self::wait) up to `limit`.
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal("-TERM");
        self.wait(limit)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-TERM", true);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(c.id(), "-KILL", true);
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// the proxy

/// `sip-proxy users add` for each `(user, password)` into a fresh htdigest file (realm
/// [`DOMAIN`]), with the `users` tests' helper.
pub(crate) fn users_file(dir: &TempDir, users: &[(&str, &str)]) -> PathBuf {
    let file = dir.path("users.htdigest");
    for (user, password) in users {
        let out = crate::common::add(&file, DOMAIN, user, password);
        assert!(
            out.status.success(),
            "sip-proxy users add {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    file
}

/// A running `sip-proxy run`, its log (stderr, `-v`) in a file.
pub(crate) struct Proxy {
    proc: Proc,
    /// The log file.
    pub(crate) log: PathBuf,
    /// The UDP listeners, in the order given.
    pub(crate) listen: Vec<SocketAddrV4>,
    /// Its Prometheus endpoint (`--metrics 127.0.0.1:0`, the address it logged).
    metrics: Option<SocketAddr>,
}

impl Proxy {
    /// Starts `sip-proxy run` with `--listen udp:ADDR` for each of `listen`, `--domain`
    /// [`DOMAIN`], `-v` (debug log) and `args`, and waits until every listener is bound.
    pub(crate) fn start(dir: &TempDir, listen: &[SocketAddrV4], args: &[&str]) -> Self {
        Self::start_with(dir, listen, args, |c| c)
    }

    /// [`start`](Self::start), with `wrap` given the command before it is spawned (to run
    /// it under another program).
    pub(crate) fn start_with(
        dir: &TempDir,
        listen: &[SocketAddrV4],
        args: &[&str],
        wrap: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Self {
        let log = dir.path("proxy.log");
        let mut cmd = Command::new(BIN);
        cmd.arg("run");
        for l in listen {
            cmd.args(["--listen", &format!("udp:{l}")]);
        }
        cmd.args(["--domain", DOMAIN, "-v", "--workers", "2"])
            .args(["--metrics", "127.0.0.1:0", "--shutdown-grace", "1"])
            .arg("--data-dir")
            .arg(dir.path("data"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let mut proc = Proc::spawn("sip-proxy run", wrap(&mut cmd));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listen.iter().all(|a| udp_bound(*a)) {
            assert!(
                proc.running(),
                "sip-proxy run exited at start:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(
                Instant::now() < deadline,
                "sip-proxy did not bind {listen:?} within 10 s:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut p = Proxy {
            proc,
            log,
            listen: listen.to_vec(),
            metrics: None,
        };
        assert!(
            p.wait_log(&["serving metrics", "http://"], Duration::from_secs(10)),
            "no metrics endpoint logged:\n{}",
            p.log_text()
        );
        let text = p.log_text();
        let line = text
            .lines()
            .find(|l| l.contains("serving metrics"))
            .unwrap();
        let at = &line[line.find("http://").unwrap() + 7..];
        p.metrics = Some(at[..at.find("/metrics").unwrap()].parse().unwrap());
        p
    }

    /// Every sample of the metrics endpoint: series as written (`name{labels}`) → value.
    pub(crate) fn metrics(&self) -> BTreeMap<String, f64> {
        use std::io::{Read, Write};
        let addr = self.metrics.expect("metrics endpoint");
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (_, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// The counter `sip_proxy_NAME_total` (a name of `Stats`, e.g. `banned_drops`, or
    /// with labels: `responses_sent_total{class="4xx"}` given as
    /// `responses_sent{class="4xx"}`).
    pub(crate) fn counter(&self, name: &str) -> u64 {
        let series = match name.split_once('{') {
            Some((n, labels)) => format!("sip_proxy_{n}_total{{{labels}"),
            None => format!("sip_proxy_{name}_total"),
        };
        let m = self.metrics();
        let v = m
            .get(&series)
            .unwrap_or_else(|| panic!("`{series}` not exported: {m:#?}"));
        // Counters are whole numbers.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = *v as u64;
        n
    }

    /// The first listener.
    pub(crate) fn addr(&self) -> SocketAddrV4 {
        self.listen[0]
    }

    /// The log so far.
    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line containing every one of `needles`.
    pub(crate) fn wait_log(&self, needles: &[&str], limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self
                .log_text()
                .lines()
                .any(|l| needles.iter().all(|n| l.contains(n)))
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running (it has not crashed).
    pub(crate) fn running(&mut self) -> bool {
        self.proc.running()
    }

    /// SIGTERM and the exit status (graceful shutdown within `limit`).
    pub(crate) fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.proc.terminate(limit)
    }
}

// ---------------------------------------------------------------------------------------
// SIPp

/// The scenario file `tests/scenarios/NAME.xml`.
pub(crate) fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(format!("{name}.xml"))
}

/// One SIPp run being prepared: `Sipp::new(...).key(..).run(..)` for a UAC that runs to
/// its end, `.spawn()` for a UAS that waits for calls.
pub(crate) struct Sipp {
    name: String,
    local: SocketAddrV4,
    args: Vec<String>,
    messages: PathBuf,
    errors: PathBuf,
    screen: PathBuf,
    timeout: Duration,
}

/// A message SIPp logged (`-trace_msg`), byte-exact.
#[derive(Clone)]
pub(crate) struct Traced {
    /// Sent by SIPp (else received).
    pub(crate) sent: bool,
    /// The datagram.
    pub(crate) data: Vec<u8>,
}

impl Traced {
    /// The datagram as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The first line.
    pub(crate) fn first_line(&self) -> String {
        self.text().lines().next().unwrap_or_default().to_owned()
    }

    /// Parsed (panics on a message SIPp sent or received that we cannot parse).
    pub(crate) fn msg(&self) -> Message {
        Message::parse(Bytes::from(self.data.clone()))
            .unwrap_or_else(|e| panic!("unparseable {e}: {}", self.text()))
    }

    /// The method of a request.
    pub(crate) fn method(&self) -> Option<String> {
        let m = self.msg();
        m.method().map(str::to_owned)
    }

    /// The status of a response.
    pub(crate) fn status(&self) -> Option<u16> {
        self.msg().status()
    }

    /// Every value of header `name` (compact forms too), one per comma-separated entry
    /// for the address headers.
    pub(crate) fn header_values(&self, name: &str) -> Vec<String> {
        header_values(&self.msg(), name)
    }
}

impl std::fmt::Debug for Traced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?}",
            if self.sent { "sent" } else { "received" },
            self.text()
        )
    }
}

/// Every value of header `name` in `m`: Via, Route and Record-Route split into their
/// entries, the others one per header line.
pub(crate) fn header_values(m: &Message, name: &str) -> Vec<String> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match name.to_ascii_lowercase().as_str() {
        "record-route" => m.record_routes().map(|r| s(r.unwrap().raw_uri)).collect(),
        "route" => m.routes().map(|r| s(r.unwrap().raw_uri)).collect(),
        "via" => m.via().map(|v| s(v.unwrap().raw)).collect(),
        _ => m.headers_named(name).map(|h| s(h.value)).collect(),
    }
}

/// How a SIPp run ended.
pub(crate) struct SippRun {
    /// What it was.
    pub(crate) name: String,
    /// Its exit status (`None`: killed at the deadline).
    pub(crate) status: Option<ExitStatus>,
    /// Every message it sent and received, in order.
    pub(crate) messages: Vec<Traced>,
    /// Its error log (`-trace_err`).
    pub(crate) errors: String,
    /// The last statistics screen.
    pub(crate) screen: String,
}

impl SippRun {
    /// Panics unless SIPp exited 0 (every call succeeded), with what it logged.
    pub(crate) fn assert_ok(&self) -> &Self {
        assert!(
            self.status.is_some_and(|s| s.success()),
            "{} failed ({:?}):\nerrors:\n{}\nmessages:\n{:#?}",
            self.name,
            self.status,
            self.errors,
            self.messages
        );
        self
    }

    /// The messages received.
    pub(crate) fn received(&self) -> impl Iterator<Item = &Traced> {
        self.messages.iter().filter(|m| !m.sent)
    }

    /// The messages sent.
    pub(crate) fn sent(&self) -> impl Iterator<Item = &Traced> {
        self.messages.iter().filter(|m| m.sent)
    }

    /// The requests with `method` received.
    pub(crate) fn received_requests(&self, method: &str) -> Vec<&Traced> {
        self.received()
            .filter(|m| m.method().as_deref() == Some(method))
            .collect()
    }

    /// The requests with `method` sent.
    pub(crate) fn sent_requests(&self, method: &str) -> Vec<&Traced> {
        self.sent()
            .filter(|m| m.method().as_deref() == Some(method))
            .collect()
    }

    /// The responses with `status` received.
    pub(crate) fn received_responses(&self, status: u16) -> Vec<&Traced> {
        self.received()
            .filter(|m| m.status() == Some(status))
            .collect()
    }
}

/// Splits a SIPp `-trace_msg` file into its messages. Each entry is a dashed line, then
/// `UDP message sent (N bytes):` or `UDP message received [N] bytes :`, an empty line and
/// exactly N bytes.
pub(crate) fn parse_message_log(log: &[u8]) -> Vec<Traced> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < log.len() {
        let line_end = log[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(log.len(), |p| p + pos);
        let line = String::from_utf8_lossy(&log[pos..line_end]).into_owned();
        let sent = line.starts_with("UDP message sent (");
        let received = line.starts_with("UDP message received [");
        if !(sent || received) {
            pos = line_end + 1;
            continue;
        }
        let n: usize = line
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|e| panic!("SIPp message log line {line:?}: {e}"));
        // "...:\n\n" then exactly the message
        let start = (line_end + 2).min(log.len());
        let end = (start + n).min(log.len());
        out.push(Traced {
            sent,
            data: log[start..end].to_vec(),
        });
        pos = end;
    }
    out
}

impl Sipp {
    /// SIPp with scenario `tests/scenarios/SCENARIO.xml`, bound to `local`, traces in `dir`.
    pub(crate) fn new(dir: &TempDir, name: &str, scenario_name: &str, local: SocketAddrV4) -> Self {
        require("sipp");
        let ip = local.ip().to_string();
        let messages = dir.path(&format!("{name}.messages.log"));
        let errors = dir.path(&format!("{name}.errors.log"));
        let screen = dir.path(&format!("{name}.screen.log"));
        let args = [
            "-sf",
            scenario(scenario_name).to_str().unwrap(),
            "-i",
            &ip,
            "-mi",
            &ip,
            "-ci",
            "127.0.0.1",
            "-bind_local",
            "-p",
            &local.port().to_string(),
            "-t",
            "u1",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            messages.to_str().unwrap(),
            "-trace_err",
            "-error_file",
            errors.to_str().unwrap(),
            "-trace_screen",
            "-screen_file",
            screen.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        Sipp {
            name: name.to_owned(),
            local,
            args,
            messages,
            errors,
            screen,
            timeout: Duration::from_secs(20),
        }
    }

    /// `-key NAME VALUE`: `[NAME]` in the scenario.
    pub(crate) fn key(mut self, name: &str, value: &str) -> Self {
        self.args
            .extend(["-key".into(), name.into(), value.to_owned()]);
        self
    }

    /// Any other argument.
    pub(crate) fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    /// `-s USER`: `[service]`, the Request-URI user.
    pub(crate) fn service(self, user: &str) -> Self {
        self.arg("-s").arg(user)
    }

    /// Digest credentials for `[authentication]`; `uri` is the Request-URI the scenario
    /// sends (SIPp's default is the remote address, and the proxy insists on a digest-uri
    /// equal to the Request-URI, RFC 2617 §3.2.2.5).
    pub(crate) fn auth(self, user: &str, password: &str, uri: &str) -> Self {
        let uri = uri.strip_prefix("sip:").unwrap_or(uri).to_owned();
        self.arg("-au")
            .arg(user)
            .arg("-ap")
            .arg(password)
            .arg("-auth_uri")
            .arg(&uri)
    }

    /// `-m N`: stop after N calls.
    pub(crate) fn calls(self, n: u32) -> Self {
        self.arg("-m").arg(&n.to_string())
    }

    /// The global timeout (`-timeout`; SIPp fails when it is reached), and the deadline
    /// after which the process is killed (the same plus five seconds).
    pub(crate) fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    fn command(&self, remote: Option<SocketAddrV4>) -> Command {
        let mut c = Command::new("sipp");
        if let Some(r) = remote {
            c.arg(r.to_string());
        }
        c.args(&self.args)
            .args([
                "-timeout",
                &format!("{}s", self.timeout.as_secs().max(1)),
                "-timeout_error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Runs a UAC (or anything that ends by itself) towards `remote` to its end.
    pub(crate) fn run(self, remote: SocketAddrV4) -> SippRun {
        let mut p = Proc::spawn(
            &format!("sipp {}", self.name),
            &mut self.command(Some(remote)),
        );
        let status = p.wait(self.timeout + Duration::from_secs(5));
        self.finish(status)
    }

    /// Starts a UAS (no remote: it answers whoever calls) and waits until it listens.
    pub(crate) fn spawn(self) -> SippProc {
        let mut p = Proc::spawn(&format!("sipp {}", self.name), &mut self.command(None));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !udp_bound(self.local) {
            assert!(
                p.running(),
                "{} exited at start: {}",
                self.name,
                fs::read_to_string(&self.errors).unwrap_or_default()
            );
            assert!(Instant::now() < deadline, "{} did not bind", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        SippProc {
            sipp: self,
            proc: p,
        }
    }

    fn finish(&self, status: Option<ExitStatus>) -> SippRun {
        SippRun {
            name: self.name.clone(),
            status,
            messages: parse_message_log(&fs::read(&self.messages).unwrap_or_default()),
            errors: fs::read_to_string(&self.errors).unwrap_or_default(),
            screen: fs::read_to_string(&self.screen).unwrap_or_default(),
        }
    }
}

/// A running SIPp (a UAS).
pub(crate) struct SippProc {
    sipp: Sipp,
    proc: Proc,
}

impl SippProc {
    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddrV4 {
        self.sipp.local
    }

    /// Waits for it to end by itself (`-m` calls done).
    pub(crate) fn finish(mut self, limit: Duration) -> SippRun {
        let status = self.proc.wait(limit);
        self.sipp.finish(status)
    }

    /// Asks it to stop (SIGUSR1: SIPp's soft exit, logs flushed) and waits.
    pub(crate) fn stop(mut self, limit: Duration) -> SippRun {
        self.proc.signal("-USR1");
        let status = self.proc.wait(limit);
        self.sipp.finish(status)
    }
}

/// `user` registers `contact` from `from` through the proxy at `proxy` (REGISTER, 401,
/// REGISTER with credentials, 200 listing the binding).
pub(crate) fn register(
    dir: &TempDir,
    proxy: SocketAddrV4,
    from: SocketAddrV4,
    (user, password): (&str, &str),
    contact: &str,
) -> SippRun {
    let run = Sipp::new(
        dir,
        &format!("register-{user}-{}", from.port()),
        "register",
        from,
    )
    .key("user", user)
    .key("domain", DOMAIN)
    .key("contact", contact)
    .key("expires", "300")
    .auth(user, password, DOMAIN)
    .calls(1)
    .timeout(Duration::from_secs(10))
    .run(proxy);
    run.assert_ok();
    let ok = run.received_responses(200);
    assert_eq!(ok.len(), 1, "{:#?}", run.messages);
    let contacts = ok[0].header_values("Contact");
    assert!(
        contacts
            .iter()
            .any(|c| c.starts_with(&format!("<{contact}>")) && c.contains("expires=300")),
        "the 200 lists the binding {contact}: {contacts:?}"
    );
    run
}

// ---------------------------------------------------------------------------------------
// raw UDP user agents

/// A UDP socket playing a user agent by hand.
pub(crate) struct Ua {
    /// The socket.
    pub(crate) sock: UdpSocket,
    /// Its address.
    pub(crate) addr: SocketAddrV4,
}

impl Ua {
    /// Bound to a free port on `ip`.
    pub(crate) fn bind(ip: Ipv4Addr) -> Self {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        let addr = match sock.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        Ua { sock, addr }
    }

    /// Sends one datagram.
    pub(crate) fn send(&self, to: SocketAddrV4, data: &[u8]) {
        self.sock.send_to(data, to).unwrap();
    }

    /// The next datagram within `limit`, if any.
    pub(crate) fn recv(&self, limit: Duration) -> Option<Vec<u8>> {
        self.sock
            .set_read_timeout(Some(limit.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = vec![0u8; 65_536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                buf.truncate(n);
                Some(buf)
            }
            Err(_) => None,
        }
    }

    /// The next datagram that parses as a response with a final status (>= 200), skipping
    /// provisional ones, within `limit`.
    pub(crate) fn recv_final(&self, limit: Duration) -> Option<Message> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let d = self.recv(left)?;
            if let Ok(m) = Message::parse(Bytes::from(d)) {
                if m.status().is_some_and(|s| s >= 200) {
                    return Some(m);
                }
            }
        }
    }

    /// Everything that arrives within `window`.
    pub(crate) fn drain(&self, window: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.recv(left) {
                Some(d) => out.push(d),
                None => return out,
            }
        }
    }

    /// An out-of-dialog request from this UA to `to` (Request-URI `uri`), with our Via
    /// (with rport), fresh tags and Call-ID, and `extra` header lines.
    pub(crate) fn request(
        &self,
        method: &str,
        uri: &str,
        call_id: &str,
        extra: &[&str],
    ) -> Vec<u8> {
        let mut m = format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};rport;branch=z9hG4bK-{call_id}\r\n\
             From: <sip:probe@{DOMAIN}>;tag=t-{call_id}\r\n\
             To: <{uri}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n",
            self.addr
        );
        if !extra.iter().any(|h| h.starts_with("Max-Forwards:")) {
            m.push_str("Max-Forwards: 70\r\n");
        }
        for h in extra {
            m.push_str(h);
            m.push_str("\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m.into_bytes()
    }
}

/// The reason phrase of a response, as text.
pub(crate) fn reason(m: &Message) -> String {
    String::from_utf8_lossy(m.reason().unwrap_or_default()).into_owned()
}
