//! User agents played by hand on UDP sockets: [`Ua`] (datagrams as bytes, parsed with
//! sip-parser), [`Phone`] (waits for messages a predicate accepts) and [`TextUa`] (messages
//! as text, [`Msg`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_parser::Message;

use super::proxy::DOMAIN;

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

/// A UDP endpoint of the test playing a phone.
pub(crate) struct Phone {
    /// The socket.
    pub(crate) sock: UdpSocket,
    /// Its port.
    pub(crate) port: u16,
    /// Its address.
    pub(crate) ip: &'static str,
}

impl Phone {
    /// A phone on a free port of `ip`.
    pub(crate) fn on(ip: &'static str) -> Phone {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        Phone { sock, port, ip }
    }

    /// A phone on a free port of 127.0.0.1.
    pub(crate) fn new() -> Phone {
        Phone::on("127.0.0.1")
    }

    /// Sends `msg` to `to`.
    pub(crate) fn send(&self, to: impl ToSocketAddrs, msg: impl AsRef<[u8]>) {
        self.sock.send_to(msg.as_ref(), to).unwrap();
    }

    /// The next message matching `want` within `within` (others are skipped), if any.
    pub(crate) fn wait(
        &self,
        within: Duration,
        want: impl Fn(&Message) -> bool,
    ) -> Option<(Message, SocketAddr)> {
        let end = Instant::now() + within;
        let mut buf = vec![0u8; 65_535];
        while Instant::now() < end {
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                let m = Message::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
                if want(&m) {
                    return Some((m, from));
                }
            }
        }
        None
    }

    /// The next message matching `want` within `within`, which must come.
    pub(crate) fn expect_within(
        &self,
        what: &str,
        within: Duration,
        want: impl Fn(&Message) -> bool,
    ) -> (Message, SocketAddr) {
        self.wait(within, want)
            .unwrap_or_else(|| panic!("no {what} within {within:?}"))
    }

    /// The next message matching `want` within 5 s, which must come.
    pub(crate) fn expect(
        &self,
        what: &str,
        want: impl Fn(&Message) -> bool,
    ) -> (Message, SocketAddr) {
        self.expect_within(what, Duration::from_secs(5), want)
    }

    /// A final response (>= 200) to `method`, skipping provisional ones.
    pub(crate) fn final_to(&self, what: &str, method: &'static str) -> Message {
        self.expect(what, move |m| {
            m.status().is_some_and(|s| s >= 200) && m.cseq().is_ok_and(|c| c.method == method)
        })
        .0
    }
}

/// A response with status `s` to `method`.
pub(crate) fn status_is(s: u16, method: &'static str) -> impl Fn(&Message) -> bool {
    move |m| m.status() == Some(s) && m.cseq().is_ok_and(|c| c.method == method)
}

/// A request with `method`.
pub(crate) fn request_is(method: &'static str) -> impl Fn(&Message) -> bool {
    move |m| m.method() == Some(method)
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

/// A user agent on one UDP socket, reading messages as text.
pub(crate) struct TextUa {
    pub(crate) sock: UdpSocket,
    pub(crate) addr: SocketAddr,
}

impl TextUa {
    /// A UA on `ip` (127.0.0.1 or 127.0.0.2), any port.
    pub(crate) fn new(ip: &str) -> TextUa {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        let addr = sock.local_addr().unwrap();
        TextUa { sock, addr }
    }

    /// Sends `text` to `to`.
    pub(crate) fn send(&self, to: impl ToSocketAddrs, text: &str) {
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
    pub(crate) fn register(&self, proxy: SocketAddrV4, user: &str, cseq: u32, extra: &str) -> Msg {
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
        proxy: SocketAddrV4,
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
