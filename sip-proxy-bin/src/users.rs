//! `sip-proxy users`: maintain the credentials file the proxy reads with `--users F`.
//!
//! The file is Apache `htdigest` compatible (`user:realm:HA1`, HA1 = MD5 of
//! `user:realm:password`), so existing files and Apache's `htdigest` tool keep working.
//! SHA-256 and SHA-512-256 HA1 values are written on `#sip-auth:…` lines that htdigest
//! readers take for comments (see `sip_auth::HtdigestFile`). Every change rewrites the file
//! atomically (temporary file in the same directory, then rename) and keeps its permissions;
//! a new file is created with mode 0600.

use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sip_auth::{HashKind, HtdigestFile};

/// Arguments of `sip-proxy users`.
#[derive(Debug, Args)]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a user, or replace its password (the password is prompted for twice).
    Add {
        /// Credentials file (created if missing).
        #[arg(long)]
        file: PathBuf,
        /// Realm (usually the SIP domain).
        #[arg(long)]
        realm: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Store only the MD5 HA1 (no SHA-256 / SHA-512-256 lines).
        #[arg(long)]
        md5_only: bool,
        /// User name.
        user: String,
    },
    /// Remove a user from a realm.
    Remove {
        /// Credentials file.
        #[arg(long)]
        file: PathBuf,
        /// Realm.
        #[arg(long)]
        realm: String,
        /// User name.
        user: String,
    },
    /// List the users: user, realm and the algorithms an HA1 is stored for.
    List {
        /// Credentials file.
        #[arg(long)]
        file: PathBuf,
    },
}

/// Run `sip-proxy users`.
pub(crate) fn run(args: &UsersArgs) -> ExitCode {
    match execute(&args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sip-proxy users: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path, must_exist: bool) -> Result<HtdigestFile, String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !must_exist => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    HtdigestFile::parse(&text).map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.reason))
}

fn execute(cmd: &UsersCommand) -> Result<(), String> {
    match cmd {
        UsersCommand::Add {
            file,
            realm,
            password_stdin,
            md5_only,
            user,
        } => {
            let mut f = load(file, false)?;
            let password = if *password_stdin {
                read_stdin_password()?
            } else {
                prompt_password(user, realm)?
            };
            if password.is_empty() {
                return Err("empty password".into());
            }
            let extra: &[HashKind] = if *md5_only {
                &[]
            } else {
                &[HashKind::Sha256, HashKind::Sha512_256]
            };
            let existed = f
                .users()
                .iter()
                .any(|u| u.user == *user && u.realm == *realm);
            f.set_password(user, realm, &password, extra)
                .map_err(|e| e.reason.to_string())?;
            write_atomic(file, &f.to_text())?;
            eprintln!(
                "{} {user} in realm {realm} ({})",
                if existed { "updated" } else { "added" },
                file.display()
            );
            Ok(())
        }
        UsersCommand::Remove { file, realm, user } => {
            let mut f = load(file, true)?;
            if !f.remove(user, realm) {
                return Err(format!(
                    "no user {user} in realm {realm} in {}",
                    file.display()
                ));
            }
            write_atomic(file, &f.to_text())?;
            eprintln!("removed {user} from realm {realm} ({})", file.display());
            Ok(())
        }
        UsersCommand::List { file } => {
            let f = load(file, true)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            for u in f.users() {
                let algs: Vec<&str> = u.hashes.iter().map(|h| h.algorithm().as_str()).collect();
                writeln!(out, "{}\t{}\t{}", u.user, u.realm, algs.join(","))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}

fn read_stdin_password() -> Result<String, String> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn prompt_password(user: &str, realm: &str) -> Result<String, String> {
    let p1 =
        rpassword::prompt_password(format!("Password for {user} in {realm}: ")).map_err(|e| {
            format!("reading the password (use --password-stdin without a terminal): {e}")
        })?;
    let p2 = rpassword::prompt_password("Retype password: ")
        .map_err(|e| format!("reading the password: {e}"))?;
    if p1 != p2 {
        return Err("passwords do not match".into());
    }
    Ok(p1)
}

/// Write `text` to `path` through a temporary file in the same directory and a rename, with
/// the permissions of the file it replaces (0600 for a new file on Unix).
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let perms = fs::metadata(path).ok().map(|m| m.permissions());
    let result = (|| -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        match perms {
            Some(p) => fs::set_permissions(&tmp, p)?,
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
                }
            }
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}
