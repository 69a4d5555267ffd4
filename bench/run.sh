#!/usr/bin/env bash
# bench/run.sh - kmsd against the nginx fixed-response baseline, in the same run (bench/README.md).
#
# Builds the release kmsd and kms-load, starts a fresh kmsd, an nginx that answers every request
# with a fixed Encrypt-shaped body over the same TLS 1.3 and certificate, and a bare
# libmicrohttpd server (mhd-baseline.c) that does the same with kmsd's listener set-up. Then for
# each scenario it runs kms-load against nginx, the bare libmicrohttpd and kmsd in turn, R rounds
# interleaved, and prints a markdown table of the medians with DESIGN.md's targets.
#
#   bench/run.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS] [-r ROUNDS] [-w WARMUP]
#                [--scenarios "Encrypt Decrypt GenerateDataKey"] [--kmsd-threads N]
#                [--plaintext-size BYTES] [--kmsd-warmup SECONDS] [--no-build] [--out DIR]
#                [--serve]
#
# Before the rounds kmsd gets --kmsd-warmup seconds (default 20) of unmeasured Encrypt load: its
# replay cache is allocated at start but its pages become resident as nonces land in them, and
# those first page faults (a few µs per request for the first ~15 s at 20k requests/s) are a
# start-up cost, not the steady state the targets are about.
#
# --serve starts kmsd, nginx and the bare libmicrohttpd as for a run, prints how to reach them (endpoints, pids, key,
# blob, access key) and waits until interrupted: for profiling by hand (bench/README.md).
#
# Raw kms-load output and result lines go to bench/results/<date>/ (or --out). Benchmarks never
# gate tests: this script is run by hand.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

duration=10
connections=32
threads=2
rounds=3
warmup=2
scenarios="Encrypt Decrypt GenerateDataKey"
kmsd_threads=$(nproc)
plaintext_size=32
kmsd_warmup=20
build=1
serve=0
out=""

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
}

while [[ $# -gt 0 ]]; do
  case $1 in
  -d | --duration) duration=$2; shift 2 ;;
  -c | --connections) connections=$2; shift 2 ;;
  -t | --threads) threads=$2; shift 2 ;;
  -r | --rounds) rounds=$2; shift 2 ;;
  -w | --warmup) warmup=$2; shift 2 ;;
  --scenarios) scenarios=$2; shift 2 ;;
  --kmsd-threads) kmsd_threads=$2; shift 2 ;;
  --plaintext-size) plaintext_size=$2; shift 2 ;;
  --kmsd-warmup) kmsd_warmup=$2; shift 2 ;;
  --no-build) build=0; shift ;;
  --serve) serve=1; shift ;;
  --out) out=$2; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) usage; exit 2 ;;
  esac
done

# nginx is the baseline's server; Debian's package, installed when missing.
nginx_bin=$(command -v nginx || true)
[[ -n "$nginx_bin" ]] || nginx_bin=/usr/sbin/nginx
if [[ ! -x "$nginx_bin" ]]; then
  bench_log "installing nginx (the baseline server)"
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx
  nginx_bin=/usr/sbin/nginx
fi
command -v python3 >/dev/null || bench_die "python3 is needed (templating and the table)"

((build)) && bench_build
[[ -x "$bench_build/kmsd" && -x "$bench_build/kms-load" ]] || bench_die "no build in $bench_build"

