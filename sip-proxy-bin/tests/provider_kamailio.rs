//! Registration to a provider (seed 002's `uac_reg`), with Kamailio 5.6 as the provider on
//! loopback: its registrar challenges (`auth`, plaintext passwords in an `htable` checked by
//! `pv_auth_check`) and stores the binding in `usrloc`; calls to its users are looked up
//! (`lookup("location")`) and relayed, Record-Routed.
//!
//! ```text
//! SIPp UAC --INVITE sip:trunk@kamailio--> Kamailio --lookup--> sip-proxy (sip:trunk@proxy)
//!                                                              --> SIPp UAS (local user
//!                                                                  trunk, or default set)
//! ```
//!
//! Our proxy (in-process, configured through the `run` flags `--register-to` and
//! `--register-password-file`) registers; Kamailio's location table (`kamcmd ul.dump`
//! over its ctl socket) shows our Contact; a refresh happens before the (shortened) expiry;
//! a call Kamailio sends to that user arrives through our proxy at the callee, and its ACK
//! and BYE follow the route set through both.
//!
//! Everything binds to 127.0.0.1 on free ports, every process is bounded (SIPp's `-m`,
//! `-timeout`, wall-clock limits here) and killed when the test ends. A missing `kamailio`,
//! `kamcmd` or `sipp` fails the test (Debian packages in scripts/apt-packages.txt).

mod support;

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_proxy::config::Config;
use sip_proxy::net::{Clock, Server};
use sip_proxy::proxy::uplink::UplinkState;
use sip_proxy::proxy::{Parts, Proxy, SystemResolver};
use sip_proxy::run::RunArgs;
use support::dir::TempDir;
use support::net::{LO1, eventually, free_udp_port, wait_udp_bound};
use support::proc::{Proc, require};
use support::sipp::scenario;

const KAMAILIO_MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";
const PASSWORD: &str = "s3cret-trunk";

// ---------------------------------------------------------------------------------------
// Kamailio, the provider

/// Kamailio on 127.0.0.1:`port`: registrar with digest authentication for the users of
/// `users` (name, plaintext password), registrations shortened to `max_expires` seconds,
/// calls to registered users looked up and relayed with Record-Route.
fn kamailio(dir: &TempDir, port: u16, users: &[(&str, &str)], max_expires: u32) -> Proc {
    require("kamailio");
    require("kamcmd");
    let ctl = dir.path("kamailio_ctl");
    let mut creds = String::new();
    for (u, p) in users {
        writeln!(creds, "    $sht(creds=>{u}) = \"{p}\";").unwrap();
    }
    let cfg = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:{port}
mpath="{KAMAILIO_MODULES}"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "htable.so"
loadmodule "auth.so"
loadmodule "ctl.so"

modparam("ctl", "binrpc", "unix:{ctl}")
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 20000)
modparam("rr", "enable_full_lr", 0)
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 5)
modparam("registrar", "max_expires", {max_expires})
modparam("auth", "secret", "provider-test-secret")
modparam("auth", "nonce_expire", 300)
modparam("htable", "htable", "creds=>size=4;autoexpire=0;")

