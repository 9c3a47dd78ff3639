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

# Python's paho-mqtt 2.x, the independent MQTT client that crates/haka/tests/python_peer.rs
# runs as a peer, from PyPI. Exports HAKA_PYTHON, the interpreter that test runs.
#
# A python3 on PATH that has paho-mqtt 2.x already is used as it is. Otherwise paho-mqtt goes
# into a virtual environment in target/python-peer (never into the system's Python, which
# Debian marks externally managed; the test looks there too when HAKA_PYTHON is not set),
# after installing python3 and its venv module from Debian's packages if they are missing.
ensure_paho() {
  local check='import sys, paho.mqtt; sys.exit(0 if paho.mqtt.__version__.startswith("2.") else 1)'
  if [ -n "${HAKA_PYTHON:-}" ] && "$HAKA_PYTHON" -c "$check" >/dev/null 2>&1; then
    export HAKA_PYTHON
    return
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "==> installing python3 (Debian packages)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  if python3 -c "$check" >/dev/null 2>&1; then
    HAKA_PYTHON=$(command -v python3)
    export HAKA_PYTHON
    return
  fi
  local venv
  venv="$(pwd)/target/python-peer"
  if ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "==> installing paho-mqtt 2.x (PyPI) into $venv" >&2
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian's python3 keeps its venv module (with ensurepip) in a package of its own.
      rm -rf "$venv"
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'paho-mqtt>=2,<3'
    "$venv/bin/python" -c "$check"
  fi
  HAKA_PYTHON="$venv/bin/python"
  export HAKA_PYTHON
}

# cmake, which the bench package's optional `paho` feature needs to build Paho C (CI builds
# every feature), from Debian's packages when missing.
ensure_cmake() {
  if ! command -v cmake >/dev/null 2>&1; then
    echo "==> installing cmake (Debian package)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
  fi
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
