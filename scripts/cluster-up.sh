#!/usr/bin/env bash
# Starts a local Switchboard cluster as separate background processes:
# roster, presence, two routers, two c2s nodes and one s2s node, against the machine's
# Postgres, Redis and NATS. It waits until every process answers /readyz,
# prints where each listens, and returns. scripts/cluster-down.sh stops it.
#
# Everything is configurable through the environment, so that tests can run
# clusters side by side on one machine:
#   CLUSTER_DIR      state directory: bin/, logs/, pids/, pki/, data/ (.cluster)
#   CLUSTER_PREFIX   NATS subject prefix, Redis key prefix and Postgres schema
#                    name of this cluster (sbdev)
#   CLUSTER_PORT     first of the internal ports (gRPC and health) (17100)
#   C2S1_LISTEN      first c2s node, STARTTLS (127.0.0.1:5222)
#   C2S2_LISTEN      second c2s node, STARTTLS (127.0.0.1:5322)
#   S2S_LISTEN       s2s node, server-to-server streams (127.0.0.1:CLUSTER_PORT+19)
#   CLUSTER_DOMAIN   XMPP domain (localhost)
#   NATS_URL         NATS server (nats://127.0.0.1:4222)
#   REDIS_ADDR       Redis server (127.0.0.1:6379)
#   POSTGRES_DSN     Postgres database (postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
#   CLUSTER_TLS      1: service-to-service gRPC over mutual TLS with a CA made
#                    in pki/ (default when openssl is installed); 0: plaintext
#   CLUSTER_TIMEOUT  seconds to wait for every process to be ready (60)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CLUSTER_DIR:-$root/.cluster}"
prefix="${CLUSTER_PREFIX:-sbdev}"
port="${CLUSTER_PORT:-17100}"
c2s1="${C2S1_LISTEN:-127.0.0.1:5222}"
c2s2="${C2S2_LISTEN:-127.0.0.1:5322}"
domain="${CLUSTER_DOMAIN:-localhost}"
nats_url="${NATS_URL:-nats://127.0.0.1:4222}"
redis_addr="${REDIS_ADDR:-127.0.0.1:6379}"
pg_dsn="${POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
timeout="${CLUSTER_TIMEOUT:-60}"
if [[ -z "${CLUSTER_TLS:-}" ]]; then
	if command -v openssl >/dev/null; then CLUSTER_TLS=1; else CLUSTER_TLS=0; fi
fi

if [[ ! "$prefix" =~ ^[a-z][a-z0-9_]{0,40}$ ]]; then
	echo "cluster-up: CLUSTER_PREFIX \"$prefix\" must be lower-case letters, digits and '_', starting with a letter" >&2
	exit 2
fi

