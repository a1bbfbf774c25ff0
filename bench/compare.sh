#!/usr/bin/env bash
# Runs the same `hamq bench` load against hamq and a peer in one run, so
# that the figures in closing notes compare like with like.
#
#   bench/compare.sh stomp     standalone hamq vs Debian's ActiveMQ 5.17 (KahaDB, defaults), STOMP
#   bench/compare.sh cluster   a 3-node hamq cluster (quorum_mem) vs standalone hamq vs ActiveMQ,
#                              then the catch-up rate of a slave that missed 1 GiB
#   bench/compare.sh catchup   only the catch-up
#   bench/compare.sh mqtt      standalone hamq vs Debian's Mosquitto 2.0 (QoS 1, clean sessions), and
#                              vs Debian's RabbitMQ (QoS 1 to a persistent-session subscriber)
#   bench/compare.sh amqp      standalone hamq: AMQP durable unsettled sends vs STOMP persistent ones
#
# Needs Debian's activemq (and zookeeper for cluster; mosquitto and rabbitmq-server for mqtt). Everything listens on
# loopback and is stopped at the end; data lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-stomp}
work=$(mktemp -d /tmp/hamq-compare.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/hamq" ./cmd/hamq
hamq="$work/hamq"

wait_port() { # PORT [SECONDS, 30]; the logs go with the work directory: show them first
	for _ in $(seq 1 $((${2:-30} * 10))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
	echo "port $1 never opened" >&2
	tail -n 20 "$work"/*.log >&2 || true
	exit 1
}

loads() { # URL LABEL
	echo "== $2: 4 producers, 4 consumers, 1 KiB persistent, a receipt per SEND (window 1)"
	"$hamq" bench --url "$1" --producers 4 --consumers 4 --count 20000 --size 1024 --persistent --window 1 --destination /queue/cmp.w1 | grep -E 'send|receive'
	echo "== $2: 1 producer, 1 KiB persistent, window 1"
	"$hamq" bench --url "$1" --producers 1 --consumers 1 --count 5000 --size 1024 --persistent --window 1 --destination /queue/cmp.p1 | grep -E 'send|receive'
	echo "== $2: 1 producer, 1 consumer, 1 KiB persistent, window 100 (each SEND with its receipt, pipelined)"
	"$hamq" bench --url "$1" --producers 1 --consumers 1 --count 30000 --size 1024 --persistent --window 100 --destination /queue/cmp.p100 | grep -E 'send|receive'
	echo "== $2: 4 producers, 4 consumers, 1 KiB persistent, window 100"
	"$hamq" bench --url "$1" --producers 4 --consumers 4 --count 100000 --size 1024 --persistent --window 100 --destination /queue/cmp.w100 | grep -E 'send|receive'
	echo "== $2: 4 producers, 4 consumers, 1 KiB non-persistent"
	"$hamq" bench --url "$1" --producers 4 --consumers 4 --count 200000 --size 1024 --window 100 --destination /queue/cmp.np | grep -E 'send|receive'
}

activemq() {
	[ -f /usr/share/activemq/bin/activemq.jar ] || { echo "install Debian's activemq: apt-get install activemq" >&2; exit 1; }
	local base="$work/activemq"
	mkdir -p "$base/data"
	cp /etc/activemq/instances-available/main/log4j2.properties "$base/"
	sed 's#<transportConnector name="openwire" uri="tcp://127.0.0.1:61616"/>#<transportConnector name="openwire" uri="tcp://127.0.0.1:26616"/><transportConnector name="stomp" uri="stomp://127.0.0.1:26613"/>#' \
		/etc/activemq/instances-available/main/activemq.xml >"$base/activemq.xml"
	java -Xms512M -Xmx512M -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$base" -Dactivemq.conf="$base" \
		-Dactivemq.data="$base/data" -Dlog4j.configurationFile="$base/log4j2.properties" \
		-jar /usr/share/activemq/bin/activemq.jar start "xbean:file:$base/activemq.xml" >"$base/out.log" 2>&1 &
	pids+=($!)
	wait_port 26613
	loads tcp://127.0.0.1:26613 "ActiveMQ 5.17"
	stop_last
}

standalone() {
	hamq_standalone
	loads tcp://127.0.0.1:24613 "hamq standalone"
	stop_last
}

# settle lets the disk write back what the last phase left dirty, which
# otherwise slows the next phase's fsyncs.
settle() { sync; sleep 2; }

demo() { # DIR: starts a demo cluster, sets url
	"$hamq" demo --dir "$1" >"$1.out" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 300); do grep -q "  master: node" "$1.out" 2>/dev/null && break; sleep 0.1; done
	url=$(sed -n 's/^Failover URL: //p' "$1.out")
}

cluster() {
	local url
	demo "$work/demo"
	loads "$url" "hamq 3-node cluster, quorum_mem"
	kill -INT "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}

catchup() {
	local url
	demo "$work/catchup"

	# Catch-up: a slave misses 1 GiB held in 20 queues (each under the
	# 64 MiB per-destination limit), then rejoins; the log's tail was
	# trimmed long ago, so it is sent a snapshot.
	local pid victim a
	for n in node1 node2 node3; do
		a=$(sed -n "s/^$n (pid \([0-9]*\)).*admin \(http[^ ]*\).*/\1 \2/p" "$work/catchup.out")
		if curl -s "${a#* }/api/cluster" | grep -q '"role": "slave"'; then
			pid=${a%% *} victim=$n
			break
		fi
	done
	kill -STOP "$pid"
	for q in $(seq 1 20); do
		"$hamq" bench --url "$url" --producers 2 --consumers 0 --count 820 --size 65536 --persistent --window 50 --destination "/queue/catchup.$q" >/dev/null
	done
	local log="$work/catchup/$victim.log" before
	before=$(grep -c "caught up" "$log")
	kill -9 "$pid"
	echo "== catch-up: $victim missed 1 GiB (20 queues of 51 MiB); the demo restarts it"
	for _ in $(seq 1 3000); do [ "$(grep -c "caught up" "$log")" -gt "$before" ] && break; sleep 0.1; done
	# from the fence of the restarted node to caught up
	grep -E "fenced by a master|snapshot|caught up" "$log" | awk '/fenced by a master/ { n = 0 } { block[n++] = $0 } END { for (i = 0; i < n; i++) print block[i] }'
	echo "(1 GiB = 1024 MiB over the time from the fence to caught up)"
	kill -INT "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}

# mqtt_loads URL LABEL [--session]
mqtt_loads() {
	echo "== $2: 4 publishers, 1 subscriber, 1 KiB, QoS 1, window 100 ${3:+(persistent-session subscriber)}"
	"$hamq" bench --proto mqtt --url "$1" --producers 4 --consumers 1 --count 100000 --size 1024 --qos 1 --window 100 ${3:-} | grep -E 'send|receive'
}

hamq_standalone() { # [CONFIG]: starts a standalone hamq with STOMP 24613, MQTT 24883, AMQP 24672
	"$hamq" start --config "${1:-/dev/null}" --data "$work/hamq.$RANDOM" --stomp 127.0.0.1:24613 --mqtt 127.0.0.1:24883 --amqp 127.0.0.1:24672 \
		--ws off --http 127.0.0.1:24161 >>"$work/hamq.log" 2>&1 &
	pids+=($!)
	wait_port 24613
}

stop_last() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; }

mosquitto_phase() {
	command -v mosquitto >/dev/null || { echo "install Debian's mosquitto: apt-get install mosquitto" >&2; exit 1; }
	# Unbounded queues, as hamq's: Mosquitto's default of 1000 queued QoS 1
	# messages per client would drop most of a 4-publisher burst.
	printf 'listener 21885 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\npersistence false\n' >"$work/mosquitto.conf"
	mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
	pids+=($!)
	wait_port 21885
	mqtt_loads tcp://127.0.0.1:21885 "Mosquitto 2.0"
	stop_last
}

rabbitmq_phase() {
	[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "install Debian's rabbitmq-server: apt-get install rabbitmq-server" >&2; exit 1; }
	local r="$work/rabbitmq"
	mkdir -p "$r"
	echo "[rabbitmq_mqtt]." >"$r/enabled_plugins"
	printf 'listeners.tcp.default = 127.0.0.1:25673\nmqtt.listeners.tcp.default = 127.0.0.1:21884\nloopback_users = none\nmqtt.allow_anonymous = true\n' >"$r/rabbitmq.conf"
	env HOME="$r" RABBITMQ_NODENAME=hamqcmp@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT=25674 \
		ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE="$r/mnesia" RABBITMQ_LOG_BASE="$r/log" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$r/enabled_plugins" RABBITMQ_CONFIG_FILE="$r/rabbitmq" RABBITMQ_PID_FILE="$r/pid" \
		/usr/lib/rabbitmq/bin/rabbitmq-server >"$r/out.log" 2>&1 &
	pids+=($!)
	wait_port 21884 60
	mqtt_loads tcp://127.0.0.1:21884 "RabbitMQ (durable MQTT)" --session
	env HOME="$r" RABBITMQ_NODENAME=hamqcmp@localhost /usr/lib/rabbitmq/bin/rabbitmqctl stop >/dev/null 2>&1 || true
	epmd -kill >/dev/null 2>&1 || true # the Erlang port mapper RabbitMQ started
	wait "${pids[-1]}" 2>/dev/null || true
}

mqtt() {
	# Every message reaches the subscriber on both brokers: hamq's policy
	# drops the oldest beyond 1000 waiting for a slow non-durable subscriber
	# (ActiveMQ's), Mosquitto beyond 1000 queued; both are lifted.
	printf 'policy:\n  topicPendingLimit: 1000000\n' >"$work/mqtt.yaml"
	hamq_standalone "$work/mqtt.yaml"
	mqtt_loads tcp://127.0.0.1:24883 "hamq standalone"
	stop_last
	settle
	mosquitto_phase
	settle
	hamq_standalone
	mqtt_loads tcp://127.0.0.1:24883 "hamq standalone" --session
	stop_last
	settle
	rabbitmq_phase
}

amqp() {
	hamq_standalone
	echo "== hamq standalone: 4 producers, 4 consumers, 1 KiB, window 100: STOMP persistent, then AMQP durable unsettled"
	"$hamq" bench --url tcp://127.0.0.1:24613 --producers 4 --consumers 4 --count 100000 --size 1024 --persistent --window 100 --destination /queue/cmp.stomp | grep -E 'send|receive'
	"$hamq" bench --proto amqp --url tcp://127.0.0.1:24672 --producers 4 --consumers 4 --count 100000 --size 1024 --persistent --window 100 --destination queue://cmp.amqp | grep -E 'send|receive'
	stop_last
}

case $mode in
stomp) activemq; settle; standalone ;;
cluster) cluster; settle; standalone; settle; activemq; settle; catchup ;;
catchup) catchup ;;
mqtt) mqtt ;;
amqp) amqp ;;
*) echo "usage: bench/compare.sh stomp|cluster|catchup|mqtt|amqp" >&2; exit 2 ;;
esac
