//! A real `sip-proxy run` on loopback, and `sip-proxy ctl` against it.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::net::{LO1, free_addr};
use super::proc::{BIN, Proc};

/// The SIP domain (and digest realm) the proxy serves in the interop tests.
pub(crate) const DOMAIN: &str = "sip.test";

/// Numbers the log files of the proxies a test starts.
static STARTS: AtomicU32 = AtomicU32::new(0);

/// A running `sip-proxy run`, its log (stderr) in a file; stopped with its process group
/// when dropped.
pub(crate) struct Proxy {
    proc: Proc,
    /// Its data directory (control socket, database).
    pub(crate) data: PathBuf,
    /// The log file.
    pub(crate) log: PathBuf,
    /// The UDP listeners, in the order given.
    pub(crate) listen: Vec<SocketAddrV4>,
    /// Its Prometheus endpoint, when it serves one (the address it logged).
    metrics: Option<SocketAddr>,
}

impl Proxy {
    /// Starts `sip-proxy run` with `--listen udp:ADDR` for each of `listen`, `--data-dir
    /// DIR/data` (the control socket and the database live there, and two proxies sharing
    /// one refuse to start) and `args`, its log in `DIR/proxy-PORT-N.log`; waits (30 s at
    /// most) until it logs that it runs: every listener, the control socket and the metrics
    /// endpoint are up then.
    pub(crate) fn run(dir: &Path, listen: &[SocketAddrV4], args: &[&str]) -> Self {
        Self::run_with(dir, listen, args, |c| c)
    }

    /// [`run`](Self::run), with `wrap` given the command before it is spawned (to run it
    /// under another program).
    pub(crate) fn run_with(
        dir: &Path,
        listen: &[SocketAddrV4],
        args: &[&str],
        wrap: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Self {
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = dir.join(format!("proxy-{}-{n}.log", listen[0].port()));
        let data = dir.join("data");
        let mut cmd = Command::new(BIN);
        cmd.arg("run");
        for l in listen {
            cmd.args(["--listen", &format!("udp:{l}")]);
        }
        cmd.arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let proc = Proc::spawn("sip-proxy run", wrap(&mut cmd));
        let mut p = Proxy {
            proc,
            data,
            log,
            listen: listen.to_vec(),
            metrics: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.log_text().contains("sip-proxy running") {
            assert!(
                p.proc.running(),
                "sip-proxy run exited at start:\n{}",
                p.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "sip-proxy did not start within 30 s:\n{}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p.metrics = p.log_text().lines().find_map(|l| {
            let at = &l[l.find("serving metrics")?..];
            let at = &at[at.find("http://")? + 7..];
            at[..at.find("/metrics")?].parse().ok()
        });
        p
    }

    /// The interop tests' proxy: [`run`](Self::run) with `--domain` [`DOMAIN`], `-v` (debug
    /// log), two workers, a metrics endpoint, a one-second shutdown grace and `args`.
    pub(crate) fn start(dir: &Path, listen: &[SocketAddrV4], args: &[&str]) -> Self {
        Self::start_with(dir, listen, args, |c| c)
    }

    /// [`start`](Self::start), with `wrap` given the command before it is spawned.
    pub(crate) fn start_with(
        dir: &Path,
        listen: &[SocketAddrV4],
        args: &[&str],
        wrap: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Self {
        let mut all = vec!["--domain", DOMAIN, "-v", "--workers", "2"];
        all.extend(["--metrics", "127.0.0.1:0", "--shutdown-grace", "1"]);
        all.extend_from_slice(args);
        Self::run_with(dir, listen, &all, wrap)
    }

    /// The control tests' proxy: [`run`](Self::run) on a free port of 127.0.0.1, one
    /// worker, no shutdown grace, and `args`.
    pub(crate) fn small(dir: &Path, args: &[&str]) -> Self {
        let mut all = vec!["--workers", "1", "--shutdown-grace", "0"];
        all.extend_from_slice(args);
        Self::run(dir, &[free_addr(LO1)], &all)
    }

    /// The first listener.
    pub(crate) fn addr(&self) -> SocketAddrV4 {
        self.listen[0]
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.proc.pid()
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

    /// SIGTERM and the exit status (graceful shutdown within `limit`; `None`: it was
    /// killed at the deadline).
    pub(crate) fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.proc.terminate(limit)
    }

    /// SIGKILL: no shutdown at all.
    pub(crate) fn kill(mut self) {
        self.proc.kill();
    }

    // -- the metrics endpoint

    /// Where its metrics endpoint listens.
    pub(crate) fn metrics_addr(&self) -> SocketAddr {
        self.metrics.expect("a metrics endpoint (--metrics)")
    }

    /// Every sample of the metrics endpoint: series as written (`name{labels}`) → value.
    pub(crate) fn metrics(&self) -> BTreeMap<String, f64> {
        use std::io::{Read, Write};
        let mut s =
            TcpStream::connect_timeout(&self.metrics_addr(), Duration::from_secs(5)).unwrap();
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

    // -- sip-proxy ctl

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
            self.log_text()
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
}
