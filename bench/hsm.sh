#!/usr/bin/env bash
# bench/hsm.sh - the same requests on HSM keys and on software keys, side by side in the same run
# (issue 6; bench/README.md).
#
#   bench/hsm.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS] [-r ROUNDS] [-w WARMUP]
#                [--scenarios "Encrypt RSA_PSS ECDSA"] [--kmsd-warmup SECONDS] [--no-build]
#                [--out DIR]
#
# Makes a private SoftHSM2 token (tests/softhsm-token.sh, in a temporary directory: nothing
# system-wide is touched), starts a fresh release kmsd with a [pkcs11] section for it, and
# creates each key spec twice on that one kmsd: ProtectionLevel=SOFTWARE and ProtectionLevel=HSM.
# Then for each scenario, R rounds, the software key and the HSM key alternately (which one goes
# first alternates too), each a kms-load run with kmsd's server CPU per request.
#
# Scenarios: Encrypt (32 bytes, Aliyun_AES_256), Decrypt (of a blob made once), GenerateDataKey,
# RSA_PSS / RSA_PKCS1 (AsymmetricSign, RSA_2048) and ECDSA (AsymmetricSign, EC_P256), signing a
# fixed 32-byte digest.
#
# SoftHSM2 is a software token: it runs in kmsd's process and does its crypto with OpenSSL, so
# the difference measures the PKCS#11 path (session pool, C_*Init and operation calls, object
# lookups, copies, locking, SoftHSM2's own bookkeeping), not a hardware module's latency.
# Raw output goes to bench/results/hsm-<date>/ (or --out). Benchmarks never gate tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

duration=10
connections=32
threads=2
rounds=3
warmup=2
scenarios="Encrypt RSA_PSS ECDSA"
kmsd_warmup=20
build=1
out=""

while [[ $# -gt 0 ]]; do
  case $1 in
  -d | --duration) duration=$2; shift 2 ;;
  -c | --connections) connections=$2; shift 2 ;;
  -t | --threads) threads=$2; shift 2 ;;
  -r | --rounds) rounds=$2; shift 2 ;;
  -w | --warmup) warmup=$2; shift 2 ;;
  --scenarios) scenarios=$2; shift 2 ;;
  --kmsd-warmup) kmsd_warmup=$2; shift 2 ;;
  --no-build) build=0; shift ;;
  --out) out=$2; shift 2 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "hsm.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || bench_die "python3 is needed for the table"

((build)) && bench_build
bench_out=${out:-$bench_root/bench/results/hsm-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$bench_out"
: >"$bench_out/results.txt"
work=$(mktemp -d /tmp/kmsd-hsm.XXXXXX)
trap 'bench_stop_all; rm -rf "$work"' EXIT

# ---- the token and a kmsd that uses it ----
set +e
token=$("$bench_root/tests/softhsm-token.sh" "$work/hsm" bench-token 1234)
rc=$?
set -e
((rc != 77)) || bench_die "SoftHSM2 is not installed (apt-get install softhsm2)"
((rc == 0)) || bench_die "cannot make a SoftHSM2 token"
eval "$(sed 's/^/export /' <<<"$token")" # SOFTHSM2_CONF, MODULE, SLOT, PIN_FILE
printf '[pkcs11]\nmodule = %s\ntoken_label = bench-token\npin_file = %s\n' "$MODULE" "$PIN_FILE" \
  >"$work/kmsd.conf"
bench_start_kmsd "$work" --config "$work/kmsd.conf"
grep -h 'pkcs11: token' "$work/kmsd.out" "$work/kmsd.err" 2>/dev/null | head -1 >&2 || true

# ---- the keys: each spec once per protection level, on the same kmsd ----
declare -A key ver
for level in SOFTWARE HSM; do
  key[AES/$level]=$(bench_create_key_with KeySpec=Aliyun_AES_256 "ProtectionLevel=$level")
  key[RSA/$level]=$(bench_create_key_with KeySpec=RSA_2048 KeyUsage=SIGN/VERIFY "ProtectionLevel=$level")
  key[EC/$level]=$(bench_create_key_with KeySpec=EC_P256 KeyUsage=SIGN/VERIFY "ProtectionLevel=$level")
  for spec in AES RSA EC; do
    [[ -n "${key[$spec/$level]}" ]] || bench_die "CreateKey $spec $level gave no KeyId"
    bench_once "$kmsd_endpoint" --action DescribeKey --param "KeyId=${key[$spec/$level]}" |
      grep -q "\"ProtectionLevel\":\"$level\"" || bench_die "the $spec key is not $level"
  done
  ver[RSA/$level]=$(bench_key_version "${key[RSA/$level]}")
  ver[EC/$level]=$(bench_key_version "${key[EC/$level]}")
done
digest=$(printf 'kmsd bench' | openssl dgst -sha256 -binary | base64)

scenario_args() { # scenario level
  local spec alg
  case $1 in
  Encrypt | GenerateDataKey) echo "--action $1 --key-id ${key[AES/$2]}"; return ;;
  Decrypt) echo "--action Decrypt --key-id ${key[AES/$2]}"; return ;; # kms-load makes the blob
  RSA_PSS) spec=RSA alg=RSA_PSS_SHA_256 ;;
  RSA_PKCS1) spec=RSA alg=RSA_PKCS1_SHA_256 ;;
  ECDSA) spec=EC alg=ECDSA_SHA_256 ;;
  *) bench_die "unknown scenario $1 (Encrypt Decrypt GenerateDataKey RSA_PSS RSA_PKCS1 ECDSA)" ;;
  esac
  echo "--action AsymmetricSign --param KeyId=${key[$spec/$2]} --param KeyVersionId=${ver[$spec/$2]} --param Algorithm=$alg --param Digest=$digest"
}
# Every scenario answers once on both keys before anything is measured.
for scenario in $scenarios; do
  for level in SOFTWARE HSM; do
    read -r -a args <<<"$(scenario_args "$scenario" "$level")"
    bench_once "$kmsd_endpoint" "${args[@]}" >/dev/null
  done
