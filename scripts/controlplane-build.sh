#!/usr/bin/env bash
# Builds the test cluster's control plane from the Go module proxy, pinned by
# tests/controlplane/go/k8s-1.37/go.mod or k8s-1.34/go.mod (see pin.sh there): kube-apiserver,
# kube-controller-manager, kubectl and etcd of the versions that release pins, and this
# project's kubelet-api. Binaries are cached in target/controlplane/<version>/bin and only
# what is missing is built. Prints that bin directory.
#
#   bash scripts/controlplane-build.sh            # KFTRAY_K8S_VERSION, default 1.37
#   bash scripts/controlplane-build.sh 1.34
set -euo pipefail
cd "$(dirname "$0")/.."
minor=${1:-${KFTRAY_K8S_VERSION:-1.37}}
minor=${minor#v}
minor=$(echo "$minor" | cut -d. -f1,2)
module=tests/controlplane/go/k8s-$minor
if [ ! -f "$module/go.mod" ]; then
    echo "controlplane-build: Kubernetes $minor is not pinned here (1.37 or 1.34)" >&2
    exit 2
fi
version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$module/go.mod")
bin="$PWD/target/controlplane/$version/bin"
tools=(kube-apiserver kube-controller-manager kubectl etcd kubelet-api)
missing=()
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || missing+=("$t"); done
# kubelet-api is this project's code: rebuilt whenever a source of it is newer.
if [ -x "$bin/kubelet-api" ] &&
    [ -n "$(find tests/controlplane/go/kubeletapi "$module/kubelet-api" "$module/go.mod" -newer "$bin/kubelet-api" -print -quit)" ]; then
    missing+=(kubelet-api)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    echo "$bin"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "controlplane-build: go is not installed (Go 1.26 builds Kubernetes $version)" >&2
    exit 1
fi
IFS=. read -r major minor_n _ <<<"${version#v}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_n"
    stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
mkdir -p "$bin"
# A full disk otherwise shows as a linker's "mapping output file failed" far from its cause.
free_mib=$(df -Pm "$bin" | awk 'NR == 2 { print $4 }')
if [ "$free_mib" -lt 3072 ]; then
    echo "controlplane-build: only $free_mib MiB free where the binaries go ($bin); linking" \
        "them needs about 1 GiB and a cold Go build about 5 GiB more (in $(go env GOCACHE))" >&2
    exit 1
fi
echo "controlplane-build: building ${missing[*]} of Kubernetes $version (a cold build takes a while)" >&2
start=$(date +%s)
cd "$module"
args=(-trimpath -ldflags="-s -w$stamp")
pkgs=()
for t in "${missing[@]}"; do
    case "$t" in
    etcd) pkgs+=(go.etcd.io/etcd/server/v3) ;;
    kubelet-api) pkgs+=(./kubelet-api) ;;
    *) pkgs+=("k8s.io/kubernetes/cmd/$t") ;;
    esac
done
# One go build for all: the packages they share compile once. Building into a scratch
# directory first keeps a half-written binary out of the cache.
scratch=$(mktemp -d "$bin/../build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
go build "${args[@]}" -o "$scratch/" "${pkgs[@]}"
[ -e "$scratch/v3" ] && mv "$scratch/v3" "$scratch/etcd"
[ -e "$scratch/server" ] && mv "$scratch/server" "$scratch/etcd"
for t in "${missing[@]}"; do mv "$scratch/$t" "$bin/$t"; done
echo "controlplane-build: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