event_route[htable:mod-init] {{
{creds}}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("17895", "7")) {{
        xlog("L_WARN", "malformed request from $si:$sp\n");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    remove_hf("Route");
    if (is_method("REGISTER")) {{
        if ($au == $null || $sht(creds=>$au) == $null) {{
            auth_challenge("$fd", "1");
            exit;
        }}
        if (!pv_auth_check("$fd", "$sht(creds=>$au)", "0", "1")) {{
            xlog("L_WARN", "registration of $tu refused (auth user $au)\n");
            auth_challenge("$fd", "1");
            exit;
        }}
        consume_credentials();
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    xlog("L_INFO", "relaying $rm for $tu to $ru\n");
    t_relay();
}}
"#,
        ctl = ctl.display()
    );
    let path = dir.path("kamailio.cfg");
    fs::write(&path, cfg).unwrap();
    let check = Command::new("kamailio")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "kamailio config check failed: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = fs::File::create(dir.path("kamailio.log")).unwrap();
    let p = Proc::spawn(
        "kamailio",
        Command::new("kamailio")
            .arg("-f")
            .arg(&path)
            // foreground, logs to stderr, small memory, its own runtime directory
            .args(["-D", "-E", "-m", "32", "-M", "8", "-Y"])
            .arg(&**dir)
            .stdout(Stdio::null())
            .stderr(log),
    );
    wait_udp_bound(SocketAddrV4::new(LO1, port), Duration::from_secs(10));
    eventually(Duration::from_secs(10), "kamailio ctl socket", || {
        ctl.exists().then_some(())
    });
    p
}

/// `kamcmd CMD` over the provider's ctl socket.
fn kamcmd(dir: &TempDir, cmd: &str) -> String {
    let out = Command::new("kamcmd")
        .arg("-s")
        .arg(format!("unix:{}", dir.path("kamailio_ctl").display()))
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("run kamcmd");
    assert!(
        out.status.success(),
        "kamcmd {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `CSeq` of the binding with `contact` in Kamailio's location table, if it is there.
fn kamailio_binding(dir: &TempDir, contact: &str) -> Option<u64> {
    let dump = kamcmd(dir, "ul.dump");
    // ul.dump lists each contact as `Address: <uri>` followed by its attributes.
    let at = dump.find(&format!("Address: {contact}"))?;
    let rest = &dump[at..];
    let cseq = rest.find("CSeq: ")?;
    rest[cseq + 6..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
}

// ---------------------------------------------------------------------------------------
// Our proxy, and SIPp

/// The configuration of our proxy on 127.0.0.1:`port` from the `run` flags: registering
/// `sip:trunk@127.0.0.1:kport`, and a default upstream set when given.
fn proxy_config(dir: &TempDir, port: u16, kport: u16, upstream: Option<u16>) -> Config {
    let password_file = dir.path("provider-password");
    fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let args = RunArgs {
        listen: vec![format!("udp:127.0.0.1:{port}").parse().unwrap()],
        register_to: Some(format!("sip:trunk@127.0.0.1:{kport}")),
        register_password_file: Some(password_file),
        upstream: upstream
            .map(|p| format!("default=udp:127.0.0.1:{p}"))
            .into_iter()
            .collect(),
        ..RunArgs::default()
    };
    args.config().expect("the flags make a configuration")
}

fn start_proxy(cfg: Config) -> Server {
    let clock = Clock::new();
    let mut seed = [0u8; 32];
    sip_parser::Random::fill(&mut sip_parser::SystemRandom::new(), &mut seed);
    let proxy = Proxy::new(
        cfg,
        Parts {
            seed,
            capture: None,
            resolver: Arc::new(SystemResolver),
        },
        clock.now().wall,
    )
    .expect("the proxy starts");
    Server::start(Arc::new(proxy), clock, 1).expect("the proxy binds its listener")
}

/// Registers `user@localhost` (the proxy's domain) with Contact 127.0.0.1:`port` on the
/// proxy, from that very port (so the callee started there next is reached).
fn register_local(proxy_port: u16, port: u16, user: &str) {
    let sock = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let req = format!(
        "REGISTER sip:localhost SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-local-{port}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@localhost>;tag=local\r\n\
         To: <sip:{user}@localhost>\r\n\
         Call-ID: local-{port}@127.0.0.1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@127.0.0.1:{port}>\r\n\
         Expires: 300\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no answer to the local REGISTER");
        sock.send_to(req.as_bytes(), ("127.0.0.1", proxy_port))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let r = String::from_utf8_lossy(&buf[..n]);
            assert!(r.starts_with("SIP/2.0 200"), "local REGISTER: {r}");
            return;
        }
    }
}

/// SIP, media and control sockets on 127.0.0.1 only, no keyboard.
fn sipp(dir: &TempDir, port: u16, role: &str) -> Command {
    require("sipp");
    let mut c = Command::new("sipp");
    c.current_dir(&**dir)
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-mi", "127.0.0.1", "-ci", "127.0.0.1"])
        .args(["-cp", &free_udp_port().to_string(), "-nostdin"])
        .args(["-m", "1", "-timeout", "30s", "-timeout_error"])
        .args(["-trace_msg", "-message_file"])
        .arg(dir.path(&format!("{role}_messages.log")))
        .args(["-trace_err", "-error_file"])
        .arg(dir.path(&format!("{role}_errors.log")))
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path(&format!("{role}.err"))).unwrap());
    c
}

