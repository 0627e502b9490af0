#!/usr/bin/env bash
# Operator benchmark: time from `kubectl apply` of a TicketEvent to
# `condition=Ready`, N times (median, min, max), and the operator's resident
# memory afterwards. Needs the test stack running (scripts/stack/up.sh).
# Baseline in the same run: the same apply → wait on a plain ConfigMap
# (`kubectl wait --for=create`), i.e. what the apiserver round trips alone cost.
# Then M events applied at once (one `kubectl apply`): time until every one
# is Ready, against M ConfigMaps applied at once until every one exists.
# Usage: scripts/bench-operator-ready.sh [N] [M]   (default 10 100)
set -euo pipefail
cd "$(dirname "$0")/.."
source "${TT_RUN:-$HOME/.cache/twinkle-ticket/run}/env.sh"
N=${1:-10}
M=${2:-100}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TT_CACHE/target}"
cargo build -q --release -p twinkle-operator --bin twinkle-operator
OP="$CARGO_TARGET_DIR/release/twinkle-operator"
k() { "$TT_KUBECTL" "$@"; }
ns="bench-ready-$$"
k create namespace "$ns" >/dev/null
k apply --server-side --force-conflicts -f crds/ticketevent.yaml >/dev/null
k wait --for=condition=Established crd/ticketevents.ticket.twinkle.dev --timeout=60s >/dev/null
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$OP" run --workload-image twinkle:bench --watch-namespace "$ns" --lease-namespace "$ns" \
  --metrics-listen "127.0.0.1:$metrics_port" >"/tmp/$ns.log" 2>&1 &
op=$!
trap 'kill $op 2>/dev/null; k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
sleep 2

manifest() { # name
  cat <<YAML
apiVersion: ticket.twinkle.dev/v1alpha1
kind: TicketEvent
metadata: {name: $1, namespace: $ns}
spec:
  title: "bench $1"
  opensAt: "$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)"
  closesAt: "$(date -u -d '+2 hour' +%Y-%m-%dT%H:%M:%SZ)"
  slots: [{id: s1, label: "10:00", capacity: 100}]
  perCustomerLimit: 1
  traffic: {expectedPeakRps: 20000, headroomPercent: 30, minReplicas: 2, maxReplicas: 20, preScaleLead: 15m}
  queue: {admissionPerSecond: 200, maxActiveSessions: 2000, sessionTtl: 10m}
  kafka: {bootstrapServers: "$TT_KAFKA_BOOTSTRAP", partitions: auto, replicationFactor: 1, retention: 1h, deletionPolicy: Delete}
  redis: {secretRef: {name: redis, key: url}}
YAML
}
# Reconciles so far and the seconds they took (the operator's own metrics).
reconciles() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '
    /^twinkle_operator_reconciles_total /{n=$2}
    /^twinkle_operator_reconcile_duration_seconds_sum /{s=$2}
    END {printf "%d %.3f\n", n, s}'
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
stats() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "median %d ms, min %d ms, max %d ms (n=%d)\n", m, a[1], a[NR], NR}'; }

ready=() base=()
for i in $(seq 1 "$N"); do
  t=$(date +%s%N)
  k create configmap "base-$i" -n "$ns" --from-literal=a=b >/dev/null
  k wait --for=create "configmap/base-$i" -n "$ns" --timeout=30s >/dev/null
  base+=("$(ms "$t")")
  t=$(date +%s%N)
  manifest "ev$i" | k apply -f - >/dev/null
  k wait --for=condition=Ready "ticketevent/ev$i" -n "$ns" --timeout=120s >/dev/null
  ready+=("$(ms "$t")")
  printf '  event %2d: Ready after %5d ms (baseline %4d ms)\n' "$i" "${ready[-1]}" "${base[-1]}" >&2
done
echo "apply → Ready:            $(printf '%s\n' "${ready[@]}" | stats)"
echo "baseline apply → exists:  $(printf '%s\n' "${base[@]}" | stats)"
echo "operator RSS after $N events: $(awk '/VmRSS/{print $2 " kB"}' /proc/$op/status), peak $(awk '/VmHWM/{print $2 " kB"}' /proc/$op/status)"

# M at once.
t=$(date +%s%N)
for i in $(seq 1 "$M"); do echo "---"; printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: burst-base-%d, namespace: %s}\ndata: {a: b}\n' "$i" "$ns"; done | k apply -f - >/dev/null
# One `kubectl wait` for all of them: a process per object would be timed too.
k wait --for=create $(printf 'configmap/burst-base-%d ' $(seq 1 "$M")) -n "$ns" --timeout=60s >/dev/null
base_all=$(ms "$t")
read -r rec0 sec0 < <(reconciles)
t=$(date +%s%N)
for i in $(seq 1 "$M"); do echo "---"; manifest "burst$i"; done | k apply -f - >/dev/null
applied=$(ms "$t")
k wait --for=condition=Ready $(printf 'ticketevent/burst%d ' $(seq 1 "$M")) -n "$ns" --timeout=600s >/dev/null
all_ready=$(ms "$t")
read -r rec1 sec1 < <(reconciles)
echo "$M events applied at once: all Ready after $all_ready ms (apply itself $applied ms; $(( all_ready / M )) ms per event)"
echo "baseline: $M ConfigMaps applied at once, all exist after $base_all ms"
awk -v n=$((rec1 - rec0)) -v s0="$sec0" -v s1="$sec1" -v m="$M" 'BEGIN { s = s1 - s0
  printf "reconciles until all Ready: %d (%.1f per event), %.1f s in reconcile, mean %.0f ms\n", n, n / m, s, (n ? 1000 * s / n : 0) }'
echo "operator RSS with $((N + M)) events: $(awk '/VmRSS/{print $2 " kB"}' /proc/$op/status), peak $(awk '/VmHWM/{print $2 " kB"}' /proc/$op/status)"
# Delete the events (deletionPolicy Delete removes their topics) before the namespace goes.
k delete ticketevents --all -n "$ns" --timeout=120s >/dev/null
