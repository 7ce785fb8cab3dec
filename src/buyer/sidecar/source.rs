//! Where upstreams and their auth pools come from.
//!
//! A [`PoolSource`] produces the full set of upstreams it knows, on every reload. The sidecar
//! merges the snapshots of all its sources (`--source files|kube|both`), so adding a source
//! (PurchaseRequests from the Kubernetes API) means implementing this trait; nothing else in the
//! sidecar changes. A source may also take the per-upstream status back
//! ([`PoolSource::report`]): the Kubernetes source writes it into `PurchaseRequest.status`.
//! A source that learns of changes by itself (a watch) asks for a prompt reload through the
//! [`ReloadHandle`] the sidecar hands it ([`PoolSource::attach`]) instead of waiting for the
//! next tick.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use super::config::{PreSignedAuth, UpstreamConfig, parse_auths_file, parse_config_file};
use super::status::UpstreamStatus;

/// One upstream as a source describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// The key of the upstream (file stem, PurchaseRequest name).
    pub name: String,
    pub config: UpstreamConfig,
    pub auths: Vec<PreSignedAuth>,
    /// Where it came from, for messages (`file /config/a.json`, `purchaserequest ns/a`).
    pub origin: String,
}

/// A problem with one upstream of a source; the sidecar keeps that upstream's previous version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIssue {
    pub name: String,
    pub origin: String,
    pub message: String,
}

/// Everything a source knows at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSnapshot {
    pub upstreams: Vec<UpstreamSpec>,
    pub issues: Vec<SourceIssue>,
}

/// Why a source could not be read at all (the sidecar then keeps every previous upstream).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct SourceError {
    pub source_name: String,
    pub message: String,
}

/// Asks the sidecar's reload loop for a reload (one pending request at most: asking again
/// while one is pending is a no-op). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    tx: tokio::sync::mpsc::Sender<()>,
}

impl ReloadHandle {
    /// A handle and the receiving end the reload loop listens on.
    pub fn channel() -> (ReloadHandle, tokio::sync::mpsc::Receiver<()>) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (ReloadHandle { tx }, rx)
    }

    /// Requests a reload; `false` when one is already pending (or the sidecar is gone).
    pub fn trigger(&self) -> bool {
        self.tx.try_send(()).is_ok()
    }
}

/// A producer of upstreams.
pub trait PoolSource: Send + Sync + 'static {
    /// `files`, `kube`: for logs.
    fn name(&self) -> &str;

    /// Called once when the sidecar is built: the handle asks it for a prompt reload. Sources
    /// that are only read on the reload tick (files) ignore it.
    fn attach(&self, _reload: ReloadHandle) {}

    /// The current upstreams of this source.
    fn load(&self) -> BoxFuture<'_, Result<SourceSnapshot, SourceError>>;

    /// The sidecar's view of the upstreams this source produced, after each reload and payment
    /// burst. Files have nowhere to write it.
    fn report<'a>(&'a self, _status: &'a [UpstreamStatus]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The config and auth directories of the obol-stack buyer (ConfigMaps mounted in the pod).
#[derive(Debug, Clone)]
pub struct FileSource {
    pub config_dir: PathBuf,
    pub auths_dir: PathBuf,
}

impl PoolSource for FileSource {
    fn name(&self) -> &str {
        "files"
    }

    fn load(&self) -> BoxFuture<'_, Result<SourceSnapshot, SourceError>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.read())
                .await
                .map_err(|e| SourceError {
                    source_name: "files".into(),
                    message: e.to_string(),
                })?
        })
    }
}

