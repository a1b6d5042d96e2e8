//! The control socket's server: a Unix stream socket, mode 0600, served by one accepting
//! thread and a thread per connection (at most [`MAX_CONNECTIONS`]). Each connection reads
//! request lines ([`rpc::handle_line`]) and writes a response line for each, until the client
//! closes it or stays idle for [`IDLE`]; a last line without its newline is served at the
//! end of the input (so `printf '{...}' | nc -U ctl.sock` works).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rpc::{self, Params, RpcError};

/// Most connections served at once; more are told so and closed.
pub const MAX_CONNECTIONS: usize = 8;
/// Longest request line, bytes; a longer one is answered with an error and the connection
/// closed.
pub const MAX_LINE: usize = 64 * 1024;
/// A connection without a request for this long is closed.
pub const IDLE: Duration = Duration::from_secs(30);

/// What serves the calls (shared by the connection threads).
pub type Handler = Arc<dyn Fn(&str, Params<'_>) -> Result<Value, RpcError> + Send + Sync>;

/// The running control socket.
#[derive(Debug)]
pub struct CtlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `path` with mode 0600 from the start: bound inside a fresh directory only the owner
/// may enter, restricted, then moved into place (no moment where another user could
/// connect).
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    if path.file_name().is_none() {
        return Err(io::Error::other("not a file name"));
    }
    // Short: a socket path has at most 107 bytes.
    let tmp = dir.join(format!(".ctl-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::DirBuilder::new().mode(0o700).create(&tmp)?;
    let inner = tmp.join("s");
    let bound = (|| {
        let l = UnixListener::bind(&inner)?;
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o600))?;
        fs::rename(&inner, path)?;
        Ok(l)
    })();
    let _ = fs::remove_dir_all(&tmp);
    bound
}

/// Clears the way for a new socket at `path`: a socket nobody answers on is left from a
/// process that ended and goes; a live one (another proxy on the same data directory), or
/// anything else, is an error. [`CtlServer::start`] does it; `run` does it first, before
/// binding its SIP listeners.
pub fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket (not removed)",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{}: another sip-proxy is running with this data directory",
                path.display()
            ),
        )),
        Err(_) => fs::remove_file(path),
    }
}

impl CtlServer {
    /// Binds the control socket at `path` (mode 0600; a stale socket there is replaced) and
    /// starts serving `handler`.
    pub fn start(path: &Path, handler: Handler) -> io::Result<CtlServer> {
        let err = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        clear_stale(path)?;
        let listener = bind_private(path).map_err(err)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ctl".into())
            .spawn(move || accept(&listener, &handler, &st))?;
        Ok(CtlServer {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and removes the socket. Connections in progress end within a tenth of
    /// a second.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept(listener: &UnixListener, handler: &Handler, stop: &Arc<AtomicBool>) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        conns.retain(|c| !c.is_finished());
        match listener.accept() {
            Ok((mut s, _)) => {
                if live.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                    let e = format!(
                        "{{\"jsonrpc\":\"2.0\",\"error\":{{\"code\":{},\"message\":\"more than {MAX_CONNECTIONS} control connections\"}},\"id\":null}}\n",
                        rpc::FAILED
                    );
                    let _ = s.write_all(e.as_bytes());
                    continue;
                }
                live.fetch_add(1, Ordering::Relaxed);
                let (h, st, lv) = (handler.clone(), stop.clone(), live.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name("ctl-conn".into())
                        .spawn(move || {
                            if let Err(e) = serve(s, &h, &st) {
                                tracing::debug!(error = %e, "control connection ended");
                            }
                            lv.fetch_sub(1, Ordering::Relaxed);
                        });
                match spawned {
                    Ok(t) => conns.push(t),
                    Err(e) => {
                        live.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "control connection not served");
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

/// Serves one connection: a response line for each request line.
fn serve(mut s: UnixStream, handler: &Handler, stop: &AtomicBool) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let call = |m: &str, p: Params<'_>| handler(m, p);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut last = Instant::now();
    loop {
        // Every complete line first.
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            if let Some(mut out) = rpc::handle_line(&line, &call) {
                out.push('\n');
                s.write_all(out.as_bytes())?;
            }
            last = Instant::now();
        }
        if buf.len() > MAX_LINE {
            let e = format!(
                "{{\"jsonrpc\":\"2.0\",\"error\":{{\"code\":{},\"message\":\"request line longer than {MAX_LINE} bytes\"}},\"id\":null}}\n",
                rpc::INVALID_REQUEST
            );
            s.write_all(e.as_bytes())?;
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) || last.elapsed() > IDLE {
            return Ok(());
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                if let Some(mut out) = rpc::handle_line(&buf, &call) {
                    out.push('\n');
                    s.write_all(out.as_bytes())?;
                }
                return Ok(());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if crate::net::timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
