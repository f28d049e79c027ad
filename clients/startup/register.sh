#!/usr/bin/env bash
# fleetpatch startup script for Linux VMs.
#
# Installs the AWS SSM agent when it is missing (Debian/Ubuntu: the .deb with dpkg; RHEL family
# and Amazon Linux: the .rpm with yum or rpm) from the region's agent download location baked in
# below, after verifying the package's detached OpenPGP signature (<package>.sig, as AWS publishes
# it) with gpgv (or gpg) against the signing key baked in below, made by a key whose fingerprint
# is one baked in below: a package whose signature is missing, bad, by another key, or by an
# expired or revoked key is never installed, nor is one when no gpgv/gpg is there to check it.
# No key is ever fetched at boot. Then reads this VM's signed
# identity from its cloud's metadata service, registers it with the fleetpatch API, and registers
# and starts the agent with the activation the API returns (EC2: the agent only has to run).
#
# Served by the fleetpatch API at GET /v1/startup/{provider}; the API fills in the values below.
# Environment overrides (for local runs and simulated VMs; none is needed in a real cloud):
#   FLEETPATCH_API_URL          the API base URL (default: the URL baked in below)
#   FLEETPATCH_METADATA_URL     the metadata service base URL (default: the cloud's own)
#   FLEETPATCH_OS_RELEASE       the os-release file (default /etc/os-release)
#   FLEETPATCH_BIOS_UUID_PATH   vSphere: the BIOS UUID file (default /sys/class/dmi/id/product_uuid)
#   FLEETPATCH_HOSTNAME         the hostname to report (default: hostname)
#   FLEETPATCH_AGENT_URL        the SSM agent download location (default: the one baked in below)
#   FLEETPATCH_MAX_ATTEMPTS, FLEETPATCH_RETRY_BASE, FLEETPATCH_RETRY_CAP   retry policy (seconds)
#   FLEETPATCH_RETRY_DEADLINE   give up after this many seconds in all (default 3600)
# Every API call (challenge, registration, polling) is retried with backoff through an API
# restart (connection refused, 429, 5xx), within the attempts and the total deadline.
# Exit status: 0 enrolled; 1 local failure (unsupported OS, metadata unreachable, agent missing
# and not installable, a package whose signature does not verify, agent failed);
# 2 the API refused the registration (its reason is printed); 3 gave up after retries.
# Neither the activation code nor the enrollment id (it carries a secret) is ever printed.
set -euo pipefail
shopt -s inherit_errexit  # failures inside $(...) stop the script too (bash >= 4.4)

PROVIDER='@@PROVIDER@@'
API_URL="${FLEETPATCH_API_URL:-@@API_URL@@}"
AUDIENCE='@@AUDIENCE@@'
AGENT_URL="${FLEETPATCH_AGENT_URL:-@@AGENT_URL@@}"
# The agent packages' trust anchor (settings aws.agent_signing_*): a binary OpenPGP keyring
# (base64) and the primary key fingerprints a signature must come from. Not overridable.
AGENT_KEYRING='@@AGENT_KEYRING@@'
AGENT_FINGERPRINTS='@@AGENT_FINGERPRINTS@@'
OS_RELEASE="${FLEETPATCH_OS_RELEASE:-/etc/os-release}"
BIOS_UUID_PATH="${FLEETPATCH_BIOS_UUID_PATH:-/sys/class/dmi/id/product_uuid}"
MAX_ATTEMPTS="${FLEETPATCH_MAX_ATTEMPTS:-40}"
RETRY_BASE="${FLEETPATCH_RETRY_BASE:-2}"
RETRY_CAP="${FLEETPATCH_RETRY_CAP:-300}"
RETRY_DEADLINE="${FLEETPATCH_RETRY_DEADLINE:-3600}"
AGENT_SERVICE=amazon-ssm-agent
# An activation the agent cannot register with (used, expired or deleted) is answered by
# registering again: the running enrollment then issues a fresh one (bounded here and there).
MAX_FRESH_ACTIVATIONS="${FLEETPATCH_MAX_FRESH_ACTIVATIONS:-2}"
FRESH_ACTIVATIONS=0
REGISTER_FAILED=0

