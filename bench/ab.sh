#!/usr/bin/env bash
# bench/ab.sh - two kmsd binaries side by side under the same load, alternately (bench/README.md):
# for measuring one change before/after in the same run.
#
#   bench/ab.sh OLD_KMSD NEW_KMSD [-r ROUNDS] [-d SECONDS] [-a ACTION] [kms-load options...]
#
# Both run from fresh data directories at the same time (idle while the other is measured);
# kms-load (from the release build) alternates between them, Encrypt by default. Prints each run
# and the medians of requests/s and server CPU µs per request.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[[ $# -ge 2 ]] || {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
old=$(realpath "$1") new=$(realpath "$2")
shift 2
rounds=5 duration=5 action=Encrypt extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
  -r) rounds=$2; shift 2 ;;
  -d) duration=$2; shift 2 ;;
  -a) action=$2; shift 2 ;;
  *) extra+=("$1"); shift ;;
  esac
done
[[ -x "$bench_build/kms-load" ]] || bench_build

work=$(mktemp -d /tmp/kmsd-ab.XXXXXX)
trap 'bench_stop_all; rm -rf "$work"' EXIT
declare -A endpoint pid key blob
for side in old new; do
  mkdir -p "$work/$side"
  kmsd_bin=${!side}
  bench_start_kmsd "$work/$side"
  endpoint[$side]=$kmsd_endpoint pid[$side]=$kmsd_pid
  key[$side]=$(bench_create_key)
  blob[$side]=$(bench_once "$kmsd_endpoint" --action Encrypt --key-id "${key[$side]}" | bench_json CiphertextBlob)
done

: >"$work/results"
for round in $(seq 1 "$rounds"); do
  order="old new"
  ((round % 2)) || order="new old" # neither side always goes first
  for side in $order; do
    args=(--action "$action" --key-id "${key[$side]}")
    [[ $action != Decrypt ]] || args=(--action Decrypt --param "CiphertextBlob=${blob[$side]}")
    "$bench_build/kms-load" --endpoint "${endpoint[$side]}" "${args[@]}" --duration "$duration" \
      --warmup 1 --server-pid "${pid[$side]}" --label "$side" "${extra[@]}" 2>&1 |
      grep '^result ' | tee -a "$work/results"
  done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [dict(f.split("=", 1) for f in l.split()[1:]) for l in open(sys.argv[1])]
for side in ("old", "new"):
    r = [x for x in rows if x["label"] == side]
    print(f"{side}: median {statistics.median(float(x['rps']) for x in r):,.0f} req/s, "
          f"{statistics.median(float(x['server_cpu_us']) for x in r):.1f} µs server CPU/request, "
          f"p99 {statistics.median(float(x['p99_ms']) for x in r):.2f} ms")
PY