out=${out:-$bench_root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
work=$(mktemp -d /tmp/kmsd-bench.XXXXXX)
trap 'bench_stop_all; rm -rf "$work"' EXIT

# ---- kmsd: release binary, fresh data dir, defaults (replay cache at its default size) ----
bench_start_kmsd "$work" --threads "$kmsd_threads"
key_id=$(bench_create_key)
[[ -n "$key_id" ]] || bench_die "CreateKey gave no KeyId"
encrypt_body=$(bench_once "$kmsd_endpoint" --action Encrypt --key-id "$key_id" \
  --plaintext-size "$plaintext_size")
blob=$(printf '%s' "$encrypt_body" | bench_json CiphertextBlob)
[[ -n "$blob" ]] || bench_die "Encrypt gave no CiphertextBlob"

# ---- nginx: same certificate, same TLS, a real Encrypt response as its fixed body ----
prefix=$work/nginx
mkdir -p "$prefix/tmp"
nginx_port=$(bench_free_port)
nginx_user="# not root: the workers run as the caller"
[[ $(id -u) -ne 0 ]] || nginx_user="user nobody nogroup;"
BENCH_BODY=$encrypt_body BENCH_WORKERS=$kmsd_threads BENCH_PREFIX=$prefix \
  BENCH_LISTEN=127.0.0.1:$nginx_port BENCH_CERT=$work/kmsd-data/tls/cert.pem \
  BENCH_KEY=$work/kmsd-data/tls/key.pem BENCH_USER=$nginx_user python3 - \
  "$bench_root/bench/nginx-baseline.conf" "$prefix/nginx.conf" <<'EOF'
import os, sys
conf = open(sys.argv[1]).read()
for name in ("WORKERS", "PREFIX", "LISTEN", "CERT", "KEY", "BODY"):
    conf = conf.replace("@%s@" % name, os.environ["BENCH_" + name])
conf = conf.replace("daemon off;", os.environ["BENCH_USER"] + "\ndaemon off;", 1)
open(sys.argv[2], "w").write(conf)
EOF
"$nginx_bin" -t -q -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log" ||
  bench_die "nginx rejected $prefix/nginx.conf"
"$nginx_bin" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
nginx_pid=$!
bench_pids+=("$nginx_pid")
nginx_endpoint=127.0.0.1:$nginx_port
for _ in $(seq 1 50); do
  "$bench_build/kms-load" --endpoint "$nginx_endpoint" --once >/dev/null 2>&1 && break
  sleep 0.1
done
bench_once "$nginx_endpoint" >/dev/null
bench_log "nginx (pid $nginx_pid, $kmsd_threads workers) on $nginx_endpoint"

# ---- bare libmicrohttpd: kmsd's listener set-up, the same fixed body, no KMS work ----
printf '%s' "$encrypt_body" >"$work/body.json"
bench_start_mhd_baseline "$work" "$work/body.json" --threads "$kmsd_threads"
bench_log "bare libmicrohttpd (pid $mhd_pid, $kmsd_threads threads) on $mhd_endpoint"

if ((serve)); then
  cat <<EOT
export KMS_ACCESS_KEY_ID=$KMS_ACCESS_KEY_ID KMS_ACCESS_KEY_SECRET=$KMS_ACCESS_KEY_SECRET
kmsd=$kmsd_endpoint kmsd_pid=$kmsd_pid nginx=$nginx_endpoint nginx_pid=$nginx_pid
mhd=$mhd_endpoint mhd_pid=$mhd_pid
key=$key_id
blob=$blob
# e.g. $bench_build/kms-load --endpoint \$kmsd --key-id \$key --server-pid \$kmsd_pid
# serving until interrupted (Ctrl-C)
EOT
  trap 'exit 0' INT TERM
  wait "$kmsd_pid" || true
  exit 0
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kmsd: $(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo '?') Release, $kmsd_threads threads"
  echo "nginx: $("$nginx_bin" -v 2>&1 | sed 's/.*: //'), $kmsd_threads workers"
  echo "bare libmicrohttpd: $(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?'), $kmsd_threads threads, kmsd's pool (144 KiB)"
  echo "machine: $(nproc) cores, $(uname -sr); client and servers share the cores"
  echo "load: kms-load -t$threads -c$connections -d${duration}s (warm-up ${warmup}s), $rounds rounds, kmsd warm-up ${kmsd_warmup}s"
} >"$out/setup.txt"
cat "$out/setup.txt" >&2

if [[ $kmsd_warmup != 0 ]]; then
  bench_log "kmsd warm-up: ${kmsd_warmup}s of Encrypt (replay cache pages, caches)"
  "$bench_build/kms-load" --endpoint "$kmsd_endpoint" --action Encrypt --key-id "$key_id" \
    --connections "$connections" --threads "$threads" --duration "$kmsd_warmup" --warmup 0 \
    >"$out/kmsd-warmup.log" 2>&1 || bench_die "kmsd warm-up failed: $(cat "$out/kmsd-warmup.log")"
fi

# ---- the runs: per scenario, nginx, bare libmicrohttpd and kmsd in turn ----
scenario_args() {
  case $1 in
  Encrypt) echo "--action Encrypt --key-id $key_id --plaintext-size $plaintext_size" ;;
  Decrypt) echo "--action Decrypt --param CiphertextBlob=$blob" ;;
  GenerateDataKey) echo "--action GenerateDataKey --key-id $key_id" ;;
  *) echo "--action $1 --key-id $key_id" ;;
  esac
}

