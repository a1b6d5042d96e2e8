//! Helpers of the `sip-proxy ctl` tests: a real `sip-proxy run` on loopback with a scratch
//! data directory, `sip-proxy ctl` against it, and hand-made user agents on UDP sockets.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sip-proxy");

/// A fresh scratch directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sip-proxy-ctl-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A UDP port free on 127.0.0.1 a moment ago.
pub(crate) fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `sip-proxy run`, stopped (SIGTERM, then killed) when dropped.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) port: u16,
}

impl Running {
    /// Starts `sip-proxy run` on `udp:127.0.0.1:PORT` with `DIR/data` as data directory and
    /// `extra` flags; waits until its control socket answers.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Running {
        let port = free_port();
        let data = dir.join("data");
        let log = fs::File::create(dir.join(format!("proxy-{port}.log"))).unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .args(["--listen", &format!("udp:127.0.0.1:{port}")])
            .args(["--data-dir", data.to_str().unwrap()])
            .args(["--workers", "1", "--shutdown-grace", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Running {
            child,
            dir: dir.to_owned(),
            data,
            port,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = r.child.try_wait().unwrap() {
                panic!("sip-proxy run exited ({status}): {}", r.log());
            }
            if r.ctl(&["stats"]).status.success() {
                return r;
            }
            assert!(
                Instant::now() < end,
                "control socket never answered: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The proxy's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join(format!("proxy-{}.log", self.port))).unwrap_or_default()
    }

    /// `sip-proxy ctl --data-dir DATA ARGS`.
    pub(crate) fn ctl(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("ctl")
            .args(["--data-dir", self.data.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    }

    /// `ctl ARGS`, which must succeed: its standard output.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "ctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ctl ARGS --json`, which must succeed: the JSON printed.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// `ctl ARGS`, which must fail with `code`: its standard error.
    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.ctl(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// One counter of `ctl stats`.
    pub(crate) fn stat(&self, name: &str) -> u64 {
        self.json(&["stats"])[name].as_u64().unwrap()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SIP message as text, with what the tests look at.
#[derive(Debug, Clone)]
pub(crate) struct Msg(pub(crate) String);

impl Msg {
    /// The start line.
    pub(crate) fn start(&self) -> &str {
        self.0.lines().next().unwrap_or("")
    }

    /// The status of a response.
    pub(crate) fn status(&self) -> Option<u16> {
        let s = self.start().strip_prefix("SIP/2.0 ")?;
        s.get(..3)?.parse().ok()
    }

    /// The method of a request.
    pub(crate) fn method(&self) -> Option<&str> {
        if self.start().starts_with("SIP/2.0") {
            return None;
        }
        self.start().split(' ').next()
    }

    /// Every value of header `name` (whole lines; compact forms not used by the proxy).
    pub(crate) fn headers(&self, name: &str) -> Vec<&str> {
        self.0
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
            })
            .collect()
    }

    /// The first value of header `name`.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers(name).first().copied().unwrap_or("")
    }

    /// The `tag` parameter of From or To.
    pub(crate) fn tag(&self, name: &str) -> &str {
        let h = self.header(name);
        h.split(';')
            .find_map(|p| p.trim().strip_prefix("tag="))
            .unwrap_or("")
    }

    /// The answer to this request: its Vias, From, To (with `to_tag`), Call-ID, CSeq and
    /// `extra` header lines.
    pub(crate) fn answer(&self, status: &str, to_tag: Option<&str>, extra: &str) -> String {
        let mut r = format!("SIP/2.0 {status}\r\n");
        for v in self.headers("Via") {
            let _ = write!(r, "Via: {v}\r\n");
        }
        for v in self.headers("Record-Route") {
            let _ = write!(r, "Record-Route: {v}\r\n");
        }
        let to = self.header("To");
        let to = match to_tag {
            Some(t) if !to.contains("tag=") => format!("{to};tag={t}"),
            _ => to.to_owned(),
        };
        let _ = write!(
            r,
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            self.header("From"),
            self.header("Call-ID"),
            self.header("CSeq"),
        );
        r
    }
}

/// A user agent: one UDP socket.
pub(crate) struct Ua {
    pub(crate) sock: UdpSocket,
    pub(crate) addr: SocketAddr,
}

impl Ua {
    /// A UA on `ip` (127.0.0.1 or 127.0.0.2), any port.
    pub(crate) fn new(ip: &str) -> Ua {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        let addr = sock.local_addr().unwrap();
        Ua { sock, addr }
    }

    pub(crate) fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).unwrap();
    }

    /// The next message within `wait`.
    pub(crate) fn recv(&self, wait: Duration) -> Option<Msg> {
        let end = Instant::now() + wait;
        let mut buf = vec![0u8; 65_535];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                return Some(Msg(String::from_utf8_lossy(&buf[..n]).into_owned()));
            }
        }
    }

    /// The first message within `wait` that `want` accepts (others are skipped).
    pub(crate) fn wait_for(&self, wait: Duration, want: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let end = Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let m = self.recv(left)?;
            if want(&m) {
                return Some(m);
            }
        }
    }