/// `*.json` files of a directory (following symlinks, skipping dot-files such as the
/// `..data` links of a mounted ConfigMap), sorted. A missing directory is empty.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl FileSource {
    /// Reads every config file and the auths of each upstream.
    pub fn read(&self) -> Result<SourceSnapshot, SourceError> {
        let err = |message: String| SourceError {
            source_name: "files".into(),
            message,
        };
        let files = json_files(&self.config_dir).map_err(|e| {
            err(format!(
                "cannot read the config directory {}: {e}",
                self.config_dir.display()
            ))
        })?;
        let mut snapshot = SourceSnapshot::default();
        for path in files {
            let origin = format!("file {}", path.display());
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_config_file(&stem, &text));
            let configs = match parsed {
                Ok(c) => c,
                Err(message) => {
                    snapshot.issues.push(SourceIssue {
                        name: stem,
                        origin,
                        message,
                    });
                    continue;
                }
            };
            for (name, config) in configs {
                match self.read_auths(&name) {
                    Ok(auths) => snapshot.upstreams.push(UpstreamSpec {
                        name,
                        config,
                        auths,
                        origin: origin.clone(),
                    }),
                    Err(message) => snapshot.issues.push(SourceIssue {
                        name,
                        origin: origin.clone(),
                        message,
                    }),
                }
            }
        }
        Ok(snapshot)
    }

    /// `<auths-dir>/<name>.json`; none is an empty pool.
    fn read_auths(&self, name: &str) -> Result<Vec<PreSignedAuth>, String> {
        let path = self.auths_dir.join(format!("{name}.json"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                parse_auths_file(&text).map_err(|e| format!("auths file {}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("auths file {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str =
        r#"{"url":"http://seller","remoteModel":"m","network":"base","payTo":"0x1","price":"10"}"#;

    #[test]
    fn reads_config_and_auth_dirs_like_a_mounted_configmap() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let auths = dir.path().join("auths");
        std::fs::create_dir_all(config.join("..2026_11_22")).unwrap();
        std::fs::create_dir_all(&auths).unwrap();
        std::fs::write(config.join("..2026_11_22/a.json"), CONFIG).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("..2026_11_22/a.json", config.join("a.json")).unwrap();
        #[cfg(not(unix))]
        std::fs::write(config.join("a.json"), CONFIG).unwrap();
        std::fs::write(config.join("b.json"), CONFIG).unwrap();
        std::fs::write(config.join("broken.json"), "{").unwrap();
        std::fs::write(config.join("notes.txt"), "x").unwrap();
        std::fs::write(
            auths.join("a.json"),
            r#"[{"nonce":"0x1","signature":"0x2"}]"#,
        )
        .unwrap();
        std::fs::write(auths.join("b.json"), "nope").unwrap();

        let snap = FileSource {
            config_dir: config,
            auths_dir: auths,
        }
        .read()
        .unwrap();
        let names: Vec<_> = snap.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(snap.upstreams[0].auths.len(), 1);
        let issues: Vec<_> = snap.issues.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(issues, ["b", "broken"]);
        assert!(snap.issues[0].message.contains("auths file"));
    }

    #[test]
    fn missing_directories_are_empty_and_missing_auths_an_empty_pool() {
        let dir = tempfile::tempdir().unwrap();
        let src = FileSource {
            config_dir: dir.path().join("nope"),
            auths_dir: dir.path().join("nope2"),
        };
        assert_eq!(src.read().unwrap(), SourceSnapshot::default());
        std::fs::write(dir.path().join("x.json"), CONFIG).unwrap();
        let src = FileSource {
            config_dir: dir.path().to_owned(),
            auths_dir: dir.path().join("nope2"),
        };
        let snap = src.read().unwrap();
        assert_eq!(snap.upstreams.len(), 1);
        assert!(snap.upstreams[0].auths.is_empty());
    }

    /// A source whose answer the test sets.
    struct Scripted(std::sync::Mutex<Result<SourceSnapshot, SourceError>>);

    impl Scripted {
        fn set(&self, r: Result<SourceSnapshot, SourceError>) {
            *self.0.lock().unwrap() = r;
        }
    }

    impl PoolSource for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }

        fn load(&self) -> BoxFuture<'_, Result<SourceSnapshot, SourceError>> {
            let r = self.0.lock().unwrap().clone();
            Box::pin(async move { r })
        }
    }

    fn snap(names: &[&str]) -> Result<SourceSnapshot, SourceError> {
        Ok(SourceSnapshot {
            upstreams: names
                .iter()
                .map(|n| UpstreamSpec {
                    name: (*n).into(),
                    config: serde_json::from_value(serde_json::json!({
                        "url": "http://seller", "remoteModel": n, "network": "base",
                        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "price": "10"}))
                    .unwrap(),
                    auths: vec![],
                    origin: "test".into(),
                })
                .collect(),
            issues: vec![],
        })
    }

    fn down() -> Result<SourceSnapshot, SourceError> {
        Err(SourceError {
            source_name: "kube".into(),
            message: "cannot reach the cluster".into(),
        })
    }

    #[tokio::test]
    async fn a_failing_source_keeps_its_last_read_while_the_others_update() {
        use crate::buyer::sidecar::{App, SidecarConfig, SystemClock};
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let files = Arc::new(Scripted(std::sync::Mutex::new(snap(&["a"]))));
        let kube = Arc::new(Scripted(std::sync::Mutex::new(down())));
        let app = App::new(&SidecarConfig {
            listen: "127.0.0.1:0".into(),
            state_path: dir.path().join("state.json"),
            reload_interval: std::time::Duration::from_secs(3600),
            registry: crate::x402::networks::Registry::builtin(),
            signer: None,
            max_amount: "0.10".into(),
            sources: vec![files.clone(), kube.clone()],
            clock: Arc::new(SystemClock),
            max_timeout: 3600,
            admin_token: None,
        })
        .unwrap();
        let names =
            |app: &App| -> Vec<String> { app.table.load().upstreams.keys().cloned().collect() };

        // Never read: the others are served, not ready, the error returned.
        let err = app.reload(true).await.unwrap_err();
        assert!(err.contains("cannot reach the cluster"), "{err}");
        assert_eq!(names(&app), ["a"]);
        assert!(!app.table.load().loaded);
        // Unchanged and still failing: no rebuild, the error again.
        assert!(app.reload(false).await.is_err());

        kube.set(snap(&["b"]));
        app.reload(false).await.unwrap();
        assert_eq!(names(&app), ["a", "b"]);
        assert!(app.table.load().loaded);

        // Failing again: its last read stays while the files change.
        kube.set(down());
        files.set(snap(&["c"]));
        assert!(app.reload(false).await.is_err());
        assert_eq!(names(&app), ["b", "c"]);
        assert!(app.table.load().loaded, "it was read once");
    }
}
