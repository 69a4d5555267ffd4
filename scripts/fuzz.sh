#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan+UBSan, build-fuzz/) and runs each
# for a given time, one after the other:
#
#   scripts/fuzz.sh                 every target, 60 s each
#   scripts/fuzz.sh 600 fuzz_request     one target for 10 minutes
#   scripts/fuzz.sh 30 fuzz_blob fuzz_params
#
# Each target fuzzes a working corpus in tests/fuzz/corpus-work/<target>/ (gitignored; it grows
# run after run) seeded from the committed tests/fuzz/corpus/<target>/, with the dictionary
# tests/fuzz/dict/<target>.dict when there is one. Crash, leak, timeout and OOM inputs land in
# tests/fuzz/corpus-work/artifacts/<target>/; logs in tests/fuzz/corpus-work/logs/<target>.log.
# Prints per target: seconds, executions, coverage (libFuzzer's final cov/ft) and crashes; exits
# non-zero when any target crashed. A crashing input belongs in tests/fuzz/corpus/<target>/ once
# fixed (the replay tests of ctest then run it on every build), with a unit or integration test.
#
# Environment: KMSD_FUZZ_BUILD_DIR (default build-fuzz), KMSD_FUZZ_JOBS (build jobs, default 2),
# KMSD_FUZZ_ARGS (extra libFuzzer flags), KMSD_FUZZ_SKIP_BUILD=1 (reuse the build).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }
build=${KMSD_FUZZ_BUILD_DIR:-build-fuzz}
work=tests/fuzz/corpus-work

if [[ "${KMSD_FUZZ_SKIP_BUILD:-}" != 1 ]]; then
  command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/setup.sh)" >&2; exit 1; }
  CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKMS_FUZZ=ON >/dev/null
  cmake --build "$build" -j"${KMSD_FUZZ_JOBS:-2}" --target fuzz >/dev/null
fi

targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi

# Sanitizer settings for every run: stop on the first error, with symbolized stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
rows=()
for t in "${targets[@]}"; do
  bin="$build/$t"
  [[ -x "$bin" ]] || { echo "fuzz: no target $t in $build" >&2; exit 2; }
  mkdir -p "$work/$t" "$work/artifacts/$t" "$work/logs"
  seeds="tests/fuzz/corpus/$t"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=4096
        -artifact_prefix="$work/artifacts/$t/")
  [[ -f "tests/fuzz/dict/$t.dict" ]] && args+=(-dict="tests/fuzz/dict/$t.dict")
  # shellcheck disable=SC2206
  extra=(${KMSD_FUZZ_ARGS:-})
  log="$work/logs/$t.log"
  before=$(find "$work/artifacts/$t" -type f | wc -l)
  echo "fuzz: $t for ${seconds}s (log $log)" >&2
  set +e
  # New inputs go to the first directory; the seeds are read only.
  dirs=("$work/$t")
  [[ -d "$seeds" ]] && dirs+=("$seeds")
  "$bin" "${args[@]}" "${extra[@]}" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  after=$(find "$work/artifacts/$t" -type f | wc -l)
  crashes=$((after - before))
  if ((rc != 0 && crashes == 0)); then crashes=1; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  rows+=("$(printf '%-16s %8s %12s %8s %8s %8s' "$t" "${took:-?}" "${execs:-?}" "${cov:-?}" \
    "${ft:-?}" "$crashes")")
  if ((crashes > 0)); then
    failed=1
    echo "fuzz: $t FAILED (exit $rc); the end of its log:" >&2
    grep -E 'ERROR|FUZZ CHECK|SUMMARY|runtime error|Test unit written|Deadly signal|timeout' "$log" \
      | head -20 >&2 || true
    echo "fuzz: reproduce with $bin <artifact> (artifacts in $work/artifacts/$t/)" >&2
  fi
done

printf '\n%-16s %8s %12s %8s %8s %8s\n' target seconds executions cov ft crashes
printf '%s\n' "${rows[@]}"
if ((failed)); then
  echo "fuzz: some targets crashed" >&2
  exit 1
fi
