//! Programs and child processes.

use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sip-proxy");

/// Fails the test when `program` is not on the PATH.
pub(crate) fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed: this test needs it (Debian packages in \
         scripts/apt-packages.txt: sip-tester for sipp, kamailio for kamailio and kamcmd, \
         sngrep, redis-server for redis-server and redis-cli, apache2-utils for htdigest, \
         bsdutils for script, prometheus for promtool, iproute2 for ip, util-linux for \
         unshare; ./scripts/test installs them, and valkey-server, from bookworm-backports \
         on Debian 12)"
    );
}

/// A child process in its own process group. Dropping it terminates the group (SIGTERM,
/// then SIGKILL after three seconds) and reaps the child.
pub(crate) struct Proc {
    child: Option<Child>,
    /// What it is, for messages.
    pub(crate) name: String,
}

/// Sends `signal` (`-TERM`, `-USR1` …) to process `pid`, or to its group with `group`.
fn signal(pid: u32, signal: &str, group: bool) {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let _ = Command::new("kill")
        .args([signal, "--", &target])
        .stderr(Stdio::null())
        .status();
}

impl Proc {
    /// Starts `cmd` (stdin closed) in a new process group.
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// The process id (also its group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its standard error, when it was piped (once).
    pub(crate) fn take_stderr(&mut self) -> ChildStderr {
        self.child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .expect("a piped stderr")
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends `sig` to the process itself.
    pub(crate) fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            signal(c.id(), sig, false);
        }
    }

    /// Sends `sig` to its whole process group.
    pub(crate) fn signal_group(&self, sig: &str) {
        if let Some(c) = &self.child {
            signal(c.id(), sig, true);
        }
    }

    /// SIGKILL to the group, now (no shutdown at all), and reaps the child.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-KILL", true);
            let _ = c.wait();
        }
    }

    /// Waits up to `limit` for the exit, then kills the group (helpers left in it are
    /// killed either way) and reaps the child: whether it exited in time, and its exit
    /// status and piped output.
    fn finish(&mut self, limit: Duration) -> (bool, Output) {
        let mut child = self.child.take().expect("a running process");
        let deadline = Instant::now() + limit;
        let mut exited = false;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            eprintln!("{}: still running after {limit:?}, killing it", self.name);
        }
        signal(child.id(), "-KILL", true);
        (exited, child.wait_with_output().unwrap())
    }

    /// Waits up to `limit` for the exit; after that the group is killed and `None` is
    /// returned.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let (exited, out) = self.finish(limit);
        exited.then_some(out.status)
    }

    /// Waits up to `limit` for the exit (then kills the group) and collects the piped
    /// output, whatever the exit.
    pub(crate) fn output(&mut self, limit: Duration) -> Output {
        self.finish(limit).1
    }

    /// SIGTERM, then [`wait`](Self::wait) up to `limit`.
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal("-TERM");
        self.wait(limit)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-TERM", true);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(c.id(), "-KILL", true);
            let _ = c.wait();
        }
    }
}
