//! What the end-to-end tests share: a `fincore serve` child process (the embedded demo
//! configuration on an ephemeral port of 127.0.0.1, in a fresh data directory, killed
//! when the test ends, pass or fail), and whether `python3` is there for the tests
//! that run a script.

// Each test crate compiles this module and uses part of it.
#![allow(dead_code)]

pub mod faults;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `fincore` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fincore");

/// True if `python3` runs. Without it a test that needs it says what it did NOT check
/// and passes, unless `FINCORE_REQUIRE_PYTHON` is set (`.ci/run` sets it): then it fails.
pub fn python_available(what: &str) -> bool {
    let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("FINCORE_REQUIRE_PYTHON").is_none(),
            "python3 not found, and FINCORE_REQUIRE_PYTHON is set"
        );
        eprintln!("python3 not found: {what} was NOT checked");
    }
    found
}

/// A running `fincore serve`.
pub struct Server {
    child: Child,
    /// The server's log lines (read on a thread, so that its stdout never fills up).
    lines: mpsc::Receiver<String>,
    /// The log lines read so far, oldest first.
    pub seen: Vec<String>,
    /// The address it listens on.
    pub addr: String,
    /// Its data directory.
    pub dir: std::path::PathBuf,
    /// Owns `dir` when the server made it (removed at the end of the test).
    _temporary: Option<tempfile::TempDir>,
}

impl Drop for Server {
    /// A failed test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server on a fresh data directory and waits until it listens.
    pub fn start() -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(data.path(), &[]);
        server._temporary = Some(data);
        server
    }

    /// Starts a server on `dir` (new or existing) with extra `serve` flags.
    pub fn start_in(dir: &std::path::Path, flags: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server {
            child,
            lines,
            seen: Vec::new(),
            addr: String::new(),
            dir: dir.to_path_buf(),
            _temporary: None,
        };
        let listening = server.wait_for("listening");
        let addr = listening.split("listen=").nth(1).unwrap().split_whitespace().next().unwrap();
        server.addr = addr.to_string();
        server
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stops the server with SIGINT, requires it to exit 0, and returns its clean-stop
    /// log line (the one with `state_hash=` and `seq=`).
    pub fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let stopped = self.wait_for("stopped cleanly");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exits 0 on SIGINT: {status}");
        stopped
    }

    /// The next log line containing `text` (panics after 30 s).
    pub fn wait_for(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(e) => panic!("no log line with {text:?}: {e}"),
            }
        }
    }
}
