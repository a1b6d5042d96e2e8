//! SIPp runs (`sipp` of Debian's `sip-tester`) with the scenarios in `tests/sipp/`: SIP,
//! media and control sockets on 127.0.0.1 / 127.0.0.2 (`-bind_local`), no keyboard, every
//! message traced and parsed back.

use std::fs;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_parser::Message;

use super::net::{free_udp_port, udp_bound};
use super::proc::{Proc, require};
use super::proxy::DOMAIN;

/// The scenario file `tests/sipp/NAME.xml`.
pub(crate) fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
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
    /// SIPp with scenario `tests/sipp/SCENARIO.xml`, bound to `local`, traces in `dir`.
    pub(crate) fn new(dir: &Path, name: &str, scenario_name: &str, local: SocketAddrV4) -> Self {
        Self::with_file(dir, name, &scenario(scenario_name), local)
    }

    /// SIPp with the scenario file `file`, bound to `local`, traces in `dir`.
    pub(crate) fn with_file(dir: &Path, name: &str, file: &Path, local: SocketAddrV4) -> Self {
        require("sipp");
        let ip = local.ip().to_string();
        let messages = dir.join(format!("{name}.messages.log"));
        let errors = dir.join(format!("{name}.errors.log"));
        let screen = dir.join(format!("{name}.screen.log"));
        let args = [
            "-sf",
            file.to_str().unwrap(),
            "-i",
            &ip,
            "-mi",
            &ip,
            "-ci",
            "127.0.0.1",
            "-cp",
            &free_udp_port().to_string(),
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

    /// Starts a UAC (or anything that ends by itself) towards `remote`, without waiting.
    pub(crate) fn spawn_to(self, remote: SocketAddrV4) -> SippProc {
        let p = Proc::spawn(
            &format!("sipp {}", self.name),
            &mut self.command(Some(remote)),
        );
        SippProc {
            sipp: self,
            proc: p,
        }
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

    /// [`finish`](Self::finish) within the run's timeout and five seconds more; the run
    /// must succeed (`context` says what it showed).
    pub(crate) fn succeeds(self, context: &str) -> SippRun {
        let limit = self.sipp.timeout + Duration::from_secs(5);
        let run = self.finish(limit);
        assert!(
            run.status.is_some_and(|s| s.success()),
            "{} failed ({context}, {:?}):\nerrors:\n{}\nmessages:\n{:#?}",
            run.name,
            run.status,
            run.errors,
            run.messages
        );
        run
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
    dir: &Path,
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

/// One call of scenario `tests/sipp/SCENARIO.xml` as user `service` from
/// 127.0.0.1:`port`, within 20 s: a UAC towards `remote`, started; a UAS when `remote` is
/// `None`, started and listening.
pub(crate) fn one_call(
    dir: &Path,
    name: &str,
    scenario_name: &str,
    service: &str,
    port: u16,
    remote: Option<SocketAddrV4>,
) -> SippProc {
    let s = Sipp::new(
        dir,
        name,
        scenario_name,
        SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port),
    )
    .service(service)
    .calls(1)
    .timeout(Duration::from_secs(20));
    match remote {
        Some(r) => s.spawn_to(r),
        None => s.spawn(),
    }
}