done

{
  bench_setup_lines
  echo "token: SoftHSM2 $(softhsm2-util --version 2>/dev/null || echo '?') (file object store) via $MODULE, same kmsd for both protection levels"
  echo "load: kms-load -t$threads -c$connections -d${duration}s (warm-up ${warmup}s), $rounds rounds, kmsd warm-up ${kmsd_warmup}s of Encrypt (software key)"
} >"$bench_out/setup.txt"
cat "$bench_out/setup.txt" >&2

if [[ $kmsd_warmup != 0 ]]; then
  bench_log "kmsd warm-up: ${kmsd_warmup}s of Encrypt"
  "$bench_build/kms-load" --endpoint "$kmsd_endpoint" --action Encrypt --key-id "${key[AES/SOFTWARE]}" \
    --connections "$connections" --threads "$threads" --duration "$kmsd_warmup" --warmup 0 \
    >"$bench_out/kmsd-warmup.log" 2>&1 || bench_die "warm-up failed: $(cat "$bench_out/kmsd-warmup.log")"
fi

bench_load_opts=(--connections "$connections" --threads "$threads" --duration "$duration" --warmup "$warmup")
for scenario in $scenarios; do
  for round in $(seq 1 "$rounds"); do
    order="SOFTWARE HSM"
    ((round % 2)) || order="HSM SOFTWARE" # neither side always goes first
    for level in $order; do
      read -r -a args <<<"$(scenario_args "$scenario" "$level")"
      bench_load "$scenario/$level/$round" "$kmsd_endpoint" "$kmsd_pid" "${args[@]}"
    done
  done
done

python3 - "$bench_out/results.txt" "$scenarios" >"$bench_out/table.md" <<'EOF'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    kind, *fields = line.split()
    if kind != "result":
        continue
    kv = dict(f.split("=", 1) for f in fields)
    scenario, level, rnd = kv["label"].split("/")
    runs.setdefault((scenario, level), {})[rnd] = kv

med = statistics.median
print("| scenario | software req/s | HSM req/s | HSM/software req/s | software CPU µs/req "
      "| HSM CPU µs/req | HSM − software µs | of it system µs (software / HSM) | software p99 ms "
      "| HSM p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for scenario in sys.argv[2].split():
    s, h = runs.get((scenario, "SOFTWARE"), {}), runs.get((scenario, "HSM"), {})
    if not s or not h:
        continue
    # The ratio per round (runs next to each other in time), then its median.
    ratio = med(float(h[r]["rps"]) / float(s[r]["rps"]) for r in h if r in s and float(s[r]["rps"]) > 0)
    s_cpu, h_cpu = med(float(v["server_cpu_us"]) for v in s.values()), med(float(v["server_cpu_us"]) for v in h.values())
    s_sys = med(float(v.get("server_system_us", "nan")) for v in s.values())
    h_sys = med(float(v.get("server_system_us", "nan")) for v in h.values())
    print(f"| {scenario} | {med(float(v['rps']) for v in s.values()):,.0f} "
          f"| {med(float(v['rps']) for v in h.values()):,.0f} | {ratio:.2f} | {s_cpu:.1f} | {h_cpu:.1f} "
          f"| {h_cpu - s_cpu:+.1f} | {s_sys:.1f} / {h_sys:.1f} | {med(float(v['p99_ms']) for v in s.values()):.2f} "
          f"| {med(float(v['p99_ms']) for v in h.values()):.2f} "
          f"| {sum(int(v['errors']) + int(v['io_errors']) for v in list(s.values()) + list(h.values()))} |")
print()
print("Medians over rounds; both keys on the same kmsd. SoftHSM2 is a software token running in "
      "kmsd's process: the difference is the PKCS#11 path's cost, not a hardware module's latency.")
EOF
echo
cat "$bench_out/setup.txt"
echo
cat "$bench_out/table.md"
bench_log "raw results in $bench_out"
