//! Reload while running, through `sip-proxy ctl reload` and SIGHUP: a changed users file
//! takes effect (and no old password survives in the auth cache), a changed configuration
//! applies its reloadable keys and names the others, and an invalid configuration or users
//! file is refused with the running one kept.

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::dir::TempDir;
use support::proc::BIN;
use support::proxy::Proxy;
use support::ua::TextUa;

const WAIT: Duration = Duration::from_secs(5);

/// `sip-proxy users add` for realm `localhost` (the default realm: the first domain).
fn add_user(file: &Path, user: &str, password: &str) {
    let mut child = Command::new(BIN)
        .args(["users", "add", "--file", file.to_str().unwrap()])
        .args(["--realm", "localhost", "--password-stdin", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// REGISTER with digest credentials (answering the 401): the final status.
fn register(p: &Proxy, ua: &TextUa, user: &str, password: &str, cseq: u32) -> u16 {
    let first = ua.register(p.addr(), user, cseq, "");
    assert_eq!(first.status(), Some(401), "{}", first.0);
    let challenge = first.header("WWW-Authenticate").to_owned();
    let auth = sip_auth::DigestClient::new(user, password)
        .respond(
            &[challenge.as_bytes()],
            &sip_auth::ClientRequest {
                method: "REGISTER",
                uri: "sip:localhost",
                body: b"",
            },
            "0a4f113b",
        )
        .unwrap();
    ua.register(
        p.addr(),
        user,
        cseq + 1,
        &format!("Authorization: {auth}\r\n"),
    )
    .status()
    .unwrap()
}

#[test]
fn reload_rereads_the_users_file() {
    let dir = TempDir::new("ctl-reload-users");
    let users = dir.join("users.htdigest");
    add_user(&users, "alice", "old");
    let p = Proxy::small(&dir, &["--users", users.to_str().unwrap()]);
    let ua = TextUa::new("127.0.0.1");
    assert_eq!(register(&p, &ua, "alice", "old", 1), 200);
    assert_ne!(register(&p, &ua, "bob", "pw", 1), 200);

    add_user(&users, "bob", "pw");
    add_user(&users, "alice", "new");
    let out = p.ok(&["reload"]);
    assert!(out.starts_with("reloaded: 2 users,"), "{out}");
    assert_eq!(register(&p, &ua, "bob", "pw", 3), 200);
    assert_eq!(register(&p, &ua, "alice", "new", 3), 200);
    // The old password was verified and cached before: the cache went with the old users.
    assert_ne!(register(&p, &ua, "alice", "old", 5), 200);
    assert_eq!(register(&p, &ua, "alice", "new", 7), 200);

    // A broken users file: refused, the users in force stay.
    fs::write(&users, "this is not htdigest\n").unwrap();
    let e = p.fails(&["reload"], 1);
    assert!(e.contains("reload refused, nothing changed"), "{e}");
    assert!(e.contains("users.htdigest"), "{e}");
    assert_eq!(register(&p, &ua, "bob", "pw", 5), 200);
    fs::remove_file(&users).unwrap();
    let e = p.fails(&["reload"], 1);
    assert!(e.contains("users.htdigest"), "{e}");
    assert_eq!(register(&p, &ua, "alice", "new", 9), 200);
}

fn sets(p: &Proxy) -> Vec<String> {
    p.json(&["upstream", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

const SET_A: &str =
    "[[upstream]]\nname = \"a\"\ntargets = [\"udp:127.0.0.1:40001\"]\nprobe_interval = 0\n";
const SET_B: &str = "[[upstream]]\nname = \"b\"\ntargets = [\"udp:127.0.0.1:40002\", \"udp:127.0.0.1:40003\"]\nprobe_interval = 0\n";
const SET_C: &str =
    "[[upstream]]\nname = \"c\"\ntargets = [\"udp:127.0.0.1:40004\"]\nprobe_interval = 0\n";

#[test]
fn reload_applies_a_valid_config_and_keeps_the_old_one_otherwise() {
    let dir = TempDir::new("ctl-reload-config");
    let cfg = dir.join("proxy.toml");
    fs::write(&cfg, SET_A).unwrap();
    let p = Proxy::small(&dir, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(sets(&p), ["a"]);
    p.ok(&["upstream", "disable", "a", "127.0.0.1:40001"]);

    // Unknown key: refused with where it is; nothing changed.
    fs::write(
        &cfg,
        format!("{SET_A}[[upstream]]\nname = \"b\"\ntargetz = []\n"),
    )
    .unwrap();
    let e = p.fails(&["reload"], 1);
    assert!(e.contains("configuration refused, nothing changed"), "{e}");
    assert!(e.contains("proxy.toml:7:1"), "{e}");
    assert_eq!(sets(&p), ["a"]);
    // Parses, but makes no sense: refused too.
    fs::write(
        &cfg,
        format!("{SET_A}[[dispatch]]\nmatch = \"9\"\nupstream = \"zz\"\n"),
    )
    .unwrap();
    let e = p.fails(&["reload"], 1);
    assert!(e.contains("`zz`, which is not defined"), "{e}");
    assert_eq!(sets(&p), ["a"]);

    // Valid: the reloadable keys apply, the others are named and wait for a restart.
    fs::write(
        &cfg,
        format!("record_route = false\n[registrar]\nmax_contacts = 2\n{SET_A}{SET_B}"),
    )
    .unwrap();
    let out = p.ok(&["reload"]);
    assert!(
        out.contains("2 upstream sets (3 destinations, 1 kept their state)"),
        "{out}"
    );
    assert!(
        out.contains("changed: upstream, registrar.max_contacts\n"),
        "{out}"
    );
    assert!(
        out.contains("not applied, restart needed: record_route\n"),
        "{out}"
    );
    assert_eq!(sets(&p), ["a", "b"]);
    // The destination that stayed kept its state (disabled by the operator).
    let list = p.json(&["upstream", "list"]);
    assert_eq!(list[0]["destinations"][0]["state"], "disabled");
    assert_eq!(list[1]["destinations"][1]["addr"], "127.0.0.1:40003");
    let report = p.json(&["reload"]);
    assert_eq!(report["changed"], serde_json::json!([]));
    assert_eq!(
        report["restart_needed"],
        serde_json::json!(["record_route"])
    );
    assert_eq!(report["upstream_kept"], 3);

    // SIGHUP does the same.
    fs::write(&cfg, SET_C).unwrap();
    hup(&p);
    wait_until(&p, || sets(&p) == ["c"]);
    assert!(
        p.log_text().contains("SIGHUP: reloading"),
        "{}",
        p.log_text()
    );
    // An invalid file on SIGHUP: logged, the running configuration kept.
    fs::write(&cfg, "workers = \"many\"\n").unwrap();
    hup(&p);
    wait_until(&p, || p.log_text().contains("configuration refused"));
    assert_eq!(sets(&p), ["c"]);
    assert!(p.ok(&["stats"]).contains("received"));
}

fn hup(p: &Proxy) {
    assert!(
        Command::new("kill")
            .args(["-HUP", &p.pid().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

fn wait_until(p: &Proxy, done: impl Fn() -> bool) {
    let end = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < end, "not reloaded: {}", p.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}
