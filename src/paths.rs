//! Where obol keeps its files, following the XDG base directory rules.
//!
//! Every location can be moved with the matching `XDG_*_HOME` variable; tests use that to run
//! each command against a private temporary home.

use std::path::PathBuf;

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(dir) if !dir.is_empty() && PathBuf::from(&dir).is_absolute() => PathBuf::from(dir),
        _ => home().join(fallback),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_CONFIG_HOME/obol` (default `~/.config/obol`): offers file, networks file, config.
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("obol")
}

/// `$XDG_STATE_HOME/obol` (default `~/.local/state/obol`): the payment ledger, budgets.
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("obol")
}

/// `$XDG_DATA_HOME/obol` (default `~/.local/share/obol`): the key file fallback.
pub fn data_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("obol")
}
