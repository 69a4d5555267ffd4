# bench/lib.sh - shared steps of bench/run.sh and bench/rss.sh (sourced, not run): building the
# release kmsd and kms-load, starting a fresh kmsd, asking it things with kms-load --once, and
# stopping only the processes these scripts started.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_build=${BENCH_BUILD_DIR:-$bench_root/build-release}
bench_pids=()

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

# Release build of the daemon and the load generator (-O3, no test hooks).
bench_build() {
  bench_log "building kmsd and kms-load (Release) in $bench_build"
  cmake -S "$bench_root" -B "$bench_build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$bench_build" -j2 --target kmsd kms-load >/dev/null
}

# A fresh kmsd ($kmsd_bin, default the release build) on 127.0.0.1:<free port> with data dir
# $1/kmsd-data; extra arguments go to kmsd. Sets kmsd_pid, kmsd_port, kmsd_endpoint. The admin key comes from KMSD_ADMIN_ACCESS_KEY_ID /
# KMSD_ADMIN_ACCESS_KEY_SECRET (random ones when unset) and is exported for kms-load.
bench_start_kmsd() {
  local work=$1
  shift
  if [[ -z "${KMSD_ADMIN_ACCESS_KEY_ID:-}" || -z "${KMSD_ADMIN_ACCESS_KEY_SECRET:-}" ]]; then
    KMSD_ADMIN_ACCESS_KEY_ID="bench$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    KMSD_ADMIN_ACCESS_KEY_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  fi
  export KMSD_ADMIN_ACCESS_KEY_ID KMSD_ADMIN_ACCESS_KEY_SECRET
  export KMS_ACCESS_KEY_ID=$KMSD_ADMIN_ACCESS_KEY_ID KMS_ACCESS_KEY_SECRET=$KMSD_ADMIN_ACCESS_KEY_SECRET
  "${kmsd_bin:-$bench_build/kmsd}" --data-dir "$work/kmsd-data" --listen 127.0.0.1:0 --quiet "$@" \
    >"$work/kmsd.out" 2>"$work/kmsd.err" &
  kmsd_pid=$!
  bench_pids+=("$kmsd_pid")
  for _ in $(seq 1 100); do
    grep -q "kmsd ready on" "$work/kmsd.out" 2>/dev/null && break
    kill -0 "$kmsd_pid" 2>/dev/null || break
    sleep 0.1
  done
  kmsd_port=$(sed -n 's/.*kmsd ready on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/kmsd.out")
  [[ -n "$kmsd_port" ]] || {
    cat "$work/kmsd.err" >&2
    bench_die "kmsd did not start"
  }
  kmsd_endpoint=127.0.0.1:$kmsd_port
  bench_log "kmsd (pid $kmsd_pid) on $kmsd_endpoint"
}

# kms-load --once against endpoint $1 with the remaining arguments; prints the body, fails on
# any status but 200.
bench_once() {
  local endpoint=$1 out
  shift
  out=$("$bench_build/kms-load" --endpoint "$endpoint" --once "$@") || {
    printf '%s\n' "$out" >&2
    bench_die "request failed: $*"
  }
  printf '%s\n' "$out" | sed 1d
}

# The value of "name":"..." in a flat JSON body on stdin.
bench_json() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# A new Aliyun_AES_256 key on kmsd; prints its KeyId.
bench_create_key() {
  bench_once "$kmsd_endpoint" --action CreateKey --param "Description=bench" | bench_json KeyId
}

# A free TCP port on 127.0.0.1.
bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Stops the processes this script started (by pid, TERM, then waits).
bench_stop_all() {
  local pid
  for pid in "${bench_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${bench_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  bench_pids=()
}
