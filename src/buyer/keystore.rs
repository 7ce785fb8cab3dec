//! Where the buyer's private key is kept: the OS keyring, or a 0600 file when there is none.
//!
//! Every keyring call runs on its own thread under a time limit: a locked Secret Service
//! collection can prompt and hang forever, and a CLI must not. When the keyring is missing,
//! fails or hangs, the key goes to a 0600 file in a 0700 directory and the caller is told why,
//! so it can say so loudly. The key itself never appears in an error or a log line.
//!
//! The same mechanism keeps other secrets: [`Keystore::for_secret`] names another keyring entry
//! and fallback file (e.g. `obol auth`'s refresh token).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const SERVICE: &str = "obol";
const USER: &str = "wallet-private-key";
const WALLET_FILE: &str = "wallet.key";

/// How long one keyring call may take before obol gives up on the keyring.
pub const DEFAULT_KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("cannot write the key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
}

/// Where a key was stored or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    Keyring,
    /// The plaintext fallback file, with the reason the keyring was not used.
    File {
        path: PathBuf,
        why: String,
    },
}

impl std::fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyLocation::Keyring => f.write_str("the OS keyring"),
            KeyLocation::File { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// The key store: the OS keyring first, the fallback file second.
#[derive(Debug, Clone)]
pub struct Keystore {
    /// Keyring entry: service `obol`, this user name.
    user: String,
    fallback_file: PathBuf,
    timeout: Duration,
    use_keyring: bool,
}

impl Keystore {
    /// The wallet key store: keyring, falling back to `$XDG_DATA_HOME/obol/wallet.key`.
    /// `OBOL_KEYRING=off` skips the keyring; `OBOL_KEYRING_TIMEOUT_MS` changes the time limit.
    pub fn new() -> Self {
        Self::for_secret(USER, WALLET_FILE)
    }

    /// A store for another secret: keyring entry service `obol` / user `user`, falling back to
    /// `$XDG_DATA_HOME/obol/<file_name>`. Same environment switches as [`Keystore::new`].
    pub fn for_secret(user: &str, file_name: &str) -> Self {
        let timeout = std::env::var("OBOL_KEYRING_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_KEYRING_TIMEOUT);
        let use_keyring = !matches!(
            std::env::var("OBOL_KEYRING").as_deref(),
            Ok("off" | "file" | "0" | "false")
        );
        Keystore {
            user: user.to_owned(),
            fallback_file: crate::paths::data_dir().join(file_name),
            timeout,
            use_keyring,
        }
    }

    /// The same store with another fallback file (tests, or a caller with its own layout).
    pub fn with_fallback_file(mut self, path: PathBuf) -> Self {
        self.fallback_file = path;
        self
    }

    /// Skip the keyring and use only the file (`--insecure-storage`).
    pub fn file_only(mut self) -> Self {
        self.use_keyring = false;
        self
    }

    pub fn fallback_file(&self) -> &Path {
        &self.fallback_file
    }

    /// Stores the key; returns where it went.
    pub fn store(&self, key_hex: &str) -> Result<KeyLocation, KeystoreError> {
        let why = if self.use_keyring {
            let secret = key_hex.to_owned();
            match keyring_call(&self.user, self.timeout, move |entry| {
                entry.set_password(&secret)
            }) {
                Ok(()) => {
                    // A stale fallback file would shadow nothing, but it is a plaintext copy.
                    let _ = std::fs::remove_file(&self.fallback_file);
                    return Ok(KeyLocation::Keyring);
                }
                Err(why) => why,
            }
        } else {
            "the keyring was switched off (--insecure-storage or OBOL_KEYRING=off)".to_owned()
        };
        write_private_file(&self.fallback_file, key_hex.as_bytes())?;
        Ok(KeyLocation::File {
            path: self.fallback_file.clone(),
            why,
        })
    }

    /// Loads the key: the keyring first, then the fallback file. `Ok(None)` when neither has one.
    pub fn load(&self) -> Result<Option<(String, KeyLocation)>, KeystoreError> {
        let why = if self.use_keyring {
            match keyring_call(&self.user, self.timeout, |entry| entry.get_password()) {
                Ok(key) => return Ok(Some((key, KeyLocation::Keyring))),
                Err(why) => why,
            }
        } else {
            "the keyring was switched off".to_owned()
        };
        match read_private_file(&self.fallback_file)? {
            Some(key) => Ok(Some((
                key,
                KeyLocation::File {
                    path: self.fallback_file.clone(),
                    why,
                },
            ))),
            None => Ok(None),
        }
    }

    /// Removes the secret from the keyring and the fallback file. Idempotent: a secret that is
    /// in neither place is not an error. Returns where one was removed from; a keyring that
    /// cannot be reached is reported in `keyring_error` (the file is removed regardless).
    pub fn delete(&self) -> Result<Deleted, KeystoreError> {
        let mut out = Deleted::default();
        if self.use_keyring {
            match keyring_call(&self.user, self.timeout, |entry| {
                match entry.delete_credential() {
                    Ok(()) => Ok(true),
                    Err(keyring_core::Error::NoEntry) => Ok(false),
                    Err(e) => Err(e),
                }
            }) {
                Ok(removed) => out.keyring = removed,
                Err(why) => out.keyring_error = Some(why),
            }
        }
        match std::fs::remove_file(&self.fallback_file) {
            Ok(()) => out.file = Some(self.fallback_file.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeystoreError::Write {
                    path: self.fallback_file.clone(),
                    source,
                });
            }
        }
        Ok(out)
    }
}

/// What [`Keystore::delete`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// An entry was removed from the OS keyring.
    pub keyring: bool,
    /// The fallback file that was removed.
    pub file: Option<PathBuf>,
    /// Why the keyring could not be asked (it may still hold the secret).
    pub keyring_error: Option<String>,
}

