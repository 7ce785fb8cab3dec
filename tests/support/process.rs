//! Child processes for integration tests: spawn with output captured to a temp log file, kill and
//! reap on drop, poll for readiness, and find the binaries that `scripts/setup-test-env.sh`
//! installs. Tests never skip: a missing component is a panic that names the setup script.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Default budget for a component to become ready. Generous: the CI box has 2 cores and a cargo
/// build may be competing for them.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

const SETUP_HINT: &str = "run scripts/setup-test-env.sh";

/// `tests/support/rail`, where the npm-installed components and the node scripts live.
pub fn rail_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rail")
}

/// `tests/support/contracts`, with the committed compiler output.
pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/contracts")
}

/// An executable from `tests/support/rail/node_modules/.bin` (anvil, cast, solcjs, ...).
/// Panics, naming the setup script, when it is not installed.
pub fn rail_bin(name: &str) -> PathBuf {
    let path = rail_dir().join("node_modules/.bin").join(name);
    if !path.exists() {
        panic!(
            "{name} not installed ({} missing): {SETUP_HINT}",
            path.display()
        );
    }
    path
}

/// A node script in `tests/support/rail` (facilitator.mjs, seller.mjs). Panics when node or the
/// script's npm dependencies are missing.
pub fn rail_script(name: &str) -> PathBuf {
    let path = rail_dir().join(name);
    assert!(
        path.exists(),
        "{} missing from the repository",
        path.display()
    );
    let modules = rail_dir().join("node_modules/@x402/core/package.json");
    if !modules.exists() {
        panic!(
            "x402 npm packages not installed ({} missing): {SETUP_HINT}",
            modules.display()
        );
    }
    path
}

/// The `node` executable (from PATH, or `$NODE` when set).
pub fn node_bin() -> PathBuf {
    let node = std::env::var_os("NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"));
    match Command::new(&node)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => node,
        _ => panic!(
            "node not installed ({} does not run): {SETUP_HINT}",
            node.display()
        ),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago. Another process can still take it before
/// the child binds; [`ChildGuard::spawn_on_free_port`] retries for that case.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Runs `f` on a fresh OS thread. reqwest's blocking client panics when used from inside a tokio
/// runtime; going through a plain thread makes these helpers safe from `#[tokio::test]` too.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("helper thread panicked"))
}

fn probe_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .expect("build reqwest client")
}

/// Polls `GET url` until it answers 2xx or `timeout` passes. The error names the last failure.
pub fn wait_http_ready(url: &str, timeout: Duration) -> Result<(), String> {
    wait_until(timeout, || http_probe(url))
}

/// One `GET url`: `Ok` on 2xx, otherwise a description of what happened.
pub fn http_probe(url: &str) -> Result<(), String> {
    off_runtime(|| match probe_client().get(url).send() {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("GET {url} answered {}", resp.status())),
        Err(err) => Err(format!("GET {url} failed: {err}")),
    })
}

/// Polls `probe` every 50 ms until it returns `Ok` or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    mut probe: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() >= deadline => {
                return Err(format!("not ready after {timeout:?}: {err}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A spawned child process that is killed and reaped when dropped. Its stdout and stderr go to a
/// temp log file; [`ChildGuard::log_tail`] reads the end of it for panic messages.
pub struct ChildGuard {
    name: String,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl ChildGuard {
    /// Spawns `cmd` (stdin closed, stdout+stderr to a temp log). Panics if it cannot start.
    pub fn spawn(name: &str, mut cmd: Command) -> ChildGuard {
        let log = tempfile::Builder::new()
            .prefix(&format!("obol-test-{name}-"))
            .suffix(".log")
            .tempfile()
            .expect("create child log file");
        let stdout = log.reopen().expect("reopen child log");
        let stderr = log.reopen().expect("reopen child log");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name} ({cmd:?}): {err}"));
        ChildGuard {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// Picks a free port, spawns `make_cmd(port)`, and waits for `ready(port)`. When the child
    /// exits early (typically: the port was taken in between), retries with another port, up to
    /// three attempts. Panics with the log tail when it never becomes ready.
    pub fn spawn_on_free_port(
        name: &str,
        timeout: Duration,
        mut make_cmd: impl FnMut(u16) -> Command,
        mut ready: impl FnMut(u16) -> Result<(), String>,
    ) -> (ChildGuard, u16) {
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut guard = ChildGuard::spawn(name, make_cmd(port));
            match guard.wait_ready(timeout, || ready(port)) {
                Ok(()) => return (guard, port),
                Err(ReadyError::Exited(msg)) => last_failure = msg,
                Err(ReadyError::Timeout(msg)) => panic!("{msg}"),
            }
        }
        panic!("{last_failure}")
    }

    /// Waits until `probe` succeeds, failing fast if the child exits first. Panics with the log
    /// tail on failure.
    pub fn wait_ready_or_panic(
        &mut self,
        timeout: Duration,
        probe: impl FnMut() -> Result<(), String>,
    ) {
        if let Err(ReadyError::Exited(msg) | ReadyError::Timeout(msg)) =
            self.wait_ready(timeout, probe)
        {
            panic!("{msg}");
        }
    }

    fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<(), String>,
    ) -> Result<(), ReadyError> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = probe();
            if result.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ReadyError::Exited(format!(
                    "{} exited with {status} before it was ready; last probe: {}\n--- {} log tail ({}) ---\n{}",
                    self.name,
                    result.unwrap_err(),
                    self.name,
                    self.preserve_log().display(),
                    self.log_tail(40)
                )));
            }
            if Instant::now() >= deadline {
                return Err(ReadyError::Timeout(format!(
                    "{} not ready after {timeout:?}; last probe: {}\n--- {} log tail ({}) ---\n{}",
                    self.name,
                    result.unwrap_err(),
                    self.name,
                    self.preserve_log().display(),
                    self.log_tail(40)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        self.log.path()
    }

    /// Copies the log (deleted with the guard) to a file that outlives the test; returns its path.
    pub fn preserve_log(&self) -> PathBuf {
        let kept =
            std::env::temp_dir().join(format!("obol-test-{}-{}.log", self.name, self.child.id()));
        match std::fs::copy(self.log.path(), &kept) {
            Ok(_) => kept,
            Err(_) => self.log.path().to_path_buf(),
        }
    }

    /// The whole log so far (stdout and stderr interleaved).
    pub fn log_contents(&self) -> String {
        let mut file = File::open(self.log.path()).expect("open child log");
        let mut bytes = Vec::new();
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_contents();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills (SIGKILL) and reaps the process now. Idempotent.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

enum ReadyError {
    Exited(String),
    Timeout(String),
}

/// Runs a command to completion and returns its trimmed stdout; panics with stderr on failure.
pub fn run_ok(mut cmd: Command) -> String {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed with {}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
