#!/usr/bin/env bash
# Compares hamq with its peers on the same loads, run by the same client
# (hamq bench), so that only the broker differs.
#
#   bench/compare.sh workloads [ROUNDS]  W1-W4 below, each against its peer: a warm-up of every
#                                        broker, then ROUNDS measured rounds (default 5) alternating
#                                        hamq, peer, hamq, peer ...; a Markdown table per workload
#   bench/compare.sh stomp [ROUNDS]      only W1, W2 and W4 on standalone hamq vs ActiveMQ
#   bench/compare.sh cluster [ROUNDS]    only W1 and W2 on a 3-node cluster vs ActiveMQ, then the catch-up
#   bench/compare.sh mqtt [ROUNDS]       only W3 vs Mosquitto, then W3 with a persistent-session
#                                        subscriber vs RabbitMQ's MQTT plugin
#   bench/compare.sh catchup             the rate at which a cluster slave that missed 1 GiB catches up
#   bench/compare.sh amqp                standalone hamq: AMQP durable unsettled sends vs STOMP persistent ones
#
# The workloads (hamq bench --workload; 1 KiB bodies):
#   W1  STOMP persistent, 4 producers each awaiting every SEND's receipt, 1 consumer ACKing each
#       message (client-individual, prefetch 1000); vs Debian's ActiveMQ 5.17, standalone hamq and
#       a 3-node hamq cluster (quorum_mem) each
#   W2  W1 with 1 producer
#   W3  MQTT QoS 1, 4 publishers each awaiting every PUBACK, clean sessions, 1 QoS 1 subscriber;
#       vs Debian's Mosquitto 2.0
#   W4  STOMP non-persistent, 4 producers without receipts, 1 consumer ACKing each message; the
#       consumer's receive rate; vs ActiveMQ
# W1-W3 also run pipelined (--window 100: 100 unconfirmed sends per producer), rows labelled so.
# W2's producer also runs alone (--consumers 0) against hamq and against bench/floor, a STOMP
# endpoint that only writes each body and fdatasyncs it: what this machine's disk and loopback
# allow any broker that flushes once a message.
# Each run reports the broker's CPU per message (its processes' user+system time; a cluster's
# three nodes together, not ZooKeeper) and the flush requests per message that the disk holding
# the data completed (/sys/class/block/DEV/stat, Linux 5.5 or later; device-wide, so anything else
# syncing to that disk meanwhile counts too).
#
# Peers run with their Debian packages' defaults: ActiveMQ with the main instance's activemq.xml
# (plus a STOMP connector) and the JVM options of /usr/share/activemq/activemq-options (a heap
# of 512 MiB); Mosquitto with Debian's mosquitto.conf settings (but for W3, hamq and Mosquitto
# both queue any number of messages for a slow subscriber rather than drop them). Missing packages are installed
# with apt-get (activemq, mosquitto; zookeeper for the cluster; rabbitmq-server for mqtt).
#
# Environment: COUNT=N messages per run instead of each load's own (about 10 s a run; pipelined,
# 50000, 30000 and 200000); WARMUP=N messages per warm-up (default half a run); WORKLOADS="W1 W2 W4 W1c
# W2c W3 W3s" the tables to make (c: the cluster, s: the persistent-session subscriber);
# PIPELINED=0 leaves out the pipelined rows; AMQ_HEAP=1G runs ActiveMQ with the heap of
# ActiveMQ's own distribution (-Xms64M -Xmx1G) instead; DEVICE=sda counts the flushes of that
# disk; SETTLE=S seconds of pause after a sync between runs (default 2); RESULTS=FILE keeps
# every run's result line.
#
# Everything listens on loopback on free ports and is stopped at the end (by the process ids
# this script started); data lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-workloads}
rounds=${2:-5}
work=$(mktemp -d /tmp/hamq-compare.XXXXXX)
pids=() # every process started here, in order

alive() { # PID: running, not a zombie waiting for wait
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $s != Z* ]]
}

