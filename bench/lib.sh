# bench/lib.sh - shared steps of the bench/ scripts (sourced, not run): building the release kmsd
# and kms-load, starting a fresh kmsd, asking it things with kms-load --once, measured runs and
# openssl speed (asym.sh, hsm.sh), RSS samples, and stopping only the processes these scripts
# started.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_build=${BENCH_BUILD_DIR:-$bench_root/build-release}
bench_pids=()

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

# Release build of the daemon, the load generator and the bare libmicrohttpd baseline (-O3, no test hooks).
bench_build() {
  bench_log "building kmsd and kms-load (Release) in $bench_build"
  cmake -S "$bench_root" -B "$bench_build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$bench_build" -j2 --target kmsd kms-load mhd-baseline >/dev/null
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

# The bare libmicrohttpd baseline (mhd-baseline.c) on 127.0.0.1:<free port>, with kmsd's
# certificate and connection memory (max_url_bytes 128 KiB + 16 KiB, src/http/server.c), answering
# with the body in file $2; the data dir is $1/kmsd-data, extra arguments go to mhd-baseline.
# Sets mhd_pid and mhd_endpoint (the last one started).
bench_start_mhd_baseline() {
  local work=$1 body=$2 port
  shift 2
  port=$(bench_free_port)
  "$bench_build/mhd-baseline" --listen "$port" --cert "$work/kmsd-data/tls/cert.pem" \
    --key "$work/kmsd-data/tls/key.pem" --body-file "$body" --pool-bytes $((128 * 1024 + 16 * 1024)) \
    --threads "$(nproc)" "$@" 2>>"$work/mhd-baseline.err" &
  mhd_pid=$!
  bench_pids+=("$mhd_pid")
  mhd_endpoint=127.0.0.1:$port
  for _ in $(seq 1 50); do
    "$bench_build/kms-load" --endpoint "$mhd_endpoint" --once >/dev/null 2>&1 && return 0
    kill -0 "$mhd_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/mhd-baseline.err" >&2
  bench_die "mhd-baseline did not start ($*)"
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

# ---- used by asym.sh, hsm.sh and sustained.sh ----

# A new key on kmsd with the given CreateKey parameters (NAME=VALUE ...); prints its KeyId.
bench_create_key_with() {
  local args=() p
  for p in "$@"; do args+=(--param "$p"); done
  bench_once "$kmsd_endpoint" --action CreateKey "${args[@]}" | bench_json KeyId
}

# The (first) KeyVersionId of key $1: asymmetric keys have no primary version, so every
# AsymmetricSign names one.
bench_key_version() {
  bench_once "$kmsd_endpoint" --action ListKeyVersions --param "KeyId=$1" | bench_json KeyVersionId
}

# One measured kms-load run labelled $1 against endpoint $2, with server pid $3, the options in
# the array bench_load_opts (connections, threads, duration, warm-up) and the remaining
# arguments. Its log goes to $bench_out/<label, / as ->.log, its result lines (result and
# result_action) to $bench_out/results.txt, and the human part of the log to stderr.
bench_load() {
  local label=$1 endpoint=$2 pid=$3 log
  shift 3
  log="$bench_out/${label//\//-}.log"
  bench_log "$label"
  "$bench_build/kms-load" --endpoint "$endpoint" --server-pid "$pid" --label "$label" \
    "${bench_load_opts[@]}" "$@" >"$log" 2>&1 || true
  grep '^result' "$log" >>"$bench_out/results.txt" || {
    cat "$log" >&2
    bench_die "kms-load gave no result ($label)"
  }
  grep -v '^result' "$log" >&2
}

# The CPU cost of one signature on one core, from `openssl speed` ($1 seconds per measurement;
# speed divides by the CPU time it used, not by wall-clock time, unless given -elapsed). Prints
# "rsa2048_sign_us=... ecdsap256_sign_us=...".
bench_openssl_sign_us() {
  openssl speed -mr -seconds "$1" rsa2048 ecdsap256 2>/dev/null | awk -F: '
    $1 == "+F2" && $3 == 2048 { rsa = 1e6 / $4 }
    $1 == "+F4" && $3 == 256 { ec = 1e6 / $4 }
    END { if (rsa > 0 && ec > 0) printf "rsa2048_sign_us=%.2f ecdsap256_sign_us=%.2f\n", rsa, ec }'
}

# VmRSS of process $1 in KiB.
bench_rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# The machine and the moment, for a result's header.
bench_setup_lines() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kmsd: $(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo '?') Release"
  echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg) at start; client and server share the cores"
}
