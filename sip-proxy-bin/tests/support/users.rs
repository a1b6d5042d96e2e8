//! `sip-proxy users`: running the real binary, and checking that a credentials file
//! verifies a Digest response.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::proc::BIN;
use super::proxy::DOMAIN;

/// Run `sip-proxy users ARGS` with `stdin` as its input.
pub(crate) fn users(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
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

/// `sip-proxy users add` for each `(user, password)` into a fresh htdigest file in `dir`
/// (realm [`DOMAIN`]).
pub(crate) fn users_file(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let file = dir.join("users.htdigest");
    for (user, password) in users {
        let out = add(&file, DOMAIN, user, password);
        assert!(
            out.status.success(),
            "sip-proxy users add {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    file
}
