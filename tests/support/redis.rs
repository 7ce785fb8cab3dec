//! A real `redis-server` (Debian's, installed by `scripts/setup-test-env.sh`, component redis)
//! on a free loopback port: no persistence, its own directory, killed on drop. Restartable on
//! the same port, to play an outage.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use super::process::{ChildGuard, wait_until};

pub struct Redis {
    guard: Option<ChildGuard>,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn command(port: u16, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    cmd
}

/// `PING` answered `+PONG`.
fn ping(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok();
    s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    if buf[..n].starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&buf[..n])))
    }
}

impl Redis {
    pub fn start() -> Redis {
        assert!(
            Command::new("redis-server")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "redis-server not installed: run `bash scripts/setup-test-env.sh` (component redis)"
        );
        let dir = tempfile::tempdir().unwrap();
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "redis-server",
            Duration::from_secs(20),
            |port| command(port, dir.path()),
            ping,
        );
        Redis {
            guard: Some(guard),
            port,
            dir,
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL): an outage.
    pub fn stop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.kill();
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.stop();
        let mut g = ChildGuard::spawn("redis-server", command(self.port, self.dir.path()));
        g.wait_ready_or_panic(Duration::from_secs(20), || ping(self.port));
        self.guard = Some(g);
    }
}

/// Waits until `probe` holds, panicking with `what`.
pub fn eventually(what: &str, probe: impl FnMut() -> Result<(), String>) {
    if let Err(e) = wait_until(Duration::from_secs(20), probe) {
        panic!("{what}: {e}");
    }
}
