//! End-to-end tests of `sip-proxy users`: Apache-compatible lines, replace in place, remove,
//! list, permissions kept, malformed lines reported with their number, and the written file
//! verifying a Digest response through sip-auth.

mod support;

use std::fs;

use support::dir::TempDir;
use support::users::{add, users};

#[test]
fn add_replace_remove_list() {
    let d = TempDir::new("users-crud");
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
    assert!(support::users::verifies(
        &f,
        "alice",
        "new-secret",
        sip_auth::Algorithm::Sha256
    ));
    assert!(!support::users::verifies(
        &f,
        "alice",
        "secret",
        sip_auth::Algorithm::Sha256
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
}

#[test]
fn md5_only_and_errors() {
    let d = TempDir::new("users-errors");
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
}