impl Default for Keystore {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs one keyring operation on a fresh thread; gives up after `timeout`.
/// The error is a sentence saying why the keyring could not be used (never the secret).
fn keyring_call<T: Send + 'static>(
    user: &str,
    timeout: Duration,
    op: impl FnOnce(&keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let user = user.to_owned();
    std::thread::spawn(move || {
        let result = open_entry(&user).and_then(|entry| op(&entry).map_err(describe));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the OS keyring did not answer within {} ms (locked or hanging)",
            timeout.as_millis()
        )),
    }
}

#[cfg(target_os = "linux")]
fn open_entry(user: &str) -> Result<keyring_core::Entry, String> {
    use keyring_core::api::CredentialStoreApi;
    let store = zbus_secret_service_keyring_store::Store::new()
        .map_err(|e| format!("no OS keyring is available ({})", describe(e)))?;
    store.build(SERVICE, user, None).map_err(describe)
}

#[cfg(not(target_os = "linux"))]
fn open_entry(_user: &str) -> Result<keyring_core::Entry, String> {
    Err("this build has no OS keyring support on this platform".to_owned())
}

fn describe(err: keyring_core::Error) -> String {
    match err {
        keyring_core::Error::NoEntry => "the keyring holds no such obol entry".to_owned(),
        // Other variants carry platform messages, never the secret.
        other => other.to_string(),
    }
}

/// Writes `data` to `path` with mode 0600 in a 0700 directory, atomically (temp file + rename).
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), KeystoreError> {
    let err = |source| KeystoreError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

fn read_private_file(path: &Path) -> Result<Option<String>, KeystoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private_mode(path)?;
            Ok(Some(text.trim().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeystoreError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Refuses a key file that group or others can read (ssh's rule).
pub fn check_private_mode(path: &Path) -> Result<(), KeystoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| KeystoreError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeystoreError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_store(dir: &Path) -> Keystore {
        Keystore {
            user: USER.to_owned(),
            fallback_file: dir.join("sub").join("wallet.key"),
            timeout: Duration::from_millis(200),
            use_keyring: false,
        }
    }

    #[test]
    fn file_fallback_round_trips_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path());
        let loc = store.store("0xabc").unwrap();
        assert!(matches!(loc, KeyLocation::File { .. }));
        let (key, _) = store.load().unwrap().unwrap();
        assert_eq!(key, "0xabc");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file_mode = std::fs::metadata(store.fallback_file())
                .unwrap()
                .permissions()
                .mode();
            let dir_mode = std::fs::metadata(dir.path().join("sub"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(file_mode & 0o777, 0o600);
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("wallet.key")]);
    }

    #[test]
    fn delete_is_idempotent_and_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Keystore::for_secret("oauth-refresh-token", "oauth-refresh-token")
            .file_only()
            .with_fallback_file(dir.path().join("rt"));
        store.store("rt-value").unwrap();
        let d = store.delete().unwrap();
        assert_eq!(d.file.as_deref(), Some(dir.path().join("rt").as_path()));
        assert!(!d.keyring);
        assert!(store.load().unwrap().is_none());
        assert_eq!(store.delete().unwrap(), Deleted::default());
    }

    #[test]
    fn empty_store_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(file_store(dir.path()).load().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused_without_echoing_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path());
        store.store("0xsecretvalue").unwrap();
        std::fs::set_permissions(
            store.fallback_file(),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("secretvalue"), "{err}");
    }
}