stop_pid() { # PID [SECONDS, 30]: SIGTERM, then SIGKILL if it has not ended in time
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	[ ${#keep[@]} -lt ${#pids[@]} ] || return 0 # not ours, or stopped already: its pid may be another's now
	pids=("${keep[@]}")
	kill "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
	for _ in $(seq 1 $((${2:-30} * 10))); do alive "$1" || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}" 60; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
go build -o "$work/hamq" ./cmd/hamq
go build -o "$work/floor" ./bench/floor
hamq="$work/hamq"

used_ports=" "
free_port() { # sets port: a loopback port nobody listens on, below Linux's ephemeral range (32768-60999)
	while :; do
		port=$((20000 + RANDOM % 12000))
		case $used_ports in *" $port "*) continue ;; esac
		if command -v ss >/dev/null; then
			ss -Htln "sport = :$port" | grep -q . && continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		used_ports+="$port "
		return
	done
}

wait_port() { # PORT PID [SECONDS, 30]; the logs go with the work directory: show them first
	for _ in $(seq 1 $((${3:-30} * 10))); do
		alive "$2" || break
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 never opened" >&2
	tail -n 20 "$work"/*.log "$work"/*/*.log >&2 2>/dev/null || true
	exit 1
}

need() { # COMMAND-OR-FILE PACKAGE: installs Debian's package when missing
	command -v "$1" >/dev/null || [ -e "$1" ] && return 0
	echo "installing Debian's $2 ..." >&2
	apt-get install -y "$2" >"$work/apt-$2.log" 2>&1 || { cat "$work/apt-$2.log" >&2; exit 1; }
}

# settle lets the disk write back what the last run left dirty, which
# otherwise slows the next run's syncs.
settle() { sync; sleep "${SETTLE:-2}"; }

# ---- brokers ---------------------------------------------------------------

hamq_standalone() { # [CONFIG]: sets hamq_pid, hamq_stomp, hamq_mqtt, hamq_amqp, hamq_http (URLs)
	local stomp mqtt amqp http
	free_port; stomp=$port; free_port; mqtt=$port; free_port; amqp=$port; free_port; http=$port
	"$hamq" start --config "${1:-/dev/null}" --data "$work/hamq.$stomp" --stomp "127.0.0.1:$stomp" --mqtt "127.0.0.1:$mqtt" \
		--amqp "127.0.0.1:$amqp" --ws off --http "127.0.0.1:$http" >>"$work/hamq.log" 2>&1 &
	hamq_pid=$!
	pids+=("$hamq_pid")
	wait_port "$stomp" "$hamq_pid"
	wait_port "$mqtt" "$hamq_pid"
	hamq_stomp=tcp://127.0.0.1:$stomp hamq_mqtt=tcp://127.0.0.1:$mqtt hamq_amqp=tcp://127.0.0.1:$amqp hamq_http=http://127.0.0.1:$http
}

floor() { # sets floor_pid, floor_url: bench/floor, its journal on the disk hamq's data is on
	free_port
	"$work/floor" -listen "127.0.0.1:$port" -dir "$work" >>"$work/floor.log" 2>&1 &
	floor_pid=$!
	pids+=("$floor_pid")
	wait_port "$port" "$floor_pid"
	floor_url=tcp://127.0.0.1:$port
}

# activemq_opts are the JVM options of Debian's package (or AMQ_HEAP's heap).
activemq_opts() {
	local opts
	# shellcheck disable=SC1091,SC2034 # Debian's file, which reads INSTANCE
	opts=$(INSTANCE=main; set +u; . /usr/share/activemq/activemq-options; printf '%s' "${ACTIVEMQ_OPTS:-}")
	if [ -n "${AMQ_HEAP:-}" ]; then
		opts="-Xms64M -Xmx$AMQ_HEAP $(tr ' ' '\n' <<<"$opts" | grep -v -e '^-Xms' -e '^-Xmx' | tr '\n' ' ')"
	fi
	printf '%s' "$opts"
}

activemq() { # sets amq_pid, amq_stomp, amq_label
	need /usr/share/activemq/bin/activemq.jar activemq
	local base="$work/activemq" openwire stomp opts
	free_port; openwire=$port; free_port; stomp=$port
	mkdir -p "$base/data"
	cp /etc/activemq/instances-available/main/log4j2.properties "$base/"
	sed "s#<transportConnector name=\"openwire\" uri=\"tcp://127.0.0.1:61616\"/>#<transportConnector name=\"openwire\" uri=\"tcp://127.0.0.1:$openwire\"/><transportConnector name=\"stomp\" uri=\"stomp://127.0.0.1:$stomp\"/>#" \
		/etc/activemq/instances-available/main/activemq.xml >"$base/activemq.xml"
	grep -q "stomp://127.0.0.1:$stomp" "$base/activemq.xml" || { echo "Debian's activemq.xml changed: no openwire connector to put STOMP beside" >&2; exit 1; }
	opts=$(activemq_opts)
	# shellcheck disable=SC2086 # the options are words
	java $opts -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$base" -Dactivemq.conf="$base" \
		-Dactivemq.data="$base/data" -Dlog4j.configurationFile="$base/log4j2.properties" \
		-jar /usr/share/activemq/bin/activemq.jar start "xbean:file:$base/activemq.xml" >"$base/out.log" 2>&1 &
	amq_pid=$!
	pids+=("$amq_pid")
	wait_port "$stomp" "$amq_pid" 60
	amq_stomp=tcp://127.0.0.1:$stomp
	amq_label="ActiveMQ $(dpkg-query -W -f '${Version}' activemq | sed 's/+.*//'), heap $(tr ' ' '\n' <<<"$opts" | sed -n 's/^-Xmx//p' | tail -1)"
	echo "ActiveMQ: Debian's activemq $(dpkg-query -W -f '${Version}' activemq), $(java -version 2>&1 | head -1), main instance's activemq.xml (KahaDB) with a STOMP connector; JVM options: $opts"
}

mosquitto_broker() { # sets mosq_pid, mosq_url, mosq_label
	need mosquitto mosquitto
	local p
	free_port; p=$port
	mkdir -p "$work/mosquitto"
	# Debian's /etc/mosquitto/mosquitto.conf, with its paths moved here,
	# and a listener of our own (which then needs allow_anonymous).
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest file %s/mosquitto.log\nmax_queued_messages 0\n' \
		"$p" "$work/mosquitto" "$work/mosquitto" >"$work/mosquitto/mosquitto.conf"
	mosquitto -c "$work/mosquitto/mosquitto.conf" >"$work/mosquitto/out.log" 2>&1 &
	mosq_pid=$!
	pids+=("$mosq_pid")
	wait_port "$p" "$mosq_pid"
	mosq_url=tcp://127.0.0.1:$p
	mosq_label="Mosquitto $(dpkg-query -W -f '${Version}' mosquitto | sed 's/-.*//')"
	echo "Mosquitto: Debian's mosquitto $(dpkg-query -W -f '${Version}' mosquitto), Debian's mosquitto.conf settings (persistence true, autosaved only on exit), a loopback listener, max_queued_messages 0"
}

demo() { # DIR: starts a demo cluster; sets demo_pid, url, node_pids
	need /usr/share/java/zookeeper.jar zookeeper
	"$hamq" demo --dir "$1" >"$1.out" 2>&1 &
	demo_pid=$!
	pids+=("$demo_pid")
	for _ in $(seq 1 300); do grep -q "  master: node" "$1.out" 2>/dev/null && break; alive "$demo_pid" || break; sleep 0.1; done
	grep -q "  master: node" "$1.out" || { echo "the demo cluster elected no master" >&2; cat "$1.out" >&2; exit 1; }
	url=$(sed -n 's/^Failover URL: //p' "$1.out")
	node_pids=$(sed -n 's/^node [^ ]* (pid \([0-9]*\)).*/\1/p' "$1.out" | paste -sd,)
}

rabbitmq() { # sets rabbit_pid, rabbit_url
	need /usr/lib/rabbitmq/bin/rabbitmq-server rabbitmq-server
	local r="$work/rabbitmq" amqp mqtt dist
	free_port; amqp=$port; free_port; mqtt=$port; free_port; dist=$port
	mkdir -p "$r"
	echo "[rabbitmq_mqtt]." >"$r/enabled_plugins"
	printf 'listeners.tcp.default = 127.0.0.1:%s\nmqtt.listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\nmqtt.allow_anonymous = true\n' "$amqp" "$mqtt" >"$r/rabbitmq.conf"
	# Only an Erlang port mapper started for RabbitMQ here is stopped at the end.
	epmd_was_running=false
	epmd -names >/dev/null 2>&1 && epmd_was_running=true
	env HOME="$r" RABBITMQ_NODENAME=hamqcmp@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT="$dist" \
		ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE="$r/mnesia" RABBITMQ_LOG_BASE="$r/log" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$r/enabled_plugins" RABBITMQ_CONFIG_FILE="$r/rabbitmq" RABBITMQ_PID_FILE="$r/pid" \
		/usr/lib/rabbitmq/bin/rabbitmq-server >"$r/out.log" 2>&1 &
	rabbit_pid=$!
	pids+=("$rabbit_pid")
	wait_port "$mqtt" "$rabbit_pid" 60
	rabbit_url=tcp://127.0.0.1:$mqtt
	echo "RabbitMQ: Debian's rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server) with its MQTT plugin, defaults"
}

stop_rabbitmq() {
	env HOME="$work/rabbitmq" RABBITMQ_NODENAME=hamqcmp@localhost /usr/lib/rabbitmq/bin/rabbitmqctl stop >/dev/null 2>&1 || true
	$epmd_was_running || epmd -kill >/dev/null 2>&1 || true
	stop_pid "$rabbit_pid"
}

# rabbit_cpu_pids prints the process ids whose CPU is RabbitMQ's: the
# Erlang VM runs under the script that was started.
rabbit_cpu_pids() {
	{ echo "$rabbit_pid"; pgrep -P "$rabbit_pid" || true; } | paste -sd,
}

# ---- runs and tables -------------------------------------------------------

# The rows of the table being made, in pairs: a hamq row, then its
# reference row; a round runs each pair in turn, hamq first.
row_label=() row_url=() row_pids=() row_args=()
row() { # LABEL URL PIDS ARGS...: adds a row
	row_label+=("$1") row_url+=("$2") row_pids+=("$3")
	shift 3
	row_args+=("$*")
}

count_of() { # LOAD: the messages of one run
	if [ -n "${COUNT:-}" ]; then echo "$COUNT"; return; fi
	case $1 in
	W1) echo 30000 ;; W2) echo 15000 ;; W3) echo 150000 ;; W4) echo 300000 ;;
	W1p) echo 50000 ;; W2p) echo 30000 ;; W3p) echo 200000 ;;
	esac
}

