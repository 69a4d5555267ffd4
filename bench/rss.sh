#!/usr/bin/env bash
# bench/rss.sh - the memory target of DESIGN.md: kmsd's resident size stays flat (within 5 %)
# under steady load once the replay cache has filled (bench/README.md).
#
#   bench/rss.sh [-d SECONDS] [-s SAMPLE_SECONDS] [-f FILL_SECONDS] [-c CONNECTIONS] [-t THREADS]
#                [-a ACTION] [--no-build] [--out DIR] [-- kmsd options...]
#
# Starts a fresh release kmsd, keeps kms-load's Encrypt load (or ACTION) on it for the whole
# duration (default 600 s, the design's 10 minutes) and samples VmRSS from /proc/PID/status
# every SAMPLE_SECONDS (default 5). Samples taken during the first FILL_SECONDS (default 60)
# are the fill phase: the replay cache's table is allocated up front but its pages become
# resident as nonces land in them, and SQLite's page cache and the allocator's arenas settle.
# After that the verdict compares every later sample with the first one: "flat" when none
# differs by more than 5 %. The samples go to rss.csv in the output directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

duration=600
sample=5
fill=60
connections=32
threads=2
action=Encrypt
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
  -a) action=$2; shift 2 ;;
  --no-build) build=0; shift ;;
  --out) out=$2; shift 2 ;;
  --) shift; kmsd_args=("$@"); break ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "rss.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
((fill < duration)) || bench_die "the fill phase (-f $fill) must be shorter than the run (-d $duration)"

((build)) && bench_build
out=${out:-$bench_root/bench/results/rss-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
work=$(mktemp -d /tmp/kmsd-rss.XXXXXX)
trap 'bench_stop_all; rm -rf "$work"' EXIT

bench_start_kmsd "$work" "${kmsd_args[@]}"
key_id=$(bench_create_key)
case $action in
Decrypt)
  blob=$(bench_once "$kmsd_endpoint" --action Encrypt --key-id "$key_id" | bench_json CiphertextBlob)
  load_args=(--action Decrypt --param "CiphertextBlob=$blob")
  ;;
*) load_args=(--action "$action" --key-id "$key_id") ;;
esac

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$kmsd_pid/status"; }

echo "seconds,rss_kib" >"$out/rss.csv"
echo "0,$(rss_kib)" >>"$out/rss.csv"
"$bench_build/kms-load" --endpoint "$kmsd_endpoint" "${load_args[@]}" --connections "$connections" \
  --threads "$threads" --duration "$duration" --warmup 0 --server-pid "$kmsd_pid" \
  --label "rss/$action" >"$out/load.log" 2>&1 &
load_pid=$!
bench_pids+=("$load_pid")
bench_log "load on kmsd (pid $kmsd_pid) for ${duration}s, sampling VmRSS every ${sample}s"
start=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
  sleep "$sample"
  now=$(($(date +%s) - start))
  ((now <= duration)) || break
  kb=$(rss_kib) || break
  echo "$now,$kb" >>"$out/rss.csv"
  printf 'bench: %4ds  VmRSS %d KiB\n' "$now" "$kb" >&2
done
wait "$load_pid" || true
grep '^result ' "$out/load.log" || {
  cat "$out/load.log" >&2
  bench_die "the load generator failed"
}

python3 - "$out/rss.csv" "$fill" >"$out/verdict.txt" <<'EOF'
import csv, sys
rows = [(int(r["seconds"]), int(r["rss_kib"])) for r in csv.DictReader(open(sys.argv[1]))]
fill = int(sys.argv[2])
steady = [kb for s, kb in rows if s >= fill]
if len(steady) < 2:
    print("too few samples after the fill phase: run longer (-d) or sample more often (-s)")
    sys.exit(0)
base = steady[0]
worst = max(abs(kb - base) / base for kb in steady)
print(f"VmRSS at start {rows[0][1]} KiB, after the {fill}s fill phase {base} KiB, "
      f"min {min(steady)} KiB, max {max(steady)} KiB, last {steady[-1]} KiB "
      f"({len(steady)} samples)")
print(f"largest change after the fill phase: {100 * worst:.1f} % "
      f"({'flat: within 5 %' if worst <= 0.05 else 'NOT flat: over 5 %'})")
EOF
cat "$out/verdict.txt"
bench_log "samples in $out/rss.csv"
