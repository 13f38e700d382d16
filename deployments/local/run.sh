#!/usr/bin/env bash
# Runs the whole genrelay pipeline on this machine with no Docker: an
# embedded NATS JetStream server, moderation, ingress and the example
# subscriber. Ctrl-C stops everything. Called by `make run`.
#
# Settings are the services' GENRELAY_ variables. Defaults:
#   GENRELAY_NATS_URL   nats://127.0.0.1:4222
#   GENRELAY_DATA_DIR   .data (NATS store and the development key)
#   GENRELAY_HTTP_ADDR  127.0.0.1:8080 (ingress)
#   GENRELAY_MODERATION_HTTP_ADDR  127.0.0.1:8081 (moderation health)
#   GENRELAY_WEBHOOK_KEYS  dev:<random key kept in the data dir>
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

export GENRELAY_NATS_URL=${GENRELAY_NATS_URL:-nats://127.0.0.1:4222}
export GENRELAY_DATA_DIR=${GENRELAY_DATA_DIR:-.data}
export GENRELAY_LOG_FORMAT=${GENRELAY_LOG_FORMAT:-console}
ingress_addr=${GENRELAY_HTTP_ADDR:-127.0.0.1:8080}
moderation_addr=${GENRELAY_MODERATION_HTTP_ADDR:-127.0.0.1:8081}
unset GENRELAY_HTTP_ADDR

# The development key is created once and kept, so that a restart keeps
# the curl command below working.
mkdir -p "$GENRELAY_DATA_DIR"
key_file=$GENRELAY_DATA_DIR/dev-webhook-key
if [[ -z ${GENRELAY_WEBHOOK_KEYS:-} ]]; then
	if [[ ! -s $key_file ]]; then
		(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$key_file")
	fi
	export GENRELAY_WEBHOOK_KEYS="dev:$(cat "$key_file")"
fi

echo "building binaries into bin/ ..."
mkdir -p bin
go build -o bin/ ./services/devnats ./services/ingress ./services/moderation \
	./pkg/examples/printclean

pids=()
stop_all() {
	trap - INT TERM EXIT
	echo
	echo "stopping ..."
	# Stop the clients first, so NATS is still there while they drain.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

# start NAME COMMAND...: runs a process in the background, with each output
# line prefixed by its name. Ctrl-C reaches the whole process group, so the
# prefixing sed ignores it: it must outlive the service to carry its
# shutdown lines, and a service writing to a closed pipe would die of
# SIGPIPE before draining.
start() {
	local name=$1
	shift
	"$@" > >(trap '' INT TERM && exec sed -u "s/^/[$name] /") 2>&1 &
	pids+=($!)
}

# alive NAME PID: fails with a message when the process has exited.
alive() {
	if ! kill -0 "$2" 2>/dev/null; then
		echo "$1 exited during start-up; see its output above" >&2
		exit 1
	fi
}

# wait_for NAME SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
	local name=$1 seconds=$2
	shift 2
	for ((i = 0; i < seconds * 10; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "$name did not become ready within ${seconds}s" >&2
	exit 1
}

nats_hostport=${GENRELAY_NATS_URL#*://}
nats_hostport=${nats_hostport%%,*}

nats_port_open() {
	bash -c "exec 3<>/dev/tcp/${nats_hostport%:*}/${nats_hostport##*:}" 2>/dev/null
}
if nats_port_open; then
	echo "something already listens on $nats_hostport: stop it, or set GENRELAY_NATS_URL" >&2
	exit 1
fi

start nats bin/devnats
wait_for nats 30 nats_port_open
alive nats "${pids[0]}"

start moderation env GENRELAY_HTTP_ADDR="$moderation_addr" bin/moderation
start ingress env GENRELAY_HTTP_ADDR="$ingress_addr" bin/ingress
start printclean bin/printclean
wait_for ingress 60 env GENRELAY_HTTP_ADDR="$ingress_addr" bin/ingress -healthcheck
wait_for moderation 60 env GENRELAY_HTTP_ADDR="$moderation_addr" bin/moderation -healthcheck
alive moderation "${pids[1]}"
alive ingress "${pids[2]}"

key=${GENRELAY_WEBHOOK_KEYS#*:}
key=${key%%,*}
cat <<TEXT

genrelay is running. NATS: $GENRELAY_NATS_URL  ingress: http://$ingress_addr
Development webhook key (label "dev"): $key

Send the sample callback:
  curl -i -X POST http://$ingress_addr/v1/webhooks/leonardo \\
    -H 'Content-Type: application/json' \\
    -H 'Authorization: Bearer $key' \\
    --data-binary @pkg/leonardo/leonardotest/fixtures/image_generation_complete.json

Watch the results: nats --server $GENRELAY_NATS_URL sub 'genrelay.>'
Press Ctrl-C to stop.

TEXT

# Ctrl-C reaches every process, and each exits 0 after a clean shutdown.
# Any other exit means one of them failed.
status=0
wait -n "${pids[@]}" || status=$?
if ((status != 0)); then
	echo "a process exited with status $status; stopping the rest" >&2
	exit 1
fi
