# Shared by the scripts in this folder: install what a fresh machine lacks.

# Runs a command as root, through sudo when we are not root already.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The mosquitto broker and its command-line clients (mosquitto_pub, mosquitto_sub, used by
# the testkit's own tests), installed from Debian's packages when missing.
ensure_mosquitto() {
  if { ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; } ||
    ! command -v mosquitto_pub >/dev/null 2>&1; then
    echo "==> installing mosquitto and mosquitto-clients (Debian packages)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
  fi
  MOSQUITTO=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
  export MOSQUITTO
}

ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "cargo is missing: install Rust with rustup (https://rustup.rs)" >&2
      exit 1
    fi
  fi
}
