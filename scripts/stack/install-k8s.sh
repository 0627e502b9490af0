#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the
# k8s.io/kubernetes Go module. Kubernetes publishes no server binaries to any
# registry we can reach, but the module is on the Go proxy; its go.mod replaces
# the k8s.io/* staging modules with local paths, so our tiny module repeats
# those replaces pointing at the published v0.<minor>.<patch> versions.
source "$(dirname "$0")/common.sh"

out="$TT_CACHE/k8s-$K8S_VERSION"
if [[ -x "$out/bin/kube-apiserver" && -x "$out/bin/etcd" && -x "$out/bin/kubectl" && -x "$out/bin/kube-controller-manager" ]]; then
  exit 0
fi
log "building Kubernetes $K8S_VERSION server binaries (first run only; ~10 min)"
mod="$out/src"
rm -rf "$mod" && mkdir -p "$mod/etcd" "$out/bin"
staging_version="v0.${K8S_VERSION#v1.}"

gomod_file=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
{
  echo "module twinkle-ticket/k8s-build"
  echo
  grep -E '^go [0-9]' "$gomod_file"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  # Every "k8s.io/x => ./staging/src/k8s.io/x" becomes "k8s.io/x => k8s.io/x v0.N.M".
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/' "$gomod_file" \
    | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
} >"$mod/go.mod"

# etcd's own main module carries replace lines (so `go install` refuses it);
# the server module's etcdmain package is the same entry point.
cat >"$mod/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
cd "$mod"
go mod tidy -e >"$out/tidy.log" 2>&1 || { log_tail "$out/tidy.log"; die "go mod tidy for Kubernetes $K8S_VERSION"; }
for cmd in kube-apiserver kube-controller-manager kubectl; do
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
    -o "$out/bin/$cmd" "k8s.io/kubernetes/cmd/$cmd" || die "go build $cmd"
done
go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" ./etcd || die "go build etcd"
log "built: $("$out/bin/kube-apiserver" --version) / etcd $("$out/bin/etcd" --version | head -1)"