: >"$out/results.txt"
for scenario in $scenarios; do
  read -r -a args <<<"$(scenario_args "$scenario")"
  for round in $(seq 1 "$rounds"); do
    for target in nginx mhd kmsd; do
      case $target in
      nginx) endpoint=$nginx_endpoint pid=$nginx_pid ;;
      mhd) endpoint=$mhd_endpoint pid=$mhd_pid ;;
      kmsd) endpoint=$kmsd_endpoint pid=$kmsd_pid ;;
      esac
      log="$out/$scenario-$target-$round.log"
      bench_log "$scenario round $round/$rounds: $target"
      "$bench_build/kms-load" --endpoint "$endpoint" "${args[@]}" --connections "$connections" \
        --threads "$threads" --duration "$duration" --warmup "$warmup" --server-pid "$pid" \
        --label "$scenario/$target/$round" >"$log" 2>&1 || true
      grep '^result ' "$log" >>"$out/results.txt" || {
        cat "$log" >&2
        bench_die "kms-load gave no result against $target"
      }
      grep -v '^result ' "$log" >&2
    done
  done
done

python3 - "$out/results.txt" "$scenarios" >"$out/table.md" <<'EOF'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    scenario, target, rnd = kv["label"].split("/")
    runs.setdefault((scenario, target), {})[rnd] = kv

def med(values):
    return statistics.median(values) if values else float("nan")

print("| scenario | nginx req/s | kmsd req/s | ratio | kmsd server CPU µs/req | nginx CPU µs/req "
      "| bare MHD CPU µs/req | bare MHD req/s | kmsd p99 ms | nginx p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
verdicts = []
for scenario in sys.argv[2].split():
    n, k = runs.get((scenario, "nginx"), {}), runs.get((scenario, "kmsd"), {})
    m = runs.get((scenario, "mhd"), {})
    if not n or not k or not m:
        continue
    # The ratio is taken per round (runs next to each other in time), then its median.
    ratio = med([float(k[r]["rps"]) / float(n[r]["rps"]) for r in k if r in n and float(n[r]["rps"]) > 0])
    k_rps, n_rps = med([float(v["rps"]) for v in k.values()]), med([float(v["rps"]) for v in n.values()])
    k_cpu, n_cpu = med([float(v["server_cpu_us"]) for v in k.values()]), med([float(v["server_cpu_us"]) for v in n.values()])
    k_p99, n_p99 = med([float(v["p99_ms"]) for v in k.values()]), med([float(v["p99_ms"]) for v in n.values()])
    m_cpu, m_rps = med([float(v["server_cpu_us"]) for v in m.values()]), med([float(v["rps"]) for v in m.values()])
    errors = sum(int(v["errors"]) + int(v["io_errors"])
                 for v in list(k.values()) + list(n.values()) + list(m.values()))
    print(f"| {scenario} | {n_rps:,.0f} | {k_rps:,.0f} | {ratio:.2f} | {k_cpu:.1f} | {n_cpu:.1f} "
          f"| {m_cpu:.1f} | {m_rps:,.0f} | {k_p99:.2f} | {n_p99:.2f} | {errors} |")
    verdicts.append(f"- {scenario}: ratio {ratio:.2f} {'≥' if ratio >= 0.70 else '<'} 0.70 "
                    f"({'met' if ratio >= 0.70 else 'MISSED'}); server CPU {k_cpu:.1f} µs "
                    f"{'≤' if k_cpu <= 20 else '>'} 20 ({'met' if k_cpu <= 20 else 'MISSED'}); "
                    f"p99 {k_p99:.2f} ms {'<' if k_p99 < 5 else '≥'} 5 "
                    f"({'met' if k_p99 < 5 else 'MISSED'}); kmsd − bare libmicrohttpd {k_cpu - m_cpu:.1f} µs")
print()
print("Medians over rounds. Targets (DESIGN.md \"Performance budget\"): kmsd ≥ 70 % of the nginx")
print("baseline's requests/s, ≤ 20 µs server CPU per request, p99 < 5 ms. bare MHD: libmicrohttpd set up")
print("as kmsd's listener (bench/mhd-baseline.c) answering the same fixed body: what the HTTP front end")
print("alone costs here.")
print()
print("\n".join(verdicts))
EOF
echo
cat "$out/setup.txt"
echo
cat "$out/table.md"
bench_log "raw results in $out"