mkdir -p "$dir"/{bin,logs,pids,data}
for f in "$dir"/pids/*.pid; do
	[[ -e "$f" ]] || continue
	if kill -0 "$(cat "$f")" 2>/dev/null; then
		echo "cluster-up: $(basename "$f" .pid) is already running (pid $(cat "$f")); run scripts/cluster-down.sh first" >&2
		exit 1
	fi
	rm -f "$f"
done

echo "==> building into $dir/bin"
for svc in roster presence router c2s s2s; do
	(cd "$root/services/$svc" && go build -o "$dir/bin/$svc" "./cmd/$svc")
done
(cd "$root/cmd/switchboard" && go build -o "$dir/bin/switchboard" .)
(cd "$root/cmd/xmppctl" && go build -o "$dir/bin/xmppctl" .)

tls_args=()
if [[ "$CLUSTER_TLS" == 1 ]]; then
	pki="$dir/pki"
	if [[ ! -s "$pki/node.crt" ]]; then
		echo "==> making a CA and a node certificate in $pki"
		mkdir -p "$pki"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
			-subj "/CN=switchboard local cluster CA" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=switchboard node" -keyout "$pki/node.key" -out "$pki/node.csr" 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$pki/node.ext"
		openssl x509 -req -in "$pki/node.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
			-days 365 -extfile "$pki/node.ext" -out "$pki/node.crt" 2>/dev/null
		chmod 600 "$pki"/*.key
	fi
	tls_args=(--grpc-tls-cert "$pki/node.crt" --grpc-tls-key "$pki/node.key" --grpc-tls-ca "$pki/ca.crt")
fi

roster_grpc="127.0.0.1:$((port + 0))"
roster_internal="127.0.0.1:$((port + 1))"
presence_grpc="127.0.0.1:$((port + 2))"
health_roster="127.0.0.1:$((port + 10))"
health_presence="127.0.0.1:$((port + 11))"
health_router1="127.0.0.1:$((port + 12))"
health_router2="127.0.0.1:$((port + 13))"
health_c2s1="127.0.0.1:$((port + 14))"
health_c2s2="127.0.0.1:$((port + 15))"
health_s2s="127.0.0.1:$((port + 18))"
admin1="127.0.0.1:$((port + 3))"
admin2="127.0.0.1:$((port + 4))"
s2s_listen="${S2S_LISTEN:-127.0.0.1:$((port + 19))}"
common=(--log-format json --shutdown-timeout 10s --startup-timeout 30s "${tls_args[@]}")
bus=(--nats-url "$nats_url" --subject-prefix "$prefix" --domain "$domain")

started=()
# start NAME BINARY ARGS...: runs the binary in its own session, in the
# background, logging to logs/NAME.log.
start() {
	local name="$1" bin="$2"
	shift 2
	setsid "$dir/bin/$bin" "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
	echo $! >"$dir/pids/$name.pid"
	started+=("$name")
}

# ready NAME HEALTH: waits for NAME's /readyz; on failure prints its log
# and stops what was started.
ready() {
	local name="$1" addr="$2" deadline=$((SECONDS + timeout))
	while ! curl -fsS -o /dev/null "http://$addr/readyz" 2>/dev/null; do
		if ! kill -0 "$(cat "$dir/pids/$name.pid")" 2>/dev/null || ((SECONDS >= deadline)); then
			echo "cluster-up: $name did not become ready (log: $dir/logs/$name.log):" >&2
			tail -n 20 "$dir/logs/$name.log" >&2 || true
			CLUSTER_DIR="$dir" "$root/scripts/cluster-down.sh" >&2 || true
			exit 1
		fi
		sleep 0.1
	done
}

echo "==> starting (prefix $prefix)"
start roster roster --grpc-listen "$roster_grpc" --internal-grpc-listen "$roster_internal" \
	--health-listen "$health_roster" --postgres-dsn "$pg_dsn" --postgres-schema "$prefix" \
	--node-id roster-1 "${common[@]}"
start presence presence --grpc-listen "$presence_grpc" --health-listen "$health_presence" \
	--redis-addr "$redis_addr" --redis-prefix "$prefix:presence:" --nats-url "$nats_url" --subject-prefix "$prefix" \
	--node-id presence-1 "${common[@]}"
ready roster "$health_roster"
ready presence "$health_presence"

# The admin API is on both routers, with one token made here; its
# certificate is the node certificate when there is a CA (xmppctl
# --ca-file pki/ca.crt), else one each router makes at start.
admin_token="$dir/admin-token"
if [[ ! -s "$admin_token" ]]; then
	(umask 077 && printf 'cluster %s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')" >"$admin_token")
fi
admin_args=(--admin-token-file "$admin_token")
if [[ "$CLUSTER_TLS" == 1 ]]; then
	admin_args+=(--admin-cert-file "$pki/node.crt" --admin-key-file "$pki/node.key")
fi
svc=(--roster-grpc "$roster_grpc" --roster-internal-grpc "$roster_internal" --presence-grpc "$presence_grpc")
start router-1 router "${bus[@]}" "${svc[@]}" --health-listen "$health_router1" --node-id router-1 \
	--admin-listen "$admin1" "${admin_args[@]}" "${common[@]}"
start router-2 router "${bus[@]}" "${svc[@]}" --health-listen "$health_router2" --node-id router-2 \
	--admin-listen "$admin2" "${admin_args[@]}" "${common[@]}"
ready router-1 "$health_router1"
ready router-2 "$health_router2"

c2s=(--roster-internal-grpc "$roster_internal" --presence-grpc "$presence_grpc" --data-dir "$dir/data" --c2s-direct-tls-listen off)
start c2s-1 c2s "${bus[@]}" "${c2s[@]}" --c2s-listen "$c2s1" --health-listen "$health_c2s1" --node-id c2s-1 "${common[@]}"
start c2s-2 c2s "${bus[@]}" "${c2s[@]}" --c2s-listen "$c2s2" --health-listen "$health_c2s2" --node-id c2s-2 "${common[@]}"
ready c2s-1 "$health_c2s1"
ready c2s-2 "$health_c2s2"

# s2s has no gRPC, hence no gRPC TLS settings; its dialback secret and
# self-signed certificate are made in data/.
start s2s-1 s2s "${bus[@]}" --s2s-listen "$s2s_listen" --data-dir "$dir/data" --health-listen "$health_s2s" \
	--node-id s2s-1 --log-format json --shutdown-timeout 10s --startup-timeout 30s
ready s2s-1 "$health_s2s"

# For scripts and tests: what a client of this cluster needs.
{
	echo "CLUSTER_DOMAIN=$domain"
	echo "C2S1_LISTEN=$c2s1"
	echo "C2S2_LISTEN=$c2s2"
	echo "S2S_LISTEN=$s2s_listen"
	echo "ROSTER_GRPC=$roster_grpc"
	echo "PRESENCE_GRPC=$presence_grpc"
	echo "HEALTH_ROSTER=$health_roster"
	echo "HEALTH_PRESENCE=$health_presence"
	echo "HEALTH_ROUTER1=$health_router1"
	echo "HEALTH_ROUTER2=$health_router2"
	echo "HEALTH_C2S1=$health_c2s1"
	echo "HEALTH_C2S2=$health_c2s2"
	echo "HEALTH_S2S=$health_s2s"
	echo "XMPPCTL_SERVER=$admin1"
	echo "XMPPCTL_TOKEN_FILE=$admin_token"
	if [[ "$CLUSTER_TLS" == 1 ]]; then echo "XMPPCTL_CA_FILE=$pki/ca.crt"; fi
	if [[ "$CLUSTER_TLS" == 1 ]]; then
		echo "SWITCHBOARD_GRPC_TLS_CERT=$pki/node.crt"
		echo "SWITCHBOARD_GRPC_TLS_KEY=$pki/node.key"
		echo "SWITCHBOARD_GRPC_TLS_CA=$pki/ca.crt"
	fi
} >"$dir/cluster.env"

cat <<END

Switchboard cluster is up (domain $domain, prefix $prefix, gRPC mTLS $([[ "$CLUSTER_TLS" == 1 ]] && echo on || echo off)):
  c2s-1      xmpp $c2s1   health http://$health_c2s1/readyz
  c2s-2      xmpp $c2s2   health http://$health_c2s2/readyz
  s2s-1      xmpp-server $s2s_listen   health http://$health_s2s/readyz
  router-1   admin $admin1   health http://$health_router1/readyz
  router-2   admin $admin2   health http://$health_router2/readyz
  roster     gRPC $roster_grpc (AccountService), internal $roster_internal (CredentialService)   health http://$health_roster/readyz
  presence   gRPC $presence_grpc   health http://$health_presence/readyz
  backends   NATS $nats_url   Redis $redis_addr (keys $prefix:presence:*)   Postgres schema "$prefix"
  logs       $dir/logs/<name>.log
  pids       $dir/pids/<name>.pid
  settings   $dir/cluster.env

Add an account (the admin API of either router; xmppctl asks for the password):
  set -a; . $dir/cluster.env; set +a; $dir/bin/xmppctl account create alice@$domain$( [[ "$CLUSTER_TLS" == 1 ]] || printf ' --insecure-skip-verify')
Stop it: make cluster-down
END
