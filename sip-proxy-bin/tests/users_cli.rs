//! End-to-end tests of `sip-proxy users`: Apache-compatible lines, replace in place, remove,
//! list, permissions kept, malformed lines reported with their number, and the written file
//! verifying a Digest response through sip-auth.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sip-proxy-users-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn users(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sip-proxy"))
        .arg("users")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit (e.g. on a usage error) before reading its input: a broken pipe
    // here is not a test failure, the exit status and stderr checked by the caller are.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn add(file: &Path, realm: &str, user: &str, password: &str) -> Output {
    users(
        &[
            "add",
            "--file",
            file.to_str().unwrap(),
            "--realm",
            realm,
            "--password-stdin",
            user,
        ],
        &format!("{password}\n"),
    )
}

#[test]
fn add_replace_remove_list() {
    let d = dir("crud");
    let f = d.join("users.htdigest");
    assert!(add(&f, "atlanta.com", "alice", "secret").status.success());
    let text = fs::read_to_string(&f).unwrap();
    // Exactly what Apache's `htdigest` writes for this user (MD5 of alice:atlanta.com:secret).
    assert_eq!(
        text.lines().next(),
        Some("alice:atlanta.com:4c00389f118405a62dc666c595d7e0d8")
    );
    assert!(text.contains("\n#sip-auth:SHA-256:alice:atlanta.com:"));
    assert!(text.contains("\n#sip-auth:SHA-512-256:alice:atlanta.com:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    }
    assert!(add(&f, "atlanta.com", "bob", "pw").status.success());
    // Replace alice: same place, new HA1.
    let out = add(&f, "atlanta.com", "alice", "new-secret");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("updated"));
    let text = fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("alice:atlanta.com:"));
    assert!(!text.contains("4c00389f118405a62dc666c595d7e0d8"));
    assert_eq!(text.lines().filter(|l| l.starts_with("alice:")).count(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    let out = users(&["list", "--file", f.to_str().unwrap()], "");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice\tatlanta.com\tMD5,SHA-256,SHA-512-256\nbob\tatlanta.com\tMD5,SHA-256,SHA-512-256\n"
    );

    // The file verifies a response made with the new password, with SHA-256.
    let store = sip_auth::MemoryStore::from_htdigest(&fs::read_to_string(&f).unwrap()).unwrap();
    let mut cfg = sip_auth::ServerConfig::new("atlanta.com");
    cfg.algorithms = vec![sip_auth::Algorithm::Sha256];
    let mut server = sip_auth::DigestServer::new(cfg, sip_auth::NonceSecrets::new(1, b"k"));
    let req = sip_auth::Request {
        method: "REGISTER",
        request_uri: "sip:atlanta.com",
        ..sip_auth::Request::default()
    };
    let ch = server.challenge(&req, 1_000, false);
    let a = sip_auth::DigestClient::new("alice", "new-secret")
        .respond(
            &[ch[0].as_bytes()],
            &sip_auth::ClientRequest {
                method: "REGISTER",
                uri: "sip:atlanta.com",
                body: b"",
            },
            "c",
        )
        .unwrap();
    assert!(matches!(
        server.verify(a.as_bytes(), &req, &store, 1_000),
        sip_auth::Outcome::Ok(_)
    ));

    let rm = |u: &str| {
        users(
            &[
                "remove",
                "--file",
                f.to_str().unwrap(),
                "--realm",
                "atlanta.com",
                u,
            ],
            "",
        )
    };
    assert!(rm("bob").status.success());
    assert!(!rm("bob").status.success());
    let text = fs::read_to_string(&f).unwrap();
    assert!(!text.contains("bob"));
    // No temporary file left behind.
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn md5_only_and_errors() {
    let d = dir("errors");
    let f = d.join("users");
    let out = users(
        &[
            "add",
            "--file",
            f.to_str().unwrap(),
            "--realm",
            "r",
            "--password-stdin",
            "--md5-only",
            "carol",
        ],
        "pw\n",
    );
    assert!(out.status.success());
    assert!(!fs::read_to_string(&f).unwrap().contains("#sip-auth"));
    // Empty password and bad names are refused.
    assert!(!add(&f, "r", "dave", "").status.success());
    assert!(!add(&f, "r", "da:ve", "pw").status.success());
    // A malformed line is reported with its number, and the file is left alone.
    let bad = "carol:r:0123456789abcdef0123456789abcdef\nthis line is wrong\n";
    fs::write(&f, bad).unwrap();
    let out = add(&f, "r", "erin", "pw");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2: expected user:realm:HA1"), "{err}");
    assert_eq!(fs::read_to_string(&f).unwrap(), bad);
    let out = users(&["list", "--file", d.join("missing").to_str().unwrap()], "");
    assert!(!out.status.success());
    let _ = fs::remove_dir_all(&d);
}
