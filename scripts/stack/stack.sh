#!/usr/bin/env bash
# The local stack every Eventloom test and demo runs against: a real Apache Kafka
# broker (KRaft), a real etcd and kube-apiserver, kubectl and helm.
#
#   stack.sh up       install what is missing (cached) and start everything; idempotent
#                     (--with-jaeger also builds and starts Jaeger, for demos)
#   stack.sh down     stop everything and delete the running state
#   stack.sh status   say what runs; exit 0 when all is ready, 3 otherwise
#   stack.sh env      print `export` lines: eval "$(npm run -s stack -- env)"
set -euo pipefail
# shellcheck source=install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"

KAFKA_DIR="$STATE_DIR/kafka"
ETCD_DIR="$STATE_DIR/etcd"
APISERVER_DIR="$STATE_DIR/apiserver"
JAEGER_DIR="$STATE_DIR/jaeger"
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
READY_TIMEOUT="${EVENTLOOM_STACK_READY_TIMEOUT:-120}"

# --- Kafka -------------------------------------------------------------------

# Sends a Metadata v4 request on the raw Kafka protocol and checks that the
# answer names at least one broker: "port open" is not "broker serving".
kafka_answers_metadata() {
  local reply
  reply="$(
    exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT" || exit 1
    # size=20 | api_key=3 (Metadata) | version=4 | correlation=1 | client "stack" | topics=null | no auto-create
    printf '\x00\x00\x00\x14\x00\x03\x00\x04\x00\x00\x00\x01\x00\x05stack\xff\xff\xff\xff\x00' >&3
    timeout 3 head -c 16 <&3 | od -An -tx1 | tr -d ' \n'
  )" || return 1
  # bytes 4..8 correlation id 1, bytes 12..16 broker count >= 1
  [[ "${reply:8:8}" == "00000001" && $((16#${reply:24:8})) -ge 1 ]]
}

kafka_up() {
  if pid_alive "$KAFKA_DIR/pid"; then kafka_answers_metadata 2>/dev/null && return 0; fi
  local step="start kafka" logf="$KAFKA_DIR/kafka.log"
  require_port_free "$step" "$KAFKA_PORT" EVENTLOOM_KAFKA_PORT
  require_port_free "$step" "$KAFKA_CONTROLLER_PORT" EVENTLOOM_KAFKA_CONTROLLER_PORT
  rm -rf "$KAFKA_DIR" && mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.segment.bytes=16777216
PROPS
  cat >"$KAFKA_DIR/log4j2.properties" <<'PROPS'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
PROPS
  local cluster_id
  # A URL-safe base64 UUID, as Kafka's own random-uuid makes it: never starting with "-", which the
  # StorageTool's argument parser would read as an option (1 start in 64 failed to format).
  cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  local -a jvm=(java -Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties" -cp "$KAFKA_HOME/libs/*")
  "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >"$logf" 2>&1 \
    || die "format kafka storage" "StorageTool format failed" "$logf"
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  setsid nohup "${jvm[@]}" kafka.Kafka "$KAFKA_DIR/server.properties" >>"$logf" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_DIR/pid"
}

kafka_wait() {
  local logf="$KAFKA_DIR/kafka.log" deadline=$((SECONDS + READY_TIMEOUT))
  until kafka_answers_metadata 2>/dev/null; do
    pid_alive "$KAFKA_DIR/pid" || die "start kafka" "the broker exited" "$logf"
    ((SECONDS < deadline)) || die "start kafka" "no metadata answer after ${READY_TIMEOUT}s" "$logf"
    sleep 0.5
  done
}

# --- etcd --------------------------------------------------------------------

etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

etcd_up() {
  if pid_alive "$ETCD_DIR/pid"; then etcd_healthy && return 0; fi
  local step="start etcd" logf="$ETCD_DIR/etcd.log"
  require_port_free "$step" "$ETCD_PORT" EVENTLOOM_ETCD_PORT
  require_port_free "$step" "$ETCD_PEER_PORT" EVENTLOOM_ETCD_PEER_PORT
  rm -rf "$ETCD_DIR" && mkdir -p "$ETCD_DIR"
  log "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  setsid nohup "$ETCD_HOME/bin/etcd" --name stack --data-dir "$ETCD_DIR/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "stack=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn \
    >"$logf" 2>&1 </dev/null 9>&- &
  echo $! >"$ETCD_DIR/pid"
  wait_for "$step" "$READY_TIMEOUT" "$logf" etcd_healthy
}

# --- kube-apiserver ------------------------------------------------------------

apiserver_token() { cat "$APISERVER_DIR/admin.token"; }

apiserver_ready() {
  [[ -f "$APISERVER_DIR/admin.token" ]] || return 1
  [[ "$(curl -s --max-time 2 --cacert "$APISERVER_DIR/ca.crt" -H "Authorization: Bearer $(apiserver_token)" \
    "https://127.0.0.1:$APISERVER_PORT/readyz")" == "ok" ]]
}

# A CA, a serving certificate for 127.0.0.1/localhost, a service-account key
# pair and an admin bearer token in group system:masters (as envtest does).
apiserver_credentials() {
  local d="$APISERVER_DIR" logf="$APISERVER_DIR/certs.log"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=eventloom-stack-ca" \
      -keyout "$d/ca.key" -out "$d/ca.crt"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$d/apiserver.key" -out "$d/apiserver.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 365 \
      -extfile "$d/ext.cnf" -out "$d/apiserver.crt"
    openssl genrsa -out "$d/sa.key" 2048
    openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub"
  } >"$logf" 2>&1 || die "apiserver credentials" "openssl failed" "$logf"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/admin.token"
  printf '%s,eventloom-admin,eventloom-admin-uid,"system:masters"\n' "$(apiserver_token)" >"$d/tokens.csv"
  chmod 600 "$d"/*.key "$d/admin.token" "$d/tokens.csv"
}

apiserver_up() {
  if pid_alive "$APISERVER_DIR/pid"; then apiserver_ready && return 0; fi
  local step="start kube-apiserver" logf="$APISERVER_DIR/apiserver.log"
  require_port_free "$step" "$APISERVER_PORT" EVENTLOOM_APISERVER_PORT
  rm -rf "$APISERVER_DIR" && mkdir -p "$APISERVER_DIR"
  apiserver_credentials
  log "starting kube-apiserver v$KUBERNETES_VERSION on https://127.0.0.1:$APISERVER_PORT"
  setsid nohup "$K8S_HOME/bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --etcd-prefix /eventloom-stack \
    --secure-port "$APISERVER_PORT" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --cert-dir "$APISERVER_DIR" --tls-cert-file "$APISERVER_DIR/apiserver.crt" --tls-private-key-file "$APISERVER_DIR/apiserver.key" \
    --client-ca-file "$APISERVER_DIR/ca.crt" --token-auth-file "$APISERVER_DIR/tokens.csv" \
    --authorization-mode RBAC --allow-privileged=true --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$APISERVER_DIR/sa.pub" \
    --service-account-signing-key-file "$APISERVER_DIR/sa.key" \
    --enable-priority-and-fairness=false --profiling=false --v=1 \
    >"$logf" 2>&1 </dev/null 9>&- &
  echo $! >"$APISERVER_DIR/pid"
  write_kubeconfig
}

apiserver_wait() {
  local logf="$APISERVER_DIR/apiserver.log" deadline=$((SECONDS + READY_TIMEOUT))
  until apiserver_ready; do
    pid_alive "$APISERVER_DIR/pid" || die "start kube-apiserver" "kube-apiserver exited" "$logf"
    ((SECONDS < deadline)) || die "start kube-apiserver" "/readyz not ok after ${READY_TIMEOUT}s" "$logf"
    sleep 0.5
  done
}

write_kubeconfig() {
  local tmp="$KUBECONFIG_PATH.tmp"
  cat >"$tmp" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: eventloom-stack
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$APISERVER_DIR/ca.crt")
users:
- name: eventloom-admin
  user:
    token: $(apiserver_token)
contexts:
- name: eventloom-stack
  context:
    cluster: eventloom-stack
    user: eventloom-admin
    namespace: default
current-context: eventloom-stack
KCFG
  chmod 600 "$tmp" && mv "$tmp" "$KUBECONFIG_PATH"
}


# --- Jaeger (optional) -----------------------------------------------------------

jaeger_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$JAEGER_HEALTH_PORT/status" >/dev/null; }

jaeger_up() {
  if pid_alive "$JAEGER_DIR/pid"; then jaeger_healthy && return 0; fi
  local step="start jaeger" logf="$JAEGER_DIR/jaeger.log"
  for p in "$JAEGER_UI_PORT:EVENTLOOM_JAEGER_UI_PORT" "$JAEGER_OTLP_HTTP_PORT:EVENTLOOM_JAEGER_OTLP_HTTP_PORT" \
    "$JAEGER_OTLP_GRPC_PORT:EVENTLOOM_JAEGER_OTLP_GRPC_PORT" "$JAEGER_HEALTH_PORT:EVENTLOOM_JAEGER_HEALTH_PORT"; do
    require_port_free "$step" "${p%%:*}" "${p#*:}"
  done
  rm -rf "$JAEGER_DIR" && mkdir -p "$JAEGER_DIR"
  # Jaeger's all-in-one configuration, on loopback and on the stack's ports, in memory.
  cat >"$JAEGER_DIR/config.yaml" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$JAEGER_UI_PORT
    grpc:
      endpoint: 127.0.0.1:$((JAEGER_UI_PORT + 1))
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$JAEGER_HEALTH_PORT
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$JAEGER_OTLP_GRPC_PORT
      http:
        endpoint: 127.0.0.1:$JAEGER_OTLP_HTTP_PORT
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
  log "starting jaeger $JAEGER_VERSION: UI http://127.0.0.1:$JAEGER_UI_PORT, OTLP http://127.0.0.1:$JAEGER_OTLP_HTTP_PORT"
  setsid nohup "$JAEGER_HOME/bin/jaeger" --config "$JAEGER_DIR/config.yaml" >"$logf" 2>&1 </dev/null 9>&- &
  echo $! >"$JAEGER_DIR/pid"
  wait_for "$step" "$READY_TIMEOUT" "$logf" jaeger_healthy
}

# --- commands --------------------------------------------------------------------

cmd_up() {
  need java "run Apache Kafka"; need curl "probe etcd and the API server"; need openssl "make the API server's certificates"
  local started=$SECONDS
  mkdir -p "$STATE_DIR"
  # Fetch Kafka while Go builds; the Go builds run one after another (2 cores).
  install_kafka &
  local kafka_pid=$!
  install_etcd
  install_kubernetes
  install_helm
  wait "$kafka_pid" || die "install kafka" "see the messages above"
  kafka_up
  etcd_up
  apiserver_up
  kafka_wait
  apiserver_wait
  if [[ "$WITH_JAEGER" == 1 ]]; then
    install_jaeger
    jaeger_up
  fi
  log "ready in $((SECONDS - started))s: kafka 127.0.0.1:$KAFKA_PORT, kube-apiserver https://127.0.0.1:$APISERVER_PORT"
  log "use it from a shell with: eval \"\$(npm run -s stack -- env)\""
}

stop_pidfile() {
  local name="$1" pidfile="$2"
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 20s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

cmd_down() {
  stop_pidfile jaeger "$JAEGER_DIR/pid"
  stop_pidfile kube-apiserver "$APISERVER_DIR/pid"
  stop_pidfile etcd "$ETCD_DIR/pid"
  stop_pidfile kafka "$KAFKA_DIR/pid"
  rm -rf "$STATE_DIR"
  log "stopped; removed $STATE_DIR"
}

cmd_status() {
  local ok=0
  report() { printf '%-15s %s\n' "$1" "$2"; }
  if kafka_answers_metadata 2>/dev/null; then report kafka "ready 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_DIR/pid" 2>/dev/null || echo ?))"; else report kafka "not running"; ok=3; fi
  if etcd_healthy; then report etcd "ready 127.0.0.1:$ETCD_PORT"; else report etcd "not running"; ok=3; fi
  if apiserver_ready 2>/dev/null; then report kube-apiserver "ready https://127.0.0.1:$APISERVER_PORT"; else report kube-apiserver "not running"; ok=3; fi
  if jaeger_healthy; then report jaeger "ready http://127.0.0.1:$JAEGER_UI_PORT (OTLP http://127.0.0.1:$JAEGER_OTLP_HTTP_PORT)"; else report jaeger "not running (optional: up --with-jaeger)"; fi
  report kubeconfig "$KUBECONFIG_PATH"
  report cache "$CACHE_DIR ($(du -sh "$CACHE_DIR" 2>/dev/null | cut -f1))"
  return $ok
}

cmd_env() {
  local node_path=""
  [[ -x "$NODE_HOME/bin/node" ]] && node_path="$NODE_HOME/bin:"
  cat <<ENV
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export KUBECONFIG=$KUBECONFIG_PATH
export KUBECTL=$K8S_HOME/bin/kubectl
export HELM=$HELM_HOME/bin/helm
export EVENTLOOM_STACK_DIR=$STATE_DIR
export EVENTLOOM_JAEGER_UI=http://127.0.0.1:$JAEGER_UI_PORT
export EVENTLOOM_OTLP_ENDPOINT=http://127.0.0.1:$JAEGER_OTLP_HTTP_PORT
export PATH=$node_path$K8S_HOME/bin:$HELM_HOME/bin:\$PATH
ENV
}

WITH_JAEGER=0
[[ "${2:-}" == "--with-jaeger" || "${EVENTLOOM_STACK_JAEGER:-0}" == 1 ]] && WITH_JAEGER=1
case "${1:-}" in
  up) with_lock "stack-up-$(echo "$STATE_DIR" | cksum | cut -d' ' -f1)" cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: stack.sh up | down | status | env" >&2; exit 2 ;;
esac