case "$PROVIDER" in
    gcp) DEFAULT_METADATA_URL='http://metadata.google.internal' ;;
    azure | aws) DEFAULT_METADATA_URL='http://169.254.169.254' ;;
    vmware) DEFAULT_METADATA_URL='' ;;
    *) echo "fleetpatch: unknown provider '$PROVIDER'" >&2; exit 1 ;;
esac
METADATA_URL="${FLEETPATCH_METADATA_URL:-$DEFAULT_METADATA_URL}"
API_URL="${API_URL%/}"
METADATA_URL="${METADATA_URL%/}"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 700 "$WORK"

log() { printf 'fleetpatch: %s\n' "$*" >&2; }
die() { local code=$1; shift; log "$*"; exit "$code"; }

# --- JSON (no jq or python on a fresh VM: only the flat shapes the API and IMDS answer) ---------

json_escape() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037'
}

# The first string value of "KEY" in the JSON on stdin, unescaped; empty when absent.
json_get() {
    local key=$1 raw
    raw=$(tr -d '\n\r' | sed -n -E 's/^[^"]*("([^"\\]|\\.)*"[^"]*)*"'"$key"'"[[:space:]]*:[[:space:]]*"(([^"\\]|\\.)*)".*$/\3/p' | head -n 1)
    raw=${raw//\\\//\/}
    raw=${raw//\\\"/\"}
    raw=${raw//\\n/ }
    printf '%s' "${raw//\\\\/\\}"
}

# The JSON object (without nested objects) under "KEY", or "null".
json_object() {
    tr -d '\n\r' | sed -n -E 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*(\{[^{}]*\}|null).*/\1/p' | head -n 1
}

urlencode() {
    local s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
            [A-Za-z0-9._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

# --- HTTP --------------------------------------------------------------------------------------

# http METHOD URL [BODY_FILE] [HEADER...]: sets HTTP_STATUS (000 on a network error), HTTP_BODY,
# HTTP_RETRY_AFTER, HTTP_LOCATION. Request bodies go through files, never the command line.
http() {
    local method=$1 url=$2 body=${3:-} args=()
    shift 3 || shift $#
    local header
    for header in "$@"; do args+=(-H "$header"); done
    if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "@$body"); fi
    HTTP_STATUS=$(curl -sS -X "$method" --connect-timeout 5 --max-time 60 -o "$WORK/body" \
        -D "$WORK/headers" -w '%{http_code}' "${args[@]}" "$url" 2>"$WORK/curl.err") || HTTP_STATUS=000
    HTTP_BODY=$(cat "$WORK/body" 2>/dev/null || true)
    HTTP_RETRY_AFTER=$(tr -d '\r' <"$WORK/headers" 2>/dev/null | sed -n -E 's/^[Rr]etry-[Aa]fter:[[:space:]]*([0-9]+)[[:space:]]*$/\1/p' | tail -n 1)
    HTTP_LOCATION=$(tr -d '\r' <"$WORK/headers" 2>/dev/null | sed -n -E 's/^[Ll]ocation:[[:space:]]*(.*)$/\1/p' | tail -n 1)
    rm -f "$WORK/body" "$WORK/headers"
}

# Seconds to wait before retry number $1 (1-based): Retry-After when the server gave one,
# else exponential backoff with jitter; never more than RETRY_CAP.
backoff() {
    local attempt=$1 wait
    if [ -n "${HTTP_RETRY_AFTER:-}" ]; then
        wait=$HTTP_RETRY_AFTER
    else
        wait=$(awk -v b="$RETRY_BASE" -v n="$attempt" -v r="$RANDOM" \
            'BEGIN { w = b * 2 ^ (n - 1); printf "%.2f", w * (0.5 + r / 65535) }')
    fi
    awk -v w="$wait" -v c="$RETRY_CAP" 'BEGIN { printf "%.2f", (w > c ? c : w) }'
}

# retry_pause ATTEMPT: sleep before the next attempt, or give up (exit 3) when that would pass
# the total deadline.
retry_pause() {
    local wait
    wait=$(backoff "$1")
    if awk -v used="$SECONDS" -v w="$wait" -v d="$RETRY_DEADLINE" 'BEGIN { exit !(used + w > d) }'; then
        die 3 "gave up after ${SECONDS}s (FLEETPATCH_RETRY_DEADLINE=${RETRY_DEADLINE}s)"
    fi
    sleep "$wait"
}

# metadata URL [HEADER...]: the body of a GET, retried a few times (the service may be starting).
metadata() {
    local url=$1 attempt
    shift
    for attempt in 1 2 3 4 5; do
        http GET "$url" "" "$@"
        if [ "$HTTP_STATUS" = 200 ]; then printf '%s' "$HTTP_BODY"; return 0; fi
        HTTP_RETRY_AFTER=''
        sleep "$(backoff "$attempt")"
    done
    die 1 "metadata service did not answer ${url%%\?*} (HTTP $HTTP_STATUS)"
}

# --- this VM -----------------------------------------------------------------------------------

os_release_value() {
    sed -n -E "s/^$1=[\"']?([^\"']*)[\"']?[[:space:]]*\$/\\1/p" "$OS_RELEASE" | head -n 1
}

detect_platform() {
    [ -r "$OS_RELEASE" ] || die 1 "cannot read $OS_RELEASE"
    local id version
    id=$(os_release_value ID | tr '[:upper:]' '[:lower:]')
    version=$(os_release_value VERSION_ID)
    case "$id" in
        ubuntu | debian | centos | rhel | windows) PLATFORM_OS=$id ;;
        ol) PLATFORM_OS=oracle ;;
        amzn) if [ "$version" = 2 ]; then PLATFORM_OS=amazon-linux-2; else PLATFORM_OS=amazon-linux; fi ;;
        *) die 1 "unsupported operating system '$id' (from $OS_RELEASE)" ;;
    esac
    PLATFORM_VERSION=$version
}

