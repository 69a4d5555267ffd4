#!/usr/bin/env bash
# Installs what building and testing kmsd needs, from Debian's packages, when missing.
# Idempotent: packages already installed are left alone. Runs apt-get as root (or via sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang clang-format
  libmicrohttpd-dev libssl-dev libsqlite3-dev libcjson-dev uuid-dev libcmocka-dev libsystemd-dev
  openssl python3 sqlite3 curl softhsm2 opensc
  libp11-kit-dev
  libgnutls28-dev
  libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then as_root=(sudo); fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js >= 20 runs the interop tests with Alibaba's SDK (Debian 12's own nodejs is 18).
if ! command -v node >/dev/null || [[ $(node -p 'process.versions.node.split(".")[0]') -lt 20 ]]; then
  echo "setup: Node.js >= 20 and npm are needed for the interop tests (tests/interop)" >&2
  exit 1
fi