/// A callee (SIPp UAS) on 127.0.0.1:`port`.
fn callee(dir: &TempDir, port: u16) -> Proc {
    let p = Proc::spawn(
        "sipp uas",
        sipp(dir, port, "uas")
            .arg("-sf")
            .arg(scenario("provider_uas")),
    );
    wait_udp_bound(SocketAddrV4::new(LO1, port), Duration::from_secs(10));
    p
}

/// One call from a SIPp UAC to `sip:trunk@` the provider; its exit status.
fn call_via_provider(dir: &TempDir, kport: u16) -> std::process::ExitStatus {
    let mut uac = Proc::spawn(
        "sipp uac",
        sipp(dir, free_udp_port(), "uac")
            .arg(format!("127.0.0.1:{kport}"))
            .args(["-s", "trunk"])
            .arg("-sf")
            .arg(scenario("provider_uac")),
    );
    uac.output(Duration::from_secs(40)).status
}

fn read(dir: &TempDir, name: &str) -> String {
    fs::read_to_string(dir.path(name)).unwrap_or_default()
}

/// The messages of a SIPp message log that start with `start`.
fn messages<'a>(log: &'a str, start: &str) -> Vec<&'a str> {
    log.split("\n\n")
        .flat_map(|chunk| chunk.split("message received"))
        .filter_map(|m| m.find(start).map(|i| &m[i..]))
        .collect()
}

/// Whether a call went through: the UAC exited with success, and the callee received an
/// INVITE sent by our proxy (its Via on top, Record-Routed by both) and the ACK and BYE
/// along that route.
fn assert_call_through_proxy(
    dir: &TempDir,
    status: std::process::ExitStatus,
    pport: u16,
    kport: u16,
) {
    let kamailio_log = read(dir, "kamailio.log");
    assert!(
        status.success(),
        "the call failed (scratch {}):\nuac errors:\n{}\nuas errors:\n{}\nkamailio log:\n{kamailio_log}",
        dir.display(),
        read(dir, "uac_errors.log"),
        read(dir, "uas_errors.log"),
    );
    let uas = read(dir, "uas_messages.log");
    let invites = messages(&uas, "INVITE sip:");
    assert_eq!(invites.len(), 1, "the callee saw one INVITE:\n{uas}");
    let invite = invites[0];
    let via = format!("Via: SIP/2.0/UDP 127.0.0.1:{pport};branch=");
    let first_via = invite
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap_or_default();
    assert!(
        first_via.starts_with(&via),
        "the INVITE did not come from our proxy: {invite}"
    );
    for rr in [
        format!("<sip:127.0.0.1:{pport};lr>"),
        format!("<sip:127.0.0.1:{kport};lr"),
    ] {
        assert!(
            invite.contains(&rr),
            "no Record-Route {rr} in the INVITE: {invite}"
        );
    }
    assert!(
        invite.contains("From: \"caller\""),
        "not the caller's INVITE: {invite}"
    );
    assert_eq!(messages(&uas, "ACK sip:").len(), 1, "{uas}");
    assert_eq!(messages(&uas, "BYE sip:").len(), 1, "{uas}");
}