identity_gcp() {
    local token
    token=$(metadata "$METADATA_URL/computeMetadata/v1/instance/service-accounts/default/identity?audience=$(urlencode "$AUDIENCE")&format=full" 'Metadata-Flavor: Google')
    printf '{"token":"%s"}' "$(json_escape "$token")"
}

identity_azure() {
    local nonce attested resource_id attempt
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        http GET "$API_URL/v1/challenge" ""
        [ "$HTTP_STATUS" = 200 ] && break
        retryable "$HTTP_STATUS" || refused
        log "challenge: API answered ${HTTP_STATUS/#000/nothing}; retry $attempt of $MAX_ATTEMPTS"
        [ "$attempt" -lt "$MAX_ATTEMPTS" ] || die 3 "no challenge from the API after $MAX_ATTEMPTS attempts"
        retry_pause "$attempt"
    done
    nonce=$(printf '%s' "$HTTP_BODY" | json_get nonce)
    case "$nonce" in
        '' | *[!A-Za-z0-9]*) die 1 "the API gave no usable challenge nonce" ;;
    esac
    attested=$(metadata "$METADATA_URL/metadata/attested/document?api-version=2020-09-01&nonce=$nonce" 'Metadata: true')
    case "$attested" in
        '{'*'}') ;;
        *) die 1 "the attested document is not a JSON object" ;;
    esac
    resource_id=$(metadata "$METADATA_URL/metadata/instance/compute/resourceId?api-version=2021-02-01&format=text" 'Metadata: true')
    printf '{"attested":%s,"nonce":"%s","resource_id":"%s"}' "$attested" "$nonce" "$(json_escape "$resource_id")"
}

identity_aws() {
    local token rsa2048 attempt
    for attempt in 1 2 3 4 5; do
        http PUT "$METADATA_URL/latest/api/token" "" 'X-aws-ec2-metadata-token-ttl-seconds: 300'
        [ "$HTTP_STATUS" = 200 ] && break
        if ! retryable "$HTTP_STATUS" || [ "$attempt" -eq 5 ]; then
            die 1 "IMDSv2 token request failed (HTTP $HTTP_STATUS)"
        fi
        HTTP_RETRY_AFTER=''
        sleep "$(backoff "$attempt")"
    done
    token=$HTTP_BODY
    rsa2048=$(metadata "$METADATA_URL/latest/dynamic/instance-identity/rsa2048" "X-aws-ec2-metadata-token: $token")
    printf '{"rsa2048":"%s"}' "$(json_escape "$rsa2048")"
}

