#!/usr/bin/env bash
# Installs dependencies, builds, and runs kmsd on its embedded defaults: data in ./kmsd-data
# (SQLite, software keystore, generated dev certificate), listening on https://127.0.0.1:8443.
# On first start the admin access key is created and its secret shown once on this terminal.
# Any arguments are passed to kmsd (e.g. --listen 0.0.0.0:8443).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh build >/dev/null
exec ./build/kmsd --data-dir ./kmsd-data --listen 127.0.0.1:8443 "$@"
