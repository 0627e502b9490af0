#!/usr/bin/env bash
# Everything that is not a server binary: helm and kubeconform (Go module
# proxy), moto and checkov (PyPI, one venv each: their pins conflict), and
# playwright-core (npm; it drives Debian's chromium, never downloads a browser).
source "$(dirname "$0")/common.sh"

gobin="$TT_CACHE/gotools"
mkdir -p "$gobin"
go_tool() { # name version module-path
  local name=$1 version=$2 pkg=$3 dest="$gobin/$1-$2"
  [[ -x "$dest" ]] && return 0
  log "go install $pkg@$version"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "$pkg@$version" >"$TT_CACHE/$name.log" 2>&1 \
    || { log_tail "$TT_CACHE/$name.log"; die "go install $pkg@$version"; }
  mv "$tmp/$name" "$dest" && rm -rf "$tmp"
}
go_tool helm "$HELM_VERSION" "helm.sh/helm/v${HELM_VERSION:1:1}/cmd/helm"
go_tool kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform

venv() { # dir spec...
  local dir=$1; shift
  [[ -f "$dir/.complete" ]] && return 0
  log "pip install $* (venv $dir)"
  rm -rf "$dir" && python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@" >"$dir.log" 2>&1 \
    || { log_tail "$dir.log"; die "pip install $*"; }
  touch "$dir/.complete"
}
venv "$TT_CACHE/venv-moto-$MOTO_VERSION" "moto[server]==$MOTO_VERSION"
venv "$TT_CACHE/venv-checkov-$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"

pw="$TT_CACHE/playwright-$PLAYWRIGHT_VERSION"
if [[ ! -f "$pw/.complete" ]]; then
  log "npm install playwright-core@$PLAYWRIGHT_VERSION"
  rm -rf "$pw" && mkdir -p "$pw"
  (cd "$pw" && echo '{"private":true}' >package.json \
    && npm install --silent --no-audit --no-fund "playwright-core@$PLAYWRIGHT_VERSION" >"$pw.log" 2>&1) \
    || { log_tail "$pw.log"; die "npm install playwright-core"; }
  touch "$pw/.complete"
fi