identity_vmware() {
    local token bios
    token=$(vmware-rpctool 'info-get guestinfo.fleetpatch.token' 2>/dev/null) ||
        die 1 "this VM holds no fleetpatch token (guestinfo.fleetpatch.token); ask your operator to issue tokens"
    [ -r "$BIOS_UUID_PATH" ] || die 1 "cannot read the BIOS UUID from $BIOS_UUID_PATH"
    bios=$(tr -d '[:space:]' <"$BIOS_UUID_PATH" | tr '[:upper:]' '[:lower:]')
    printf '{"token":"%s","bios_uuid":"%s"}' "$(json_escape "$token")" "$(json_escape "$bios")"
}

registration_body() {
    local identity host
    identity=$("identity_$PROVIDER")
    host=${FLEETPATCH_HOSTNAME:-$(hostname 2>/dev/null || cat /etc/hostname)}
    printf '{"provider":"%s","identity":%s,"hostname":"%s","platform":{"os":"%s","version":"%s"}}' \
        "$PROVIDER" "$identity" "$(json_escape "$host")" "$PLATFORM_OS" "$(json_escape "$PLATFORM_VERSION")" \
        >"$WORK/registration.json"
}

# --- the SSM agent -----------------------------------------------------------------------------

agent_arch() {
    case "$(uname -m)" in
        x86_64 | amd64) printf amd64 ;;
        aarch64 | arm64) printf arm64 ;;
        *) die 1 "the SSM agent is not installed and has no package for $(uname -m)" ;;
    esac
}

# download URL FILE [WHAT]: the body of a GET into FILE, retried through network errors, 429 and
# 5xx (within the attempts and the total deadline, like the API calls). With WHAT, a failure is a
# refusal to install the agent (WHAT names what is missing).
download() {
    local url=$1 file=$2 what=${3:-} attempt status=000
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        status=$(curl -sS -L --connect-timeout 5 --max-time 600 -o "$file" -w '%{http_code}' "$url" \
            2>"$WORK/curl.err") || status=000
        [ "$status" = 200 ] && return 0
        retryable "$status" || break
        log "download of ${url##*/}: ${status/#000/no answer}; retry $attempt of $MAX_ATTEMPTS"
        HTTP_RETRY_AFTER=''
        [ "$attempt" -lt "$MAX_ATTEMPTS" ] && retry_pause "$attempt"
    done
    [ -z "$what" ] || refuse_agent "no $what at $url (HTTP ${status/#000/no answer})"
    die 1 "could not download $url (HTTP ${status/#000/no answer})"
}

refuse_agent() { die 1 "refusing to install the SSM agent: $*"; }

# verify_signature PACKAGE SIG NAME: gpgv (else gpg, with a throwaway home and no default keyring)
# against the baked-in keyring only; the signature must be good, by a key that has neither expired
# nor been revoked (gpgv exits 0 for those too: its status lines say it), whose primary fingerprint
# is a pinned one. Sets SIGNER to that fingerprint. Refuses (exit 1) otherwise.
verify_signature() {
    local package=$1 sig=$2 name=$3 keyring="$WORK/trusted.gpg" status="$WORK/gpg.status" rc=0
    printf '%s' "$AGENT_KEYRING" | base64 -d >"$keyring" 2>/dev/null || refuse_agent "the baked-in signing key is not base64"
    if command -v gpgv >/dev/null 2>&1; then
        gpgv --status-fd 3 --keyring "$keyring" "$sig" "$package" 3>"$status" >"$WORK/gpg.out" 2>&1 || rc=$?
    elif command -v gpg >/dev/null 2>&1; then
        mkdir -m 700 "$WORK/gnupg"
        gpg --homedir "$WORK/gnupg" --batch --no-default-keyring --keyring "$keyring" --trust-model always \
            --status-fd 3 --verify "$sig" "$package" 3>"$status" >"$WORK/gpg.out" 2>&1 || rc=$?
    else
        refuse_agent "neither gpgv nor gpg is installed to verify $name's signature (install gpgv or gnupg)"
    fi
    SIGNER=$(awk '$2 == "VALIDSIG" { print $NF; exit }' "$status")
    if grep -q '^\[GNUPG:\] BADSIG ' "$status"; then
        refuse_agent "$name's signature is BAD: the package (or its .sig) was altered"
    elif grep -q '^\[GNUPG:\] NO_PUBKEY ' "$status"; then
        refuse_agent "$name is signed by key $(awk '$2 == "NO_PUBKEY" { print $3; exit }' "$status"), not by a trusted key ($AGENT_FINGERPRINTS)"
    elif grep -Eq '^\[GNUPG:\] (EXPKEYSIG|REVKEYSIG|EXPSIG) ' "$status"; then
        refuse_agent "$name is signed by key ${SIGNER:-?}, which has expired or been revoked; configure the signing key's current copy (aws.agent_signing_key_file)"
    elif [ "$rc" -ne 0 ] || [ -z "$SIGNER" ] || ! grep -q '^\[GNUPG:\] GOODSIG ' "$status"; then
        refuse_agent "$name's signature could not be verified ($(tr '\n' ' ' <"$WORK/gpg.out" | head -c 300))"
    fi
    case " $AGENT_FINGERPRINTS " in
        *" $SIGNER "*) ;;
        *) refuse_agent "$name is signed by key $SIGNER, which is not a pinned fingerprint ($AGENT_FINGERPRINTS)" ;;
    esac
}

