//! The cluster an integration test talks to: the in-repo fake (default), or a real cluster when
//! `OBOL_TEST_KUBECONFIG` names a kubeconfig file. Tests written against [`KubeTarget`] run
//! unchanged on both; fake-only assertions (request logs, direct store reads) go through
//! [`KubeTarget::fake`].

use std::path::{Path, PathBuf};
use std::process::Command;

use super::FakeKube;

pub const ENV: &str = "OBOL_TEST_KUBECONFIG";

pub enum KubeTarget {
    Fake(FakeKube),
    Real {
        kubeconfig: PathBuf,
        cache_dir: tempfile::TempDir,
    },
}

impl KubeTarget {
    /// A real cluster if `OBOL_TEST_KUBECONFIG` is set (non-empty; the file must exist), else a
    /// freshly started fake.
    pub fn from_env_or_fake() -> KubeTarget {
        match std::env::var_os(ENV).filter(|v| !v.is_empty()) {
            Some(path) => {
                let kubeconfig = PathBuf::from(path);
                assert!(
                    kubeconfig.is_file(),
                    "{ENV}={} is not a file; unset it to use the in-repo fake API server",
                    kubeconfig.display()
                );
                let cache_dir = tempfile::Builder::new()
                    .prefix("obol-kube-cache-")
                    .tempdir()
                    .expect("temp dir");
                KubeTarget::Real {
                    kubeconfig,
                    cache_dir,
                }
            }
            None => KubeTarget::Fake(FakeKube::start()),
        }
    }

    pub fn is_fake(&self) -> bool {
        matches!(self, KubeTarget::Fake(_))
    }

    /// The fake, for fake-only assertions.
    pub fn fake(&self) -> Option<&FakeKube> {
        match self {
            KubeTarget::Fake(f) => Some(f),
            KubeTarget::Real { .. } => None,
        }
    }

    /// The kubeconfig to hand to obol (`--kubeconfig`/`KUBECONFIG`) and kubectl.
    pub fn kubeconfig_path(&self) -> &Path {
        match self {
            KubeTarget::Fake(f) => f.kubeconfig_path(),
            KubeTarget::Real { kubeconfig, .. } => kubeconfig,
        }
    }

    /// kubectl bound to this target.
    pub fn kubectl(&self) -> Command {
        match self {
            KubeTarget::Fake(f) => f.kubectl(),
            KubeTarget::Real {
                kubeconfig,
                cache_dir,
            } => super::kubectl_command(kubeconfig, cache_dir.path()),
        }
    }

    /// A kube-rs client from the target's kubeconfig (current context).
    pub async fn client(&self) -> kube::Client {
        super::client_from_kubeconfig(self.kubeconfig_path()).await
    }

    /// A namespace name unique to this run (`<prefix>-<random>`), so tests against a shared real
    /// cluster do not collide. Creating and deleting it is the test's job.
    pub fn unique_namespace(prefix: &str) -> String {
        format!("{prefix}-{}", super::util::random_suffix(8))
    }
}
