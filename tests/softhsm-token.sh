#!/usr/bin/env bash
# Makes a private SoftHSM2 token for tests, touching no system-wide state:
#
#   tests/softhsm-token.sh DIR [LABEL] [USER_PIN] [SO_PIN]
#
# creates DIR/softhsm2.conf (its own token directory DIR/tokens, errors-only logging) and
# initialises a token LABEL (default kmsd-test) with the PINs (defaults 1234 / 12345678) in the
# first free slot; DIR/LABEL.pin holds the user PIN (mode 0600). Running it again with another label
# adds a token beside the first. Prints, for the caller to use:
#   SOFTHSM2_CONF=DIR/softhsm2.conf
#   MODULE=/usr/lib/softhsm/libsofthsm2.so
#   SLOT=<slot id of the new token>
#   PIN_FILE=DIR/LABEL.pin
# Exits 77 (the "skipped" status of ctest and automake) when SoftHSM2 is not installed.
set -euo pipefail

dir=${1:?usage: softhsm-token.sh DIR [LABEL] [USER_PIN] [SO_PIN]}
label=${2:-kmsd-test}
pin=${3:-1234}
so_pin=${4:-12345678}
module=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

if ! command -v softhsm2-util >/dev/null || [[ ! -r $module ]]; then
  echo "softhsm-token.sh: SoftHSM2 is not installed (softhsm2-util, $module)" >&2
  exit 77
fi
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
conf=$dir/softhsm2.conf
if [[ ! -f $conf ]]; then
  cat >"$conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
export SOFTHSM2_CONF=$conf
out=$(softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin")
slot=$(sed -n 's/.*reassigned to slot \([0-9]*\).*/\1/p' <<<"$out")
[[ -n $slot ]] || { echo "softhsm-token.sh: unexpected softhsm2-util output: $out" >&2; exit 1; }
(umask 077 && printf '%s\n' "$pin" >"$dir/$label.pin")
echo "SOFTHSM2_CONF=$conf"
echo "MODULE=$module"
echo "SLOT=$slot"
echo "PIN_FILE=$dir/$label.pin"
