#!/usr/bin/env bash
# bench/sustained.sh - sustained mixed load (issue 8; bench/README.md): minutes of Encrypt,
# Decrypt, GenerateDataKey, DescribeKey and GetSecretValue at high concurrency, with zero errors
# and flat memory as the pass mark.
#
#   bench/sustained.sh [-d SECONDS] [-s SAMPLE_SECONDS] [-f FILL_SECONDS] [-c CONNECTIONS]
#                      [-t THREADS] [--mix "Encrypt:3 Decrypt:3 GenerateDataKey:2 DescribeKey:1
#                      GetSecretValue:1"] [--window SECONDS] [--no-build] [--out DIR]
#                      [-- kmsd options...]
#
# Starts a fresh release kmsd, creates an Aliyun_AES_256 key and a secret (CreateSecret), and
# runs one kms-load --mix for the whole duration (default 360 s; the pass mark needs at least
# 300) over CONNECTIONS keep-alive connections (default 128): every connection sends the actions
# in the given proportions. Meanwhile it samples kmsd's VmRSS, open descriptors and threads every
# SAMPLE_SECONDS (default 5).
#
# The first FILL_SECONDS (default 60) are the fill phase: the replay cache's table is allocated
# at start and its pages become resident as nonces land in them (about 20-40 s at 10-20k
# requests/s), and SQLite's page cache and the allocator's arenas settle. Memory growth is
# measured from the first sample after it: growth = (largest later sample - that sample) / that
# sample.
#
# PASS needs: at least 300 s measured, 0 non-200 answers, 0 connections lost, and RSS growth
# under 5 %. --window SECONDS sets [auth] timestamp_window (default 900; at least 60), so that
# nonces expire within the run and the replay cache reaches the state where expiries balance
# arrivals. Raw output goes to bench/results/sustained-<date>/ (or --out). CI does not run this
# (it takes minutes on purpose); benchmarks never gate tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

duration=360
sample=5
fill=60
connections=128
threads=2
mix="Encrypt:3 Decrypt:3 GenerateDataKey:2 DescribeKey:1 GetSecretValue:1"
window=""
build=1
out=""
kmsd_args=()

while [[ $# -gt 0 ]]; do
  case $1 in
  -d) duration=$2; shift 2 ;;
  -s) sample=$2; shift 2 ;;
  -f) fill=$2; shift 2 ;;
  -c) connections=$2; shift 2 ;;
  -t) threads=$2; shift 2 ;;
  --mix) mix=$2; shift 2 ;;
  --window) window=$2; shift 2 ;;
  --no-build) build=0; shift ;;
  --out) out=$2; shift 2 ;;
  --) shift; kmsd_args=("$@"); break ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "sustained.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
((fill < duration)) || bench_die "the fill phase (-f $fill) must be shorter than the run (-d $duration)"
command -v python3 >/dev/null || bench_die "python3 is needed for the verdict"

