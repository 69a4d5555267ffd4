#!/usr/bin/env bash
# Interop tests: a real kmsd driven by Alibaba Cloud's official Node SDK (@alicloud/kms20160120, V1
# signatures) and its V2.0 core (@alicloud/openapi-client, V3 signatures), versions pinned in
# package.json / package-lock.json.
#
#   tests/interop/run.sh /path/to/kmsd
#
# Installs the packages with `npm ci` into tests/interop/node_modules (git-ignored; again only when the
# lockfile changed), starts the given kmsd on a temporary data directory and a free port with a chosen
# admin access key, runs `node --test` on tests/interop/*.test.js, then stops kmsd with SIGTERM and
# fails unless it exits 0.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 KMSD_BINARY" >&2
  exit 2
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

command -v node >/dev/null || { echo "interop: node (>= 20) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "interop: npm is required" >&2; exit 1; }

# npm ci only when node_modules does not match the lockfile.
stamp=node_modules/.kmsd-lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export KMSD_ADMIN_ACCESS_KEY_ID="Interop$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KMSD_ADMIN_ACCESS_KEY_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
printf '[auth]\nreplay_cache_capacity = 200000\n' >"$work/kmsd.conf"
: >"$work/stdout" # exists before the loop below reads it, however late the child opens it
"$binary" --config "$work/kmsd.conf" --data-dir "$work/data" --listen 127.0.0.1:0 \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
port=""
for _ in $(seq 1 100); do
  port="$(sed -n 's/.*kmsd ready on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/stdout")"
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  cat "$work/stderr" >&2
  echo "interop: kmsd did not start" >&2
  exit 1
fi

status=0
KMS_ENDPOINT="127.0.0.1:$port" KMS_ACCESS_KEY_ID="$KMSD_ADMIN_ACCESS_KEY_ID" \
  KMS_ACCESS_KEY_SECRET="$KMSD_ADMIN_ACCESS_KEY_SECRET" NODE_TLS_REJECT_UNAUTHORIZED=0 \
  node --test "$here"/*.test.js || status=$?

kill -TERM "$pid"
kmsd_status=0
wait "$pid" || kmsd_status=$?
pid=""
if [[ $kmsd_status -ne 0 ]]; then
  tail -20 "$work/stderr" >&2
  echo "interop: kmsd exited with status $kmsd_status after SIGTERM" >&2
  exit 1
fi
if [[ $status -ne 0 ]]; then
  tail -20 "$work/stderr" >&2
  echo "interop: tests failed" >&2
  exit "$status"
fi
echo "interop: all tests passed; kmsd stopped cleanly"