# install_agent: the package for this OS family, its signature verified first.
install_agent() {
    local arch path file
    arch=$(agent_arch)
    case "$PLATFORM_OS" in
        ubuntu | debian) path="debian_$arch/amazon-ssm-agent.deb" ;;
        centos | rhel | oracle | amazon-linux | amazon-linux-2) path="linux_$arch/amazon-ssm-agent.rpm" ;;
        *) die 1 "the SSM agent is not installed; on $PLATFORM_OS the PowerShell startup script installs it" ;;
    esac
    file="$WORK/${path##*/}"
    log "the SSM agent is not installed: downloading $AGENT_URL/$path"
    download "$AGENT_URL/$path" "$file"
    download "$AGENT_URL/$path.sig" "$WORK/agent.sig" "signature"
    verify_signature "$file" "$WORK/agent.sig" "$path"
    case "$path" in
        *.deb) dpkg -i "$file" ;;
        *) if command -v yum >/dev/null 2>&1; then yum install -y "$file"; else rpm -U --replacepkgs "$file"; fi ;;
    esac >"$WORK/install.out" 2>&1 || {
        tail -n 20 "$WORK/install.out" >&2
        die 1 "installing the SSM agent package ${path##*/} failed"
    }
    command -v amazon-ssm-agent >/dev/null 2>&1 || die 1 "the SSM agent package installed no amazon-ssm-agent command"
    log "SSM agent installed from $path (signature by key $SIGNER verified)"
}

ensure_agent() {
    command -v amazon-ssm-agent >/dev/null 2>&1 || install_agent
}

# --- outcomes ----------------------------------------------------------------------------------

retryable() {
    case "$1" in
        000 | 429 | 5??) return 0 ;;
        *) return 1 ;;
    esac
}

refused() {
    local error reason
    error=$(printf '%s' "$HTTP_BODY" | json_get error)
    reason=$(printf '%s' "$HTTP_BODY" | json_get reason)
    die 2 "registration refused (HTTP $HTTP_STATUS ${error:-error}): ${reason:-no reason given}"
}

start_agent() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl enable "$AGENT_SERVICE" >/dev/null 2>&1 || true
        systemctl restart "$AGENT_SERVICE"
    else
        service "$AGENT_SERVICE" restart
    fi
}