    /// The final response (≥ 200) within `wait`.
    pub(crate) fn final_response(&self, wait: Duration) -> Option<Msg> {
        self.wait_for(wait, |m| m.status().is_some_and(|s| s >= 200))
    }

    /// A request from this UA: Via, Max-Forwards, From (tag), To, Call-ID, CSeq, then
    /// `extra` header lines.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per header of a hand-made request"
    )]
    pub(crate) fn request(
        &self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
        extra: &str,
    ) -> String {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{call_id}-{cseq}-{method};rport\r\nMax-Forwards: 70\r\nFrom: <{from}>;tag=t-{call_id}\r\nTo: <{to}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n",
            self.addr
        )
    }

    /// REGISTER `sip:user@localhost` with this UA's contact (and `extra` header lines):
    /// the final response.
    pub(crate) fn register(&self, proxy: SocketAddr, user: &str, cseq: u32, extra: &str) -> Msg {
        let aor = format!("sip:{user}@localhost");
        let contact = format!("Contact: <sip:{user}@{}>\r\nExpires: 300\r\n", self.addr);
        let req = self.request(
            "REGISTER",
            "sip:localhost",
            &aor,
            &aor,
            &format!("reg-{user}-{}", self.addr.port()),
            cseq,
            &format!("{contact}{extra}"),
        );
        self.send(proxy, &req);
        self.final_response(Duration::from_secs(5))
            .expect("no final response to REGISTER")
    }

    /// OPTIONS `uri` through the proxy: the final response, if any within `wait`.
    pub(crate) fn options(
        &self,
        proxy: SocketAddr,
        uri: &str,
        call_id: &str,
        wait: Duration,
    ) -> Option<Msg> {
        let from = format!("sip:probe@{}", self.addr);
        self.send(
            proxy,
            &self.request("OPTIONS", uri, &from, uri, call_id, 1, ""),
        );
        self.final_response(wait)
    }
}

/// A SIPp run (`sipp` of Debian's `sip-tester`): SIP, media and control sockets on
/// 127.0.0.1, one call, no keyboard, its messages and errors logged in the test's directory.
pub(crate) struct Sipp {
    child: Child,
    name: String,
    dir: PathBuf,
}

/// Scenario file `name` of `tests/sipp`.
pub(crate) fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

impl Sipp {
    /// Starts `sipp -sf tests/sipp/SCENARIO -s SERVICE -p PORT` towards `remote` (none for a
    /// UAS).
    pub(crate) fn start(
        dir: &Path,
        name: &str,
        scenario_file: &str,
        service: &str,
        port: u16,
        remote: Option<SocketAddr>,
    ) -> Sipp {
        let found = std::env::var_os("PATH")
            .is_some_and(|ps| std::env::split_paths(&ps).any(|d| d.join("sipp").is_file()));
        assert!(
            found,
            "`sipp` is not installed: this test needs it (Debian package sip-tester, listed \
             in scripts/apt-packages.txt)"
        );
        let mut c = Command::new("sipp");
        c.current_dir(dir)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mi", "127.0.0.1", "-ci", "127.0.0.1"])
            .args(["-cp", &free_port().to_string(), "-nostdin"])
            .args(["-m", "1", "-timeout", "20s", "-timeout_error"])
            .args(["-trace_msg", "-message_file"])
            .arg(dir.join(format!("{name}_messages.log")))
            .args(["-trace_err", "-error_file"])
            .arg(dir.join(format!("{name}_errors.log")))
            .args(["-s", service, "-sf"])
            .arg(scenario(scenario_file))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("{name}.err"))).unwrap());
        if let Some(r) = remote {
            c.arg(r.to_string());
        }
        Sipp {
            child: c.spawn().unwrap(),
            name: name.to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// Waits until something is bound on udp 127.0.0.1:`port` (a UAS ready).
    pub(crate) fn wait_bound(port: u16) {
        let end = Instant::now() + Duration::from_secs(10);
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < end, "nothing bound udp 127.0.0.1:{port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it logged (errors, then messages).
    pub(crate) fn logs(&self) -> String {
        let read = |s: &str| {
            fs::read_to_string(self.dir.join(format!("{}{s}", self.name))).unwrap_or_default()
        };
        format!(
            "--- {0} stderr\n{1}\n--- {0} errors\n{2}\n--- {0} messages\n{3}",
            self.name,
            read(".err"),
            read("_errors.log"),
            read("_messages.log")
        )
    }

    /// Waits (30 s at most, then kills it) for the end of its call: whether it succeeded
    /// (exit status 0: every message of the scenario came and matched).
    pub(crate) fn finish(mut self) -> bool {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.success();
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`finish`](Self::finish), which must succeed.
    pub(crate) fn succeeds(self, context: &str) {
        let logs = self.logs();
        let name = self.name.clone();
        assert!(self.finish(), "sipp {name} failed ({context})\n{logs}");
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
