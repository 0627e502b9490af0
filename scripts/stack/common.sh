# Shared settings for the local test stack. Sourced, never executed.
# Everything downloaded or built lives under one cache directory keyed by
# version, so a second run on the same machine skips the slow steps.
set -euo pipefail

TT_CACHE="${TT_CACHE:-$HOME/.cache/twinkle-ticket}"
TT_RUN="${TT_RUN:-$TT_CACHE/run}"
mkdir -p "$TT_CACHE" "$TT_RUN"

# Pinned versions (bump here; caches are keyed by them).
# Kafka 4.4.0 is listed on Maven Central but its kafka-tools-api jar is missing (404).
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-1.65.1}"
HELM_VERSION="${HELM_VERSION:-v4.3.1}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"

# Loopback ports of our own (override TT_PORT_BASE to run two stacks at once).
TT_PORT_BASE="${TT_PORT_BASE:-39000}"
KAFKA_PORT=$((TT_PORT_BASE + 92))
KAFKA_CONTROLLER_PORT=$((TT_PORT_BASE + 93))
# Singapore's Kafka (the DR region's cluster, MirrorMaker 2's target).
KAFKA_DR_PORT=$((TT_PORT_BASE + 94))
KAFKA_DR_CONTROLLER_PORT=$((TT_PORT_BASE + 95))
REDIS_PORT=$((TT_PORT_BASE + 79))
ETCD_PORT=$((TT_PORT_BASE + 23))
ETCD_PEER_PORT=$((TT_PORT_BASE + 24))
APISERVER_PORT=$((TT_PORT_BASE + 43))
MOTO_PORT=$((TT_PORT_BASE + 50))

export GOMODCACHE="$TT_CACHE/go/mod"
export GOCACHE="$TT_CACHE/go/build"
export GOFLAGS="-buildvcs=false"

log() { printf '\033[1;34m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[stack] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

# Print the tail of a log file loudly (used when a server does not come up).
log_tail() {
  local file=$1
  printf '\033[1;31m----- last 40 lines of %s -----\033[0m\n' "$file" >&2
  tail -n 40 "$file" >&2 || true
  printf '\033[1;31m-----\033[0m\n' >&2
}

# Wait until a command succeeds, or fail with the log tail.
wait_for() {
  local what=$1 seconds=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log_tail "$logfile"
      die "$what did not become healthy within ${seconds}s"
    fi
    sleep 0.5
  done
}
