# Versions of every tool the local stack installs. Caches are keyed by these,
# so bumping one here rebuilds only that tool.
# shellcheck shell=bash
NODE_VERSION="${EVENTLOOM_NODE_VERSION:-24.21.0}"
KAFKA_VERSION="${EVENTLOOM_KAFKA_VERSION:-4.3.1}"
# 4.4.0 is on Maven Central as kafka_2.13 only (kafka-tools 4.4.0 is missing), so 4.3.1 is the newest complete 4.x release.
LOG4J_VERSION="2.25.2"
KUBERNETES_VERSION="${EVENTLOOM_KUBERNETES_VERSION:-1.35.4}"
ETCD_VERSION="${EVENTLOOM_ETCD_VERSION:-3.6.16}"
HELM_VERSION="${EVENTLOOM_HELM_VERSION:-3.22.0}"
# Jaeger: the v1.x module tags also carry cmd/jaeger (the v2 binary); v2.x tags cannot be
# installed from the proxy because the module path has no /v2.
JAEGER_VERSION="${EVENTLOOM_JAEGER_VERSION:-1.76.0}"