bench_run() { # OUT I COUNT RUN: one run of row I, its result line appended to OUT (or "failed")
	local out=$1 i=$2 n=$3 run=$4 log="$work/run.log"
	# shellcheck disable=SC2086 # the row's arguments are words
	if "$hamq" bench --url "${row_url[i]}" ${row_pids[i]:+--broker-pid "${row_pids[i]}"} ${device:+--device "$device"} \
		${row_args[i]} --count "$n" >"$log" 2>&1 && grep -q '^result ' "$log"; then
		grep '^result ' "$log" >>"$out"
		[ -z "${RESULTS:-}" ] || awk -v p="label=\"${row_label[i]}\" run=$run " '/^result / { print "result " p substr($0, 8) }' "$log" >>"$RESULTS"
	else
		echo failed >>"$out"
		echo "  (${row_label[i]}: a run failed: $(tail -n 3 "$log" | tr '\n' ' '))" >&2
	fi
}

values() { # FILE KEY: the values of KEY in FILE's result lines, sorted
	sed -n "s/^result .* $2=\([^ ]*\).*/\1/p" "$1" | { grep -v '^na$' || true; } | sort -g
}

median() { # the median of the numbers on standard input, or na
	awk '{ v[NR] = $1 } END { if (NR == 0) print "na"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

thousands() { # NUMBER: rounded, with thousands separators
	awk -v n="$1" 'BEGIN { if (n == "na") { print "na"; exit } s = sprintf("%.0f", n); o = ""
		while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'
}

table() { # TITLE LOAD...: warms up every row, runs the rounds, prints the table; LOADs name each pair's counts
	local title=$1 i r n pair
	shift
	local loads=("$@") # a load for each pair of rows; extra ones are for rows not added

	for i in "${!row_label[@]}"; do : >"$work/row.$i"; done
	echo
	echo "### $title"
	echo
	for i in "${!row_label[@]}"; do
		n=$(count_of "${loads[i / 2]}")
		echo "  warm-up: ${row_label[i]}, ${WARMUP:-$((n / 2))} messages" >&2
		bench_run "$work/warmup" "$i" "${WARMUP:-$((n / 2))}" warmup
		settle
	done
	for r in $(seq 1 "$rounds"); do
		for i in "${!row_label[@]}"; do
			echo "  round $r/$rounds: ${row_label[i]}" >&2
			bench_run "$work/row.$i" "$i" "$(count_of "${loads[i / 2]}")" "round$r"
			settle
		done
	done
	echo "| broker | median msgs/s | min-max msgs/s | flushes/msg | broker CPU µs/msg | ratio of medians | rounds |"
	echo "|---|--:|--:|--:|--:|--:|--:|"
	local med=() rates
	for i in "${!row_label[@]}"; do med[i]=$(values "$work/row.$i" rate | median); done
	for i in "${!row_label[@]}"; do
		rates=$(values "$work/row.$i" rate)
		local minmax=na ratio=""
		[ -z "$rates" ] || minmax="$(thousands "$(head -1 <<<"$rates")")-$(thousands "$(tail -1 <<<"$rates")")"
		pair=$((i / 2 * 2))
		if ((i == pair)) && [ "${med[i]}" != na ] && [ "${med[i + 1]:-na}" != na ]; then
			ratio=$(awk -v a="${med[i]}" -v b="${med[i + 1]}" 'BEGIN { printf "%.2f", a / b }')
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s/%s |\n' "${row_label[i]}" "$(thousands "${med[i]}")" "$minmax" \
			"$(values "$work/row.$i" flushes_per_msg | median | awk '{ print ($1 == "na") ? "na" : sprintf("%.2f", $1) }')" \
			"$(values "$work/row.$i" cpu_us_per_msg | median | awk '{ print ($1 == "na") ? "na" : sprintf("%.0f", $1) }')" \
			"$ratio" "$(grep -c '^result ' "$work/row.$i" || true)" "$rounds"
	done
	echo
	echo "Ratio: the hamq row's median over the next row's. Flushes on ${device:-no device (not measured)}; CPU of the broker's processes; per message sent."
	row_label=() row_url=() row_pids=() row_args=()
}

selected() { # TABLE: whether WORKLOADS asks for it
	case " $workloads " in *" $1 "*) return 0 ;; esac
	return 1
}

