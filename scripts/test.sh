#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test of the project:
#   format check, unit tests (cmocka) with the fuzz corpora replayed, a short libFuzzer run of
#   every fuzz target, integration tests (the real kmsd over TLS),
#   interop tests (Alibaba's official Node SDK), then unit + integration again under ASan+UBSan.
# KMSD_SKIP_SANITIZERS=1 skips the sanitizer pass (quicker local runs); KMSD_FUZZ_SECONDS sets
# the seconds each fuzz target runs (default 20; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

step() { printf '\n=== %s\n' "$*"; }

step "format"
./scripts/check-format.sh

step "build"
./scripts/build.sh build

step "unit tests"
(cd build && ctest --output-on-failure)

# libFuzzer targets of tests/fuzz/ (clang, ASan+UBSan), each for a short bounded time from its
# seed corpus; scripts/fuzz.sh runs them longer. KMSD_FUZZ_SECONDS=0 skips this step.
fuzz_seconds=${KMSD_FUZZ_SECONDS:-20}
if [[ "$fuzz_seconds" != 0 ]]; then
  step "fuzzing: every target of tests/fuzz for ${fuzz_seconds}s (scripts/fuzz.sh)"
  ./scripts/fuzz.sh "$fuzz_seconds"
fi

step "integration tests"
KMSD_BIN="$PWD/build/kmsd-test" python3 -m unittest discover -s tests/integration -p 'test_*.py' -v

if [[ -d tests/interop && -f tests/interop/package.json ]]; then
  step "interop tests (Alibaba's Node SDK)"
  ./tests/interop/run.sh "$PWD/build/kmsd-test"
fi

if [[ "${KMSD_SKIP_SANITIZERS:-}" != 1 ]]; then
  step "sanitizers: unit + integration under ASan+UBSan"
  CMAKE_BUILD_TYPE=Debug ./scripts/build.sh build-asan -DKMS_SANITIZE=ON
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
  KMSD_BIN="$PWD/build-asan/kmsd-test" ASAN_OPTIONS=detect_leaks=1 \
    python3 -m unittest discover -s tests/integration -p 'test_*.py'
fi
step "all tests passed"
