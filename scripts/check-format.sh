#!/usr/bin/env bash
# Fails when a C file is not formatted by .clang-format (clang-format --dry-run -Werror).
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