((build)) && bench_build
bench_out=${out:-$bench_root/bench/results/sustained-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$bench_out"
work=$(mktemp -d /tmp/kmsd-sustained.XXXXXX)
trap 'bench_stop_all; rm -rf "$work"' EXIT

if [[ -n $window ]]; then
  printf '[auth]\ntimestamp_window = %s\n' "$window" >"$work/kmsd.conf"
  kmsd_args=(--config "$work/kmsd.conf" "${kmsd_args[@]}")
fi
bench_start_kmsd "$work" "${kmsd_args[@]}"
key_id=$(bench_create_key)
[[ -n "$key_id" ]] || bench_die "CreateKey gave no KeyId"
secret_value=$(head -c 24 /dev/urandom | base64)
bench_once "$kmsd_endpoint" --action CreateSecret --param SecretName=bench-secret \
  --param "SecretData=$secret_value" --param VersionId=v1 >/dev/null

load_args=(--key-id "$key_id" --param GetSecretValue:SecretName=bench-secret)
for m in $mix; do load_args+=(--mix "$m"); done

{
  bench_setup_lines
  echo "load: kms-load -t$threads -c$connections -d${duration}s, no warm-up, mix: $mix"
  echo "kmsd: fresh data directory, timestamp_window ${window:-900 (default)}, other settings default"
  echo "memory: VmRSS every ${sample}s, fill phase ${fill}s"
} >"$bench_out/setup.txt"
cat "$bench_out/setup.txt" >&2

proc_sample() { # seconds: one CSV row of kmsd's VmRSS, descriptors, threads
  local fds threads_now
  fds=$(find "/proc/$kmsd_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  threads_now=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$kmsd_pid/status")
  echo "$1,$(bench_rss_kib "$kmsd_pid"),$fds,$threads_now"
}
echo "seconds,rss_kib,fds,threads" >"$bench_out/samples.csv"
proc_sample 0 >>"$bench_out/samples.csv"
"$bench_build/kms-load" --endpoint "$kmsd_endpoint" "${load_args[@]}" --connections "$connections" \
  --threads "$threads" --duration "$duration" --warmup 0 --server-pid "$kmsd_pid" \
  --label sustained >"$bench_out/load.log" 2>&1 &
load_pid=$!
bench_pids+=("$load_pid")
bench_log "mixed load on kmsd (pid $kmsd_pid) for ${duration}s; sampling every ${sample}s"
start=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
  sleep "$sample"
  now=$(($(date +%s) - start))
  ((now <= duration)) || break
  kill -0 "$kmsd_pid" 2>/dev/null || bench_die "kmsd died during the run: $(tail -5 "$work/kmsd.err")"
  row=$(proc_sample "$now")
  echo "$row" >>"$bench_out/samples.csv"
  IFS=, read -r _ kb fds thr <<<"$row"
  printf 'bench: %4ds  VmRSS %d KiB  fds %d  threads %d\n' "$now" "$kb" "$fds" "$thr" >&2
done
wait "$load_pid" || true
grep -v '^result' "$bench_out/load.log" >&2 || true
grep -q '^result ' "$bench_out/load.log" || bench_die "the load generator gave no result"
kill -0 "$kmsd_pid" 2>/dev/null || bench_die "kmsd died during the run"

python3 - "$bench_out/load.log" "$bench_out/samples.csv" "$fill" >"$bench_out/verdict.md" <<'EOF'
import csv, sys

total, actions = None, []
for line in open(sys.argv[1]):
    kind, *fields = line.split()
    if kind in ("result", "result_action"):
        kv = dict(f.split("=", 1) for f in fields)
        if kind == "result":
            total = kv
        else:
            actions.append(kv)
rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(sys.argv[2]))]
fill = int(sys.argv[3])
seconds = float(total["seconds"])

print("| action | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | lost |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for a in actions + [dict(total, action="all")]:
    print(f"| {a['action']} | {int(a['requests']):,} | {float(a['rps']):,.0f} | {float(a['p50_ms']):.2f} "
          f"| {float(a['p90_ms']):.2f} | {float(a['p99_ms']):.2f} | {float(a['max_ms']):.1f} "
          f"| {a['errors']} | {a['io_errors']} |")
print()
print(f"{seconds:.0f} s measured; kmsd server CPU {float(total['server_cpu_us']):.1f} µs/request "
      f"(all actions), client CPU {float(total['client_cpu_us']):.1f} µs/request.")
print()
steady = [r for r in rows if r["seconds"] >= fill]
if len(steady) < 2:
    print("too few samples after the fill phase: run longer (-d) or sample more often (-s)")
    print("\nFAIL: no memory verdict")
    sys.exit(0)
base = steady[0]
peak = max(r["rss_kib"] for r in steady)
growth = (peak - base["rss_kib"]) / base["rss_kib"]
end = rows[-1]
print(f"VmRSS: start {rows[0]['rss_kib']:,} KiB, after the {fill} s fill phase ({base['seconds']} s) "
      f"{base['rss_kib']:,} KiB, end ({end['seconds']} s) {end['rss_kib']:,} KiB, max after the fill "
      f"phase {peak:,} KiB, min {min(r['rss_kib'] for r in steady):,} KiB ({len(steady)} samples); "
      f"max over the whole run {max(r['rss_kib'] for r in rows):,} KiB.")
print(f"Growth after the fill phase: {100 * growth:.2f} % (end vs. after fill: "
      f"{100 * (end['rss_kib'] - base['rss_kib']) / base['rss_kib']:+.2f} %).")
print(f"Open descriptors: {rows[0]['fds']} at start, {base['fds']} after fill, {end['fds']} at the end; "
      f"threads {rows[0]['threads']} -> {end['threads']}.")
print()
errors, lost = int(total["errors"]), int(total["io_errors"])
checks = [
    (seconds >= 300, f"{seconds:.0f} s measured (≥ 300)"),
    (errors == 0, f"{errors} errors (0)"),
    (lost == 0, f"{lost} connections lost (0)"),
    (growth < 0.05, f"RSS growth {100 * growth:.2f} % (< 5 %)"),
]
verdict = "PASS" if all(ok for ok, _ in checks) else "FAIL"
print(f"{verdict}: " + "; ".join(("" if ok else "NOT MET: ") + text for ok, text in checks))
EOF
echo
cat "$bench_out/setup.txt"
echo
cat "$bench_out/verdict.md"
bench_log "raw results in $bench_out (load.log, samples.csv)"
