# shellcheck shell=bash
# Shared by the scripts in this directory; sourced, not run.

# Prints a message on stderr and exits with failure.
die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

# Puts cargo (Rust >= 1.85) on PATH, or fails saying what to do. Under sudo,
# root's PATH usually lacks the invoking user's ~/.cargo/bin, so look there too.
find_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    local home
    for home in "${HOME:-/root}" "$(getent passwd "${SUDO_USER:-}" 2>/dev/null | cut -d: -f6)"; do
      if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
        export PATH="$home/.cargo/bin:$PATH"
        # rustup keeps its toolchains beside the proxies it installed.
        if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$home/.rustup" ]; then
          export RUSTUP_HOME="$home/.rustup"
        fi
        break
      fi
    done
  fi
  command -v cargo >/dev/null 2>&1 ||
    die "cargo not found. augur needs Rust 1.85 or newer: install it (rustup.rs, or Debian's cargo if recent enough) and put cargo on PATH."
  local version
  version=$(cargo --version 2>/dev/null | awk '{print $2}')
  local major=${version%%.*} rest=${version#*.}
  local minor=${rest%%.*}
  if ! [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || ((major < 1 || (major == 1 && minor < 85))); then
    die "cargo ${version:-(unknown version)} is too old: augur needs Rust 1.85 or newer."
  fi
}

# The augur binary that `cargo build` made.
augur_bin() {
  echo "${CARGO_TARGET_DIR:-$PWD/target}/debug/augur"
}

# Prints the space free where the build and the tests write, e.g.
# "disk: 41G free for the build, 41G for temporary files".
disk_free() {
  local target=${CARGO_TARGET_DIR:-$PWD/target}
  [ -d "$target" ] || target=$PWD
  echo "disk: $(df -h --output=avail "$target" | tail -n 1 | tr -d ' ') free for the build, $(df -h --output=avail "${TMPDIR:-/tmp}" | tail -n 1 | tr -d ' ') for temporary files"
}
