#!/usr/bin/env bash
# Builds and installs `obol` with cargo, then installs its shell completions.
# Usage: ./install.sh            (binary to ~/.cargo/bin, completions under ~/.local/share)
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; get Rust from https://rustup.rs and run ./install.sh again" >&2
  exit 1
fi

cargo install --locked --path . --force
bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/obol"
echo "installed: $bin ($("$bin" --version))"

data="${XDG_DATA_HOME:-$HOME/.local/share}"
bash_dir="$data/bash-completion/completions"
zsh_dir="$data/zsh/site-functions"
fish_dir="${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions"
mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir"
"$bin" completion bash > "$bash_dir/obol"
"$bin" completion zsh > "$zsh_dir/_obol"
"$bin" completion fish > "$fish_dir/obol.fish"
echo "completions: $bash_dir/obol, $zsh_dir/_obol, $fish_dir/obol.fish"
case ":$PATH:" in
  *":$(dirname "$bin"):"*) ;;
  *) echo "note: add $(dirname "$bin") to your PATH" ;;
esac
echo "zsh: make sure $zsh_dir is in your \$fpath"
