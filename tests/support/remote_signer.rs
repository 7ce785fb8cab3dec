//! The obol-stack remote-signer, played by `remote_signer.py` (it signs typed data with cast,
//! an EIP-712 implementation independent of obol's).

use std::path::Path;
use std::process::Command;

use super::{ChildGuard, READY_TIMEOUT, http_probe, rail_bin};

/// A running remote signer holding one key.
pub struct RemoteSigner {
    pub guard: ChildGuard,
    /// `http://127.0.0.1:PORT`, what `--signer-url` takes.
    pub url: String,
}

impl RemoteSigner {
    /// Starts a signer for `private_key`, ready when `GET /api/v1/keys` answers.
    pub fn start(private_key: &str) -> RemoteSigner {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/remote_signer.py");
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "remote-signer",
            READY_TIMEOUT,
            |port| {
                let mut cmd = Command::new("python3");
                cmd.arg(&script)
                    .arg(port.to_string())
                    .arg(private_key)
                    .arg(rail_bin("cast"));
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/api/v1/keys")),
        );
        RemoteSigner {
            guard,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}
