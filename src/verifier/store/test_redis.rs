//! A real `redis-server` for the store's tests: on a free loopback port, no persistence, its
//! own temp directory, killed on drop. Never skipped: a missing `redis-server` fails the test
//! with the setup script to run (`$REDIS_SERVER` overrides the executable).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SETUP_HINT: &str = "run `bash scripts/setup-test-env.sh` (component redis)";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
}

fn executable() -> PathBuf {
    let bin = std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"));
    match Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => bin,
        _ => panic!(
            "redis-server not installed ({} does not run): {SETUP_HINT}",
            bin.display()
        ),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with_password(None)
    }

    /// With `requirepass`.
    pub fn start_with_password(password: Option<&str>) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: 0,
            password: password.map(str::to_string),
            dir: tempfile::tempdir().expect("temp dir for redis-server"),
        };
        let mut last_failure = String::new();
        // A free port can be taken before redis-server binds it: try another.
        for _ in 0..3 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("{last_failure}")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join(format!("redis-{}.log", self.port));
        let mut cmd = Command::new(executable());
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            cmd.args(["--requirepass", password]);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}: {SETUP_HINT}"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.answers_ping() {
                self.child = Some(child);
                return Ok(());
            }
            let tail = || std::fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server exited with {status} before it answered on port {}:\n{}",
                    self.port,
                    tail()
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server did not answer PING on port {} within {READY_TIMEOUT:?}:\n{}",
                    self.port,
                    tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = match &self.password {
            Some(p) => format!("AUTH {p}\r\nPING\r\n"),
            None => "PING\r\n".to_string(),
        };
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 64];
        while !answer.ends_with(b"+PONG\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0` plus `extra` (e.g. `?prefix=x`).
    pub fn url(&self, extra: &str) -> String {
        format!("redis://127.0.0.1:{}/0{extra}", self.port)
    }

    /// Kills the server (SIGKILL: like a crash) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        // The port may linger for a moment after the kill.
        while let Err(failure) = self.spawn() {
            assert!(Instant::now() < deadline, "{failure}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
