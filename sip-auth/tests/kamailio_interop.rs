//! Interop of the client side with Kamailio 5.6's `auth` module (Debian package `kamailio`)
//! on loopback: Kamailio challenges a REGISTER with `www_challenge` (MD5, then SHA-256 via
//! `modparam("auth", "algorithm", …)`), our `DigestClient` answers, and Kamailio's
//! `pv_www_authenticate` must accept it with 200; a wrong password must be re-challenged.
//!
//! Fails, never skips, when `kamailio` is missing (scripts/apt-packages.txt installs it).

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_auth::{ClientError, ClientRequest, DigestClient};

struct Kamailio {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its children; SIGKILL only as a last resort.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(algorithm: &str, port: u16) -> Kamailio {
    let dir = std::env::temp_dir().join(format!(
        "sip-auth-kamailio-{}-{algorithm}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        r#"#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "auth.so"
modparam("auth", "algorithm", "{algorithm}")
request_route {{
    if (method=="REGISTER") {{
        if (!pv_www_authenticate("kamailio.test", "secret", "0")) {{
            www_challenge("kamailio.test", "1");
            exit;
        }}
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("404", "Not here");
}}
"#
    );
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("kamailio")
        .arg("-f")
        .arg(&path)
        .args(["-DD", "-E", "-Y"])
        .arg(&dir)
        .arg("-w")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "kamailio not found: install the Debian package kamailio (scripts/apt-packages.txt)",
        );
    Kamailio { child, dir }
}

fn register(port: u16, cseq: u32, authorization: Option<&str>) -> String {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:kamailio.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{cseq}\r\n\
         From: <sip:alice@kamailio.test>;tag=t1\r\n\
         To: <sip:alice@kamailio.test>\r\n\
         Call-ID: sip-auth-kamailio-1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {auth}\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn exchange(sock: &UdpSocket, to: u16, msg: &str, deadline: Instant) -> String {
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.send_to(msg.as_bytes(), ("127.0.0.1", to)).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    panic!("no answer from kamailio on port {to}");
}

fn challenges(resp: &str) -> Vec<&str> {
    resp.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| v.trim())
        .collect()
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn kamailio_accepts_our_client_md5_and_sha256() {
    for algorithm in ["MD5", "SHA-256"] {
        let port = free_port();
        let _k = start(algorithm, port);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(250)))
            .unwrap();
        let me = sock.local_addr().unwrap().port();
        let deadline = Instant::now() + Duration::from_secs(15);
        let req = ClientRequest {
            method: "REGISTER",
            uri: "sip:kamailio.test",
            body: b"",
        };

        let r1 = exchange(&sock, port, &register(me, 1, None), deadline);
        assert!(r1.starts_with("SIP/2.0 401"), "{r1}");
        let ch = challenges(&r1);
        assert!(ch[0].contains(&format!("algorithm={algorithm}")), "{r1}");
        let chb: Vec<&[u8]> = ch.iter().map(|c| c.as_bytes()).collect();

        let mut client = DigestClient::new("alice", "secret");
        let auth = client.respond(&chb, &req, "6b8b4567").unwrap();
        let r2 = exchange(&sock, port, &register(me, 2, Some(&auth)), deadline);
        assert!(
            r2.starts_with("SIP/2.0 200"),
            "{algorithm}: kamailio refused {auth}:\n{r2}"
        );
        client.accepted();
        // A second request on the same nonce with nc=2.
        let auth = client.authorize(&req, "6b8b4568").unwrap();
        let r3 = exchange(&sock, port, &register(me, 3, Some(&auth)), deadline);
        assert!(r3.starts_with("SIP/2.0 200"), "{algorithm} nc=2:\n{r3}");

        // Wrong password: re-challenged without stale, and our client stops.
        let mut wrong = DigestClient::new("alice", "guess");
        let auth = wrong.respond(&chb, &req, "1").unwrap();
        let r4 = exchange(&sock, port, &register(me, 4, Some(&auth)), deadline);
        assert!(r4.starts_with("SIP/2.0 401"), "{r4}");
        let ch4 = challenges(&r4);
        let ch4b: Vec<&[u8]> = ch4.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(wrong.respond(&ch4b, &req, "2"), Err(ClientError::Rejected));
    }
}
