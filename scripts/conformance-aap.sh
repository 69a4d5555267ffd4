#!/usr/bin/env bash
# Prepares an application access point whose access key can run the conformance suite, on a
# kmsd that is already running (this script starts nothing): as the admin it creates a policy
# granting KeyAdministrator, CryptoServiceKeyUser, SecretAdministrator and CryptoServiceSecretUser
# on "*", an AAP with AuthenticationMethod=AccessKey using it, and an access key of that AAP; then
# it prints the lines that make the suite sign with that key:
#
#   export KMS_ACCESS_KEY_ID=AKkmsd...
#   export KMS_ACCESS_KEY_SECRET=...
#
# Usage (the admin credentials come from the environment, never from the command line):
#   KMS_ENDPOINT=127.0.0.1:8443 KMS_ADMIN_ACCESS_KEY_ID=... KMS_ADMIN_ACCESS_KEY_SECRET=... \
#       scripts/conformance-aap.sh > aap.env
#   . ./aap.env && KMS_ENDPOINT=127.0.0.1:8443 ../shared/conformance/run.sh keys aliases ...
#
# Optional: KMS_PROTOCOL (https, or http for insecure_plain_http), KMS_SIGN (the kms-sign binary;
# default build/kms-sign), KMS_AAP_PERMISSIONS (space-separated template names, to try others).
# Needs curl and python3. Each run creates new objects with unique names.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
endpoint=${KMS_ENDPOINT:?KMS_ENDPOINT (host:port of kmsd) is required}
admin_id=${KMS_ADMIN_ACCESS_KEY_ID:?KMS_ADMIN_ACCESS_KEY_ID is required}
admin_secret=${KMS_ADMIN_ACCESS_KEY_SECRET:?KMS_ADMIN_ACCESS_KEY_SECRET is required}
protocol=${KMS_PROTOCOL:-https}
kms_sign=${KMS_SIGN:-$here/../build/kms-sign}
permissions=${KMS_AAP_PERMISSIONS:-KeyAdministrator CryptoServiceKeyUser SecretAdministrator CryptoServiceSecretUser}
suffix=$(date +%s)_$$

[[ -x "$kms_sign" ]] || { echo "conformance-aap: $kms_sign not found (build first, or set KMS_SIGN)" >&2; exit 1; }

# call Action Name=Value ... : one admin request; prints the JSON body, fails on an error body.
call() {
  local url body
  url=$(KMS_ACCESS_KEY_ID="$admin_id" KMS_ACCESS_KEY_SECRET="$admin_secret" \
        "$kms_sign" --endpoint "$protocol://$endpoint" --method POST "Action=$1" "${@:2}")
  body=$(curl -sS -k -X POST "$url")
  if ! printf '%s' "$body" | python3 -c 'import json,sys; sys.exit("Code" in json.load(sys.stdin))'; then
    echo "conformance-aap: $1 failed: $body" >&2
    exit 1
  fi
  printf '%s' "$body"
}

field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

perm_json=$(python3 -c 'import json,sys; print(json.dumps(["RbacPermission/Template/" + p for p in sys.argv[1:]]))' \
            $permissions)
policy="conformance_policy_$suffix"
aap="conformance_aap_$suffix"

call CreatePolicy "Name=$policy" "Permissions=$perm_json" 'Resources=["*"]' \
     "Description=conformance run with an access point's key" >/dev/null
call CreateApplicationAccessPoint "Name=$aap" "Policies=[\"$policy\"]" AuthenticationMethod=AccessKey \
     "Description=conformance run" >/dev/null
created=$(call CreateAccessKey "AapName=$aap" "Description=conformance run")
echo "conformance-aap: policy $policy, access point $aap" >&2
printf 'export KMS_ACCESS_KEY_ID=%s\n' "$(printf '%s' "$created" | field AccessKeyId)"
printf 'export KMS_ACCESS_KEY_SECRET=%s\n' "$(printf '%s' "$created" | field AccessKeySecret)"
