//! Interop with Apache's own `htdigest` tool (Debian `apache2-utils`): a file it writes is
//! read by `sip-proxy users` and verifies Digest responses; a file `sip-proxy users` writes
//! (with its SHA-256 / SHA-512-256 comment lines) is updated by `htdigest`, which keeps our
//! lines; and a password `htdigest` changes makes our stale SHA lines ignored while the new
//! password verifies.
//!
//! `htdigest` reads passwords from the terminal only, so it runs under `script(1)` (a pty),
//! each answer typed once its prompt shows. Without `htdigest` or `script` the test fails
//! (the test command installs `apache2-utils`); it never skips.

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::dir::TempDir;
use support::proc::require;
use support::users::{add, users, verifies};

/// Run Apache `htdigest [-c] FILE REALM USER` on a pty, typing `password` twice.
fn htdigest(create: bool, file: &Path, realm: &str, user: &str, password: &str) {
    require("htdigest");
    require("script");
    let cmd = format!(
        "htdigest {}{} {realm} {user}",
        if create { "-c " } else { "" },
        file.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    // Collect what the pty shows, to type each answer once its prompt is there (the prompt
    // turns echo off and may flush earlier input).
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let prompts = || {
        let text = String::from_utf8_lossy(&shown.lock().unwrap()).to_lowercase();
        text.matches("password:").count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut stdin = child.stdin.take().unwrap();
    for k in 1..=2 {
        while prompts() < k {
            assert!(
                std::time::Instant::now() < deadline,
                "no password prompt {k} from htdigest: {:?}",
                String::from_utf8_lossy(&shown.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The tty switches echo off right after printing the prompt.
        std::thread::sleep(Duration::from_millis(50));
        stdin.write_all(format!("{password}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            reader.join().unwrap();
            assert!(
                status.success(),
                "htdigest failed: {}",
                String::from_utf8_lossy(&shown.lock().unwrap())
            );
            return;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("htdigest did not finish within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn apache_htdigest_and_sip_proxy_users_share_a_file() {
    let d = TempDir::new("htdigest-shared");
    let f = d.join("users.htdigest");
    let fs_ = f.to_str().unwrap();

    // Apache writes the file: we list it and verify with MD5 (its only hash).
    htdigest(true, &f, "atlanta.com", "alice", "secret");
    assert_eq!(
        fs::read_to_string(&f).unwrap(),
        "alice:atlanta.com:4c00389f118405a62dc666c595d7e0d8\n"
    );
    let out = users(&["list", "--file", fs_], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice\tatlanta.com\tMD5\n"
    );
    assert!(verifies(&f, "alice", "secret", sip_auth::Algorithm::Md5));
    assert!(!verifies(&f, "alice", "wrong", sip_auth::Algorithm::Md5));

    // We add bob with every hash; Apache then adds carol to the same file and keeps our
    // lines (comments to it).
    let out = add(&f, "atlanta.com", "bob", "pw-bob");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    htdigest(false, &f, "atlanta.com", "carol", "pw-carol");
    let text = fs::read_to_string(&f).unwrap();
    assert!(
        text.contains("#sip-auth:SHA-256:bob:atlanta.com:"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("carol:atlanta.com:")),
        "{text}"
    );
    assert!(verifies(&f, "bob", "pw-bob", sip_auth::Algorithm::Sha256));
    assert!(verifies(&f, "carol", "pw-carol", sip_auth::Algorithm::Md5));
    let out = users(&["list", "--file", fs_], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice\tatlanta.com\tMD5\nbob\tatlanta.com\tMD5,SHA-256,SHA-512-256\ncarol\tatlanta.com\tMD5\n"
    );

    // Apache changes bob's password: our SHA lines for bob are now stale and ignored, the
    // new password verifies with MD5, the old one with nothing.
    htdigest(false, &f, "atlanta.com", "bob", "new-bob");
    assert!(verifies(&f, "bob", "new-bob", sip_auth::Algorithm::Md5));
    assert!(!verifies(&f, "bob", "pw-bob", sip_auth::Algorithm::Md5));
    assert!(!verifies(&f, "bob", "pw-bob", sip_auth::Algorithm::Sha256));
    assert!(!verifies(&f, "bob", "new-bob", sip_auth::Algorithm::Sha256));
    let out = users(&["list", "--file", fs_], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bob\tatlanta.com\tMD5\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // And `sip-proxy users` rewriting the file keeps what Apache wrote.
    let out = add(&f, "atlanta.com", "bob", "pw-bob-2");
    assert!(out.status.success());
    assert!(verifies(&f, "bob", "pw-bob-2", sip_auth::Algorithm::Sha256));
    assert!(verifies(&f, "carol", "pw-carol", sip_auth::Algorithm::Md5));
    assert!(verifies(&f, "alice", "secret", sip_auth::Algorithm::Md5));
}