pipelined() { [ "${PIPELINED:-1}" != 0 ]; }

workloads() {
	local dest=cmp w
	echo "# hamq and its peers: $workloads; $rounds round(s); $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)."
	echo "hamq: $(git describe --always --dirty 2>/dev/null || echo 'this tree'), built-in defaults; every run's client: hamq bench, the same flags for every broker."
	if [ -n "$device" ]; then
		echo "Flushes: flush requests completed by /dev/$device (holding $work), device-wide."
	else
		echo "Flushes: not measured (no block device with a flush count found for $work; set DEVICE)."
	fi
	echo "Counts per run: ${COUNT:-W1 30000, W2 15000, W3 150000, W4 300000; pipelined W1 50000, W2 30000, W3 200000}; warm-up ${WARMUP:-half a run} per row."

	if selected W1 || selected W2 || selected W4; then
		[ -n "${amq_pid:-}" ] || activemq
		hamq_standalone
		echo
		for w in W1 W2; do
			selected $w || continue
			row "hamq standalone" "$hamq_stomp" "$hamq_pid" --workload $w --destination /queue/$dest.$w
			row "$amq_label" "$amq_stomp" "$amq_pid" --workload $w --destination /queue/$dest.$w
			local loads=("$w")
			if pipelined; then
				row "hamq standalone, pipelined (window 100)" "$hamq_stomp" "$hamq_pid" --workload $w --window 100 --destination /queue/$dest.${w}p
				row "$amq_label, pipelined (window 100)" "$amq_stomp" "$amq_pid" --workload $w --window 100 --destination /queue/$dest.${w}p
				loads+=("${w}p")
			fi
			if [ $w = W2 ]; then
				# What any broker that flushes once a message could do here:
				# the producer alone, against hamq and against bench/floor.
				# hamq's admin API removes the queue nobody consumes.
				floor
				row "hamq standalone, no consumer" "$hamq_stomp" "$hamq_pid" --workload $w --consumers 0 --http "$hamq_http" --destination /queue/$dest.${w}f
				row "floor: bench/floor, no broker (fdatasync per message), no consumer" "$floor_url" "$floor_pid" --workload $w --consumers 0
				loads+=("$w")
			fi
			table "$(title $w)" "${loads[@]}"
			if [ $w = W2 ]; then stop_pid "$floor_pid"; fi
		done
		if selected W4; then
			row "hamq standalone" "$hamq_stomp" "$hamq_pid" --workload W4 --destination /queue/$dest.W4
			row "$amq_label" "$amq_stomp" "$amq_pid" --workload W4 --destination /queue/$dest.W4
			table "$(title W4)" W4
		fi
		stop_pid "$hamq_pid"
	fi

	if selected W1c || selected W2c; then
		[ -n "${amq_pid:-}" ] || activemq
		settle
		demo "$work/demo"
		echo
		echo "Cluster: hamq demo: 3 nodes (quorum_mem), a 3-member ZooKeeper ensemble, all on this machine; CPU of the 3 nodes (pids $node_pids), not ZooKeeper's."
		for w in W1 W2; do
			selected ${w}c || continue
			row "hamq 3-node cluster" "$url" "$node_pids" --workload $w --destination /queue/$dest.$w.c
			row "$amq_label (standalone)" "$amq_stomp" "$amq_pid" --workload $w --destination /queue/$dest.$w.c
			if pipelined; then
				row "hamq 3-node cluster, pipelined (window 100)" "$url" "$node_pids" --workload $w --window 100 --destination /queue/$dest.${w}p.c
				row "$amq_label (standalone), pipelined (window 100)" "$amq_stomp" "$amq_pid" --workload $w --window 100 --destination /queue/$dest.${w}p.c
			fi
			table "$(title $w); a 3-node hamq cluster" $w ${w}p
		done
		stop_pid "$demo_pid" 60
	fi
	if [ -n "${amq_pid:-}" ]; then stop_pid "$amq_pid"; fi

	if selected W3 || selected W3s; then
		# Every message must reach the subscriber: both brokers PUBACK a
		# publisher before the subscriber has the message, so a subscriber
		# slower than the publishers builds a backlog, and the brokers'
		# limits on it (hamq's policy.topicPendingLimit, Mosquitto's
		# max_queued_messages, 1000 each) would drop messages rather than
		# measure the rate. Both are lifted.
		printf 'policy:\n  topicPendingLimit: 10000000\n' >"$work/mqtt.yaml"
		settle
		hamq_standalone "$work/mqtt.yaml"
		echo
		echo "MQTT: the brokers' limits on messages queued for a subscriber are lifted (hamq policy.topicPendingLimit, Mosquitto max_queued_messages 0), so that none is dropped."
	fi
	if selected W3; then
		mosquitto_broker
		row "hamq standalone" "$hamq_mqtt" "$hamq_pid" --workload W3 --destination $dest/W3
		row "$mosq_label" "$mosq_url" "$mosq_pid" --workload W3 --destination $dest/W3
		if pipelined; then
			row "hamq standalone, pipelined (window 100)" "$hamq_mqtt" "$hamq_pid" --workload W3 --window 100 --destination $dest/W3p
			row "$mosq_label, pipelined (window 100)" "$mosq_url" "$mosq_pid" --workload W3 --window 100 --destination $dest/W3p
		fi
		table "$(title W3)" W3 W3p
		stop_pid "$mosq_pid"
	fi
	if selected W3s; then
		settle
		rabbitmq
		row "hamq standalone" "$hamq_mqtt" "$hamq_pid" --workload W3 --session --destination $dest/W3s
		row "RabbitMQ (MQTT plugin)" "$rabbit_url" "$(rabbit_cpu_pids)" --workload W3 --session --destination $dest/W3s
		table "$(title W3); here the subscriber's session is persistent (its messages stored)" W3
		stop_rabbitmq
	fi
	if selected W3 || selected W3s; then stop_pid "$hamq_pid"; fi
}