enrolled() {
    local answer=$1 activation id code region
    log "enrolled: systems account $(printf '%s' "$answer" | json_get systems_account)," \
        "patch group $(printf '%s' "$answer" | json_get patch_group)"
    activation=$(printf '%s' "$answer" | json_object activation)
    if [ -z "$activation" ] || [ "$activation" = null ]; then
        log "no activation needed (EC2): making sure the SSM agent runs"
        start_agent || die 1 "could not start $AGENT_SERVICE"
        return 0
    fi
    id=$(printf '%s' "$activation" | json_get id)
    code=$(printf '%s' "$activation" | json_get code)
    region=$(printf '%s' "$activation" | json_get region)
    if [ -z "$id" ] || [ -z "$code" ] || [ -z "$region" ]; then
        die 1 "the API's activation is incomplete"
    fi
    systemctl stop "$AGENT_SERVICE" >/dev/null 2>&1 || true
    amazon-ssm-agent -register -code "$code" -id "$id" -region "$region" -y >"$WORK/agent.out" 2>&1 || {
        local out
        out=$(cat "$WORK/agent.out")
        printf '%s\n' "${out//"$code"/<redacted>}" >&2
        log "amazon-ssm-agent -register failed for activation $id"
        REGISTER_FAILED=1
        return 0
    }
    log "SSM agent registered with activation $id in $region"
    start_agent || die 1 "could not start $AGENT_SERVICE"
    log "SSM agent started"
}

# Poll GET Location after a 202 until the enrollment answers 200 (or is refused).
await_enrollment() {
    local location=$1 attempt
    case "$location" in
        http://* | https://*) ;;
        /*) location="$API_URL$location" ;;
        *) die 1 "the API answered 202 without a usable Location" ;;
    esac
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        retry_pause "$attempt"
        http GET "$location" ""
        case "$HTTP_STATUS" in
            200 | 201) enrolled "$HTTP_BODY"; return 0 ;;
            202) log "enrollment $(printf '%s' "$HTTP_BODY" | json_get state); waiting" ;;
            *) retryable "$HTTP_STATUS" || refused; log "API answered $HTTP_STATUS; retrying" ;;
        esac
    done
    die 3 "the enrollment did not finish after $MAX_ATTEMPTS polls"
}

# After a failed agent registration: register again for a fresh activation, a bounded number of times.
fresh_activation() {
    FRESH_ACTIVATIONS=$((FRESH_ACTIVATIONS + 1))
    if [ "$FRESH_ACTIVATIONS" -gt "$MAX_FRESH_ACTIVATIONS" ]; then
        die 1 "amazon-ssm-agent -register failed with $FRESH_ACTIVATIONS activations; giving up"
    fi
    log "registering again for a fresh activation ($FRESH_ACTIVATIONS of $MAX_FRESH_ACTIVATIONS)"
    REGISTER_FAILED=0
}

main() {
    command -v curl >/dev/null 2>&1 || die 1 "curl is required"
    detect_platform
    ensure_agent
    log "registering this $PLATFORM_OS $PLATFORM_VERSION VM ($PROVIDER) with $API_URL"
    local attempt
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        registration_body
        http POST "$API_URL/v1/registrations" "$WORK/registration.json"
        case "$HTTP_STATUS" in
            201 | 200) enrolled "$HTTP_BODY" ;;
            202) HTTP_RETRY_AFTER=''; await_enrollment "$HTTP_LOCATION" ;;
        esac
        case "$HTTP_STATUS" in
            201 | 200 | 202)
                [ "$REGISTER_FAILED" = 1 ] || return 0
                fresh_activation
                continue ;;
        esac
        if [ "$HTTP_STATUS" = 409 ] && [ "$(printf '%s' "$HTTP_BODY" | json_get error)" = EnrollmentRunning ]; then
            # An earlier attempt (whose answer was lost) is still enrolling this VM; it ends
            # enrolled or times out, after which this VM's next attempt starts afresh.
            log "an earlier attempt is still enrolling this VM; retry $attempt of $MAX_ATTEMPTS"
            [ "$attempt" -lt "$MAX_ATTEMPTS" ] && retry_pause "$attempt"
            continue
        fi
        retryable "$HTTP_STATUS" || refused
        if [ "$HTTP_STATUS" = 000 ]; then
            log "API unreachable ($(head -c 200 "$WORK/curl.err")); retry $attempt of $MAX_ATTEMPTS"
        else
            log "API answered $HTTP_STATUS; retry $attempt of $MAX_ATTEMPTS"
        fi
        [ "$attempt" -lt "$MAX_ATTEMPTS" ] && retry_pause "$attempt"
    done
    die 3 "gave up after $MAX_ATTEMPTS attempts"
}

main "$@"
