//! Helpers shared by the `sip-proxy users` tests: a scratch directory, running the real
//! binary, and checking that a credentials file verifies a Digest response.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh scratch directory for one test.
pub(crate) fn dir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Run `sip-proxy users ARGS` with `stdin` as its input.
pub(crate) fn users(args: &[&str], stdin: &str) -> Output {
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

/// `sip-proxy users add --file FILE --realm REALM --password-stdin USER`, typing `password`.
pub(crate) fn add(file: &Path, realm: &str, user: &str, password: &str) -> Output {
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

/// Whether `password` verifies for `user` of realm `atlanta.com` against the credentials in
/// `file`, with a response computed by the client for algorithm `alg`.
pub(crate) fn verifies(file: &Path, user: &str, password: &str, alg: sip_auth::Algorithm) -> bool {
    let store = sip_auth::MemoryStore::from_htdigest(&fs::read_to_string(file).unwrap()).unwrap();
    let mut cfg = sip_auth::ServerConfig::new("atlanta.com");
    cfg.algorithms = vec![alg];
    let server = sip_auth::DigestServer::new(cfg, sip_auth::NonceSecrets::random().unwrap());
    let req = sip_auth::Request {
        method: b"REGISTER",
        request_uri: b"sip:atlanta.com",
        ..sip_auth::Request::default()
    };
    let ch = server.challenge(&req, 1_000, false);
    let auth = sip_auth::DigestClient::new(user, password)
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
    matches!(
        server.verify(auth.as_bytes(), &req, &store, 1_000),
        sip_auth::Outcome::Ok(_)
    )
}