// ---------------------------------------------------------------------------------------
// Tests

/// Registered with Kamailio (its location table shows our Contact), refreshed before the
/// expiry Kamailio granted, and a call Kamailio sends to that user reaches the local user
/// of that name on our proxy through it.
#[test]
fn registers_with_kamailio_and_takes_its_call_to_the_local_user() {
    let dir = TempDir::new("local");
    let (kport, pport, uas_port) = (free_udp_port(), free_udp_port(), free_udp_port());
    let _kam = kamailio(&dir, kport, &[("trunk", PASSWORD)], 10);
    let server = start_proxy(proxy_config(&dir, pport, kport, None));
    let p = server.proxy().clone();
    let aor = format!("sip:trunk@127.0.0.1:{kport}");

    let expires = eventually(
        Duration::from_secs(10),
        "registered with kamailio",
        || match p.uplinks().first() {
            Some((uri, UplinkState::Registered { expires, .. })) if *uri == aor => Some(*expires),
            _ => None,
        },
    );
    // Kamailio shortened the 3600 s asked to its max_expires.
    assert_eq!(expires, 10);
    let contact = format!("sip:trunk@127.0.0.1:{pport}");
    let first = eventually(Duration::from_secs(5), "our contact in ul.dump", || {
        kamailio_binding(&dir, &contact)
    });

    register_local(pport, uas_port, "trunk");
    let _uas = callee(&dir, uas_port);
    let status = call_via_provider(&dir, kport);
    assert_call_through_proxy(&dir, status, pport, kport);

    // The refresh (at 85 % of 10 s): Kamailio's binding gets a later CSeq, and stays ours.
    let later = eventually(Duration::from_secs(15), "a refresh at kamailio", || {
        kamailio_binding(&dir, &contact).filter(|c| *c > first)
    });
    assert!(later > first);
    assert!(matches!(
        p.uplinks()[0].1,
        UplinkState::Registered { expires: 10, .. }
    ));
    server.shutdown(Duration::from_secs(2));
}

/// Nobody named trunk registered on our proxy: Kamailio's call goes to the default
/// upstream set. A second registration with a wrong password is refused by Kamailio and
/// reported as failed with its 401.
#[test]
fn kamailio_call_to_the_registered_user_goes_to_the_default_set() {
    let dir = TempDir::new("default");
    let (kport, pport, uas_port) = (free_udp_port(), free_udp_port(), free_udp_port());
    let _kam = kamailio(
        &dir,
        kport,
        &[("trunk", PASSWORD), ("other", "not-what-we-send")],
        3600,
    );
    let mut cfg = proxy_config(&dir, pport, kport, Some(uas_port));
    let mut wrong = cfg.registration[0].clone();
    wrong.uri = format!("sip:other@127.0.0.1:{kport}");
    cfg.registration.push(wrong);
    let server = start_proxy(cfg);
    let p = server.proxy().clone();

    eventually(
        Duration::from_secs(10),
        "both registrations settled",
        || {
            let u = p.uplinks();
            (matches!(u[0].1, UplinkState::Registered { .. })
                && matches!(u[1].1, UplinkState::Failed { .. }))
            .then_some(())
        },
    );
    assert!(
        matches!(
            p.uplinks()[1].1,
            UplinkState::Failed {
                status: Some(401),
                ..
            }
        ),
        "{:?}",
        p.uplinks()
    );
    assert!(kamailio_binding(&dir, &format!("sip:trunk@127.0.0.1:{pport}")).is_some());
    assert!(kamailio_binding(&dir, &format!("sip:other@127.0.0.1:{pport}")).is_none());

    let _uas = callee(&dir, uas_port);
    let status = call_via_provider(&dir, kport);
    assert_call_through_proxy(&dir, status, pport, kport);
    server.shutdown(Duration::from_secs(2));
}