title() { # LOAD
	case $1 in
	W1) echo "W1: STOMP persistent 1 KiB, 4 producers each awaiting every SEND's receipt, 1 consumer ACKing each message (client-individual, prefetch 1000)" ;;
	W2) echo "W2: STOMP persistent 1 KiB, 1 producer awaiting every SEND's receipt, 1 consumer ACKing each message (client-individual, prefetch 1000)" ;;
	W3) echo "W3: MQTT QoS 1 1 KiB, 4 publishers each awaiting every PUBACK, clean sessions, 1 QoS 1 subscriber" ;;
	W4) echo "W4: STOMP non-persistent 1 KiB, 4 producers without receipts, 1 consumer ACKing each message (client-individual, prefetch 1000); the consumer's receive rate" ;;
	esac
}

# device is the disk whose flushes are counted: the one holding $work.
find_device() {
	local src kind
	device=${DEVICE:-}
	if [ -z "$device" ]; then
		src=$(findmnt -no SOURCE -T "$work" 2>/dev/null || true)
		if [[ $src == /dev/* ]]; then
			kind=$(lsblk -no TYPE "$src" 2>/dev/null | head -1 || true)
			if [ "$kind" = part ]; then device=$(lsblk -no PKNAME "$src" | head -1); else device=$(lsblk -no KNAME "$src" 2>/dev/null | head -1 || true); fi
			device=${device:-${src#/dev/}}
		fi
	fi
	device=${device#/dev/}
	if [ -n "$device" ] && ! { [ -r "/sys/class/block/$device/stat" ] && [ "$(wc -w <"/sys/class/block/$device/stat")" -ge 16 ]; }; then
		echo "no flush count for device '$device' (/sys/class/block/$device/stat, Linux 5.5 or later): flushes not measured" >&2
		device=""
	fi
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
	stop_pid "$demo_pid" 60
}

amqp() {
	hamq_standalone
	echo "== hamq standalone: 4 producers, 4 consumers (each message acknowledged), 1 KiB, window 100: STOMP persistent, then AMQP durable unsettled"
	"$hamq" bench --url "$hamq_stomp" --broker-pid "$hamq_pid" ${device:+--device "$device"} --producers 4 --consumers 4 --count 100000 --size 1024 \
		--persistent --window 100 --destination /queue/cmp.stomp | grep -E '^(send|receive|broker):'
	"$hamq" bench --proto amqp --url "$hamq_amqp" --broker-pid "$hamq_pid" ${device:+--device "$device"} --producers 4 --consumers 4 --count 100000 --size 1024 \
		--persistent --window 100 --destination queue://cmp.amqp | grep -E '^(send|receive|broker):'
	stop_pid "$hamq_pid"
}

find_device
case $mode in
workloads) workloads=${WORKLOADS:-W1 W2 W4 W1c W2c W3}; workloads ;;
stomp) workloads=${WORKLOADS:-W1 W2 W4}; workloads ;;
cluster) workloads=${WORKLOADS:-W1c W2c}; workloads; echo; catchup ;;
mqtt) workloads=${WORKLOADS:-W3 W3s}; workloads ;;
catchup) catchup ;;
amqp) amqp ;;
*) echo "usage: bench/compare.sh workloads|stomp|cluster|mqtt [ROUNDS] | catchup | amqp" >&2; exit 2 ;;
esac
