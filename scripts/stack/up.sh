#!/usr/bin/env bash
# Starts every server of the test stack on its own loopback ports, waits for
# each to be healthy, prints their versions and writes $TT_RUN/env.sh with
# their addresses. Fresh data directories each time.
source "$(dirname "$0")/servers.sh"

"$(dirname "$0")/down.sh" >/dev/null 2>&1 || true
rm -rf "$TT_RUN" && mkdir -p "$TT_RUN"
for s in "${SERVERS[@]}"; do
  log "starting $s"
  start_server "$s" 180
done

PW_MODULES="$TT_CACHE/playwright-$PLAYWRIGHT_VERSION/node_modules"
cat >"$TT_RUN/env.sh" <<ENV
# Written by scripts/stack/up.sh: where the test servers listen.
export TT_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export TT_KAFKA_DR_BOOTSTRAP=127.0.0.1:$KAFKA_DR_PORT
export TT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export KUBECONFIG=$PKI/kubeconfig
export TT_KUBECTL=$K8S_BIN/kubectl
export TT_ROUTE53_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export TT_CHROMIUM=$(command -v chromium)
export TT_PLAYWRIGHT_MODULES=$PW_MODULES
export TT_STACK_CTL=$(cd "$(dirname "$0")" && pwd)/ctl.sh
export TT_HELM=$TT_CACHE/gotools/helm-$HELM_VERSION
export TT_KUBECONFORM=$TT_CACHE/gotools/kubeconform-$KUBECONFORM_VERSION
export TT_CHECKOV=$TT_CACHE/venv-checkov-$CHECKOV_VERSION/bin/checkov
export TT_CACHE=$TT_CACHE
export TT_RUN=$TT_RUN
export TT_PORT_BASE=$TT_PORT_BASE
ENV

log "test stack is up:"
for s in "${SERVERS[@]}"; do log "  $("version_$s" 2>/dev/null || echo "$s (version unknown)")"; done
log "  Chromium $(chromium --version 2>/dev/null | awk '{print $2}'), playwright-core $PLAYWRIGHT_VERSION"
log "  source $TT_RUN/env.sh to use it"
