# Start/stop/health functions for each server of the test stack. Sourced by
# up.sh, down.sh and ctl.sh. Each server runs in its own session (setsid) with
# a pid file and a log under $TT_RUN; data directories live there too.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

K8S_BIN="$TT_CACHE/k8s-$K8S_VERSION/bin"
KAFKA_HOME="$TT_CACHE/kafka-$KAFKA_VERSION"
MIRROR_HOME="$TT_CACHE/mirror-$KAFKA_VERSION"
MOTO_VENV="$TT_CACHE/venv-moto-$MOTO_VERSION"
PKI="$TT_RUN/pki"
SERVERS=(redis kafka kafka-dr mirror etcd apiserver controller-manager moto)

pidfile() { echo "$TT_RUN/$1.pid"; }
logfile() { echo "$TT_RUN/$1.log"; }

is_running() {
  local pf; pf=$(pidfile "$1")
  [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null
}

# spawn NAME CMD... : run CMD detached, append output to the server's log.
spawn() {
  local name=$1; shift
  is_running "$name" && die "$name is already running (pid $(cat "$(pidfile "$name")"))"
  echo "=== $(date -Is) starting: $*" >>"$(logfile "$name")"
  setsid "$@" >>"$(logfile "$name")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# stop NAME [SIGNAL]: TERM (or the given signal), wait, then KILL.
stop() {
  local name=$1 sig=${2:-TERM} pf pid
  pf=$(pidfile "$name")
  [[ -f "$pf" ]] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop on SIG$sig; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pf"
}

# Sends SIG to a running server's process group (pause/resume).
signal() {
  local name=$1 sig=$2 pf
  pf=$(pidfile "$name")
  [[ -f "$pf" ]] || die "$name is not running"
  kill -"$sig" -- "-$(cat "$pf")" 2>/dev/null || kill -"$sig" "$(cat "$pf")"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------- Redis (apt), AOF on so restart tests mean something ----------
start_redis() {
  mkdir -p "$TT_RUN/redis"
  spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TT_RUN/redis" \
    --appendonly yes --appendfsync everysec --save "" --protected-mode yes --daemonize no
}
health_redis() { [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
version_redis() { redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '/^redis_version/{print "Redis " $2}'; }

# ---------- Apache Kafka, KRaft, combined broker+controller ----------
# Two clusters: `kafka` (Seoul, the primary region) and `kafka-dr`
# (Singapore), each one broker that is also its own controller.
KAFKA_JAVA=(java -Xms256m -Xmx768m -cp "$KAFKA_HOME/libs/*")
kafka_java() { "${KAFKA_JAVA[@]}" "$@"; }
# Quiet logs; but keep the lines the stack reads: the version and the
# "... started" health signal.
kafka_log4j() {
  cat >"$1" <<'YAML'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: org.apache.kafka.common.utils.AppInfoParser
        level: INFO
      - name: kafka.server.KafkaRaftServer
        level: INFO
YAML
}
# start_broker NAME PORT CONTROLLER_PORT
start_broker() {
  local name=$1 port=$2 controller=$3 dir="$TT_RUN/$1"
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    mkdir -p "$dir/data"
    kafka_log4j "$dir/log4j2.yaml"
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
PROPS
    kafka_java kafka.tools.StorageTool format --standalone -t "$(kafka_java kafka.tools.StorageTool random-uuid | tail -1)" \
      -c "$dir/server.properties" >>"$(logfile "$name")" 2>&1 || { log_tail "$(logfile "$name")"; die "$name storage format"; }
  fi
  spawn "$name" "${KAFKA_JAVA[@]}" -Dlog4j2.configurationFile="$dir/log4j2.yaml" kafka.Kafka "$dir/server.properties"
}
# Only the log since the latest start counts: a restart appends to the same file.
since_last_start() { awk '/^=== .* starting: /{buf=""} {buf = buf $0 "\n"} END{printf "%s", buf}' "$(logfile "$1")"; }
health_broker() { port_open "$2" && since_last_start "$1" | grep -q "Kafka Server started"; }
version_broker() { grep -m1 -o "Kafka version: [^ ]*" "$(logfile "$1")" | awk -v n="$1" '{print "Apache Kafka " $3 " (" n ")"}'; }

start_kafka() { start_broker kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; }
health_kafka() { health_broker kafka "$KAFKA_PORT"; }
version_kafka() { version_broker kafka; }
start_kafka-dr() { start_broker kafka-dr "$KAFKA_DR_PORT" "$KAFKA_DR_CONTROLLER_PORT"; }
health_kafka-dr() { health_broker kafka-dr "$KAFKA_DR_PORT"; }
version_kafka-dr() { version_broker kafka-dr; }

# ---------- MirrorMaker 2 (dedicated mode), Seoul -> Singapore ----------
# Runs only the herders that write to Singapore (`--clusters singapore`), as
# MirrorMaker runs beside its target cluster in production. Replicates the
# topics of events whose id starts with `dr-` (the DR drills'
# events; every other test's topics stay unreplicated, so the rest of the
# suite pays nothing for it). Names are kept (IdentityReplicationPolicy):
# Singapore's workloads read the very topics Seoul's wrote, its decider
# continues the replicated outcomes log, and its keeper the replicated
# journal. Only committed records cross (read_committed): an aborted
# decider transaction must not become a decision in Singapore. Offsets
# differ between the clusters and nothing reads them across.
start_mirror() {
  local dir="$TT_RUN/mirror"
  mkdir -p "$dir"
  # Properties, not YAML: the mirror's class path has no YAML parser.
  cat >"$dir/log4j2.properties" <<'LOG'
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.mirror.name=org.apache.kafka.connect.mirror
logger.mirror.level=INFO
logger.scheduler.name=org.apache.kafka.connect.mirror.Scheduler
logger.scheduler.level=WARN
LOG
  cat >"$dir/mm2.properties" <<PROPS
clusters=seoul,singapore
seoul.bootstrap.servers=127.0.0.1:$KAFKA_PORT
singapore.bootstrap.servers=127.0.0.1:$KAFKA_DR_PORT
seoul->singapore.enabled=true
singapore->seoul.enabled=false
seoul->singapore.topics=twinkle[.]dr-.*
replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy
seoul.consumer.isolation.level=read_committed
# New events' topics are found within a second (default: ten minutes).
refresh.topics.interval.seconds=1
sync.topic.configs.enabled=true
sync.topic.acls.enabled=false
sync.group.offsets.enabled=false
# No consumer group moves across: Singapore's consumers start from the
# replicated logs, not from translated offsets.
seoul->singapore.groups.exclude=.*
emit.heartbeats.interval.seconds=1
replication.factor=1
offset-syncs.topic.replication.factor=1
heartbeats.topic.replication.factor=1
checkpoints.topic.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
config.storage.replication.factor=1
offset.flush.interval.ms=1000
tasks.max=2
# Every plugin jar here has a ServiceLoader manifest: skips ~10 s of class
# path scanning per herder.
plugin.discovery=service_load
PROPS
  spawn mirror java -Xms128m -Xmx512m -cp "$MIRROR_HOME/libs/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    org.apache.kafka.connect.mirror.MirrorMaker "$dir/mm2.properties" --clusters singapore
}
# The source connector's first poll: topics are being replicated.
health_mirror() { since_last_start mirror | grep -q -E "Starting with [0-9]+ previously uncommitted partitions|task-thread-MirrorSourceConnector-[0-9]+|Started MirrorSourceConnector"; }
version_mirror() { echo "MirrorMaker 2 (connect-mirror $KAFKA_VERSION)"; }

# ---------- etcd (built from the Go module with Kubernetes) ----------
start_etcd() {
  # --unsafe-no-fsync: test data only; keeps etcd from dominating a 2-core box.
  spawn etcd "$K8S_BIN/etcd" --name tt --data-dir "$TT_RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tt=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
}
health_etcd() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
version_etcd() { curl -fsS "http://127.0.0.1:$ETCD_PORT/version" | python3 -c 'import json,sys; print("etcd " + json.load(sys.stdin)["etcdserver"])'; }

# ---------- kube-apiserver ----------
make_pki() {
  [[ -f "$PKI/kubeconfig" ]] && return 0
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=twinkle-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile apiserver.ext -out apiserver.crt
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$TT_RUN/pki.log" 2>&1 || { log_tail "$TT_RUN/pki.log"; die "generating test PKI"; }
  local token; token=$(openssl rand -hex 24)
  # Static token auth: one cluster-admin for the tests and kubectl.
  echo "$token,twinkle-test-admin,twinkle-test-admin,system:masters" >"$PKI/tokens.csv"
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
  cat >"$PKI/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: twinkle-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: twinkle-test-admin
  user:
    token: $token
contexts:
- name: twinkle-test
  context: {cluster: twinkle-test, user: twinkle-test-admin, namespace: default}
current-context: twinkle-test
KCFG
  chmod 600 "$PKI/kubeconfig"
}
start_apiserver() {
  make_pki
  # The service CIDR is bookkeeping only (no kube-proxy, no nodes): nothing
  # ever sends traffic there.
  spawn apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --allow-privileged=false --profiling=false --v=1
}
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$PKI/kubeconfig" "$@"; }
health_apiserver() { kubectl_ get --raw /readyz >/dev/null && kubectl_ get namespace default >/dev/null; }
version_apiserver() { kubectl_ version -o json | python3 -c 'import json,sys; print("kube-apiserver " + json.load(sys.stdin)["serverVersion"]["gitVersion"])'; }

# ---------- kube-controller-manager: garbage collection (owner references),
# namespace deletion, Deployment -> ReplicaSet, default ServiceAccounts ----------
start_controller-manager() {
  spawn controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$PKI/kubeconfig" --authentication-kubeconfig "$PKI/kubeconfig" --authorization-kubeconfig "$PKI/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$((TT_PORT_BASE + 57))" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=false --controllers '*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route' \
    --v=1
}
health_controller-manager() { curl -fsSk "https://127.0.0.1:$((TT_PORT_BASE + 57))/healthz" | grep -q ok; }
version_controller-manager() { echo "kube-controller-manager $("$K8S_BIN/kube-controller-manager" --version | awk '{print $2}')"; }

# ---------- moto (Route53) ----------
start_moto() { spawn moto "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"; }
health_moto() { curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/data.json"; }
version_moto() { echo "moto $("$MOTO_VENV/bin/python" -c 'import moto; print(moto.__version__)')"; }

# Start one server and wait until it is healthy; loud failure with log tail.
start_server() {
  local name=$1 timeout=${2:-120}
  "start_$name"
  local deadline=$((SECONDS + timeout))
  until "health_$name" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      log_tail "$(logfile "$name")"; die "$name exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$(logfile "$name")"; die "$name did not become healthy within ${timeout}s"
    fi
    sleep 0.5
  done
}
