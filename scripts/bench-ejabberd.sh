#!/usr/bin/env bash
# The measurements of docs/performance.md against Debian's ejabberd, run
# as a child node with its own configuration, spool and ports (never the
# system service): c2s shaper off (Debian's config limits clients to
# 3000 B/s), listen backlog 128 (Debian's is 5), STARTTLS offered but not
# required, passwords stored as Debian stores them (plain, so every SCRAM
# login derives the salted password), accounts made through mod_http_api
# on a loopback port.
#
#   apt-get install ejabberd   # Debian 12: 23.01; stop its service if it runs
#   scripts/bench-ejabberd.sh
#
# Settings: those of scripts/bench-lib.sh, PORT (28222; PORT+1 is the HTTP
# API), OUT.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/bench-lib.sh"
PORT=${PORT:-28222}
API_PORT=$((PORT + 1))
OUT=${OUT:-/tmp/xmppbench-ejabberd-$(date -u +%Y%m%dT%H%M%SZ)}
PASSWORD=bench-secret
NAME=ejabberd
TLS_MECH=SCRAM-SHA-1
IDLE_MECH=SCRAM-SHA-1
LOGIN_MECHS="PLAIN SCRAM-SHA-1"
NODE=xmppbench$$@localhost
command -v ejabberdctl >/dev/null || { echo "ejabberd is not installed (apt-get install ejabberd)" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"
server_pid=
# ejabberdctl run by root switches to the ejabberd user with su, which
# resets the open-file limit to PAM's default (1024): the node would
# refuse connections past about 1,000. Switching with setpriv keeps ours.
ctl() {
	local as=()
	if [ "$(id -u)" = 0 ]; then
		as=(setpriv --reuid ejabberd --regid ejabberd --init-groups env HOME=/var/lib/ejabberd)
	fi
	"${as[@]}" ejabberdctl --ctl-config "$work/ejabberdctl.cfg" --config "$work/ejabberd.yml" --spool "$work/spool" \
		--logs "$work/logs" --node "$NODE" "$@"
}
server_stop() {
	if [ -n "$server_pid" ]; then
		ctl stop >/dev/null 2>&1 || kill "$server_pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
		kill "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}
trap 'server_stop; rm -rf "$work"' EXIT
mkdir -p "$OUT" "$work/spool" "$work/logs"

say "building xmppbench into $work/bin"
(cd "$root" && go build -o "$work/bin/xmppbench" ./cmd/xmppbench)
xb=$work/bin/xmppbench
VERSION="$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo '?') (Debian package, one node)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
	-keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/server.pem"
cat >"$work/ejabberdctl.cfg" <<CFG
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$work/ejabberd.pid
CFG
cat >"$work/ejabberd.yml" <<CFG
hosts:
  - localhost
loglevel: warning
certfiles:
  - $work/server.pem
listen:
  -
    port: $PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: c2s_shaper
    access: c2s
    starttls: true
    backlog: 128
  -
    port: $API_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
shaper_rules:
  c2s_shaper: none
  max_user_sessions: 10
api_permissions:
  "loopback may provision":
    from:
      - mod_http_api
    who:
      acl: loopback
    what: "*"
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_http_api: {}
CFG
chown -R ejabberd: "$work"

server_start() {
	say "starting ejabberd node $NODE on 127.0.0.1:$PORT ($1)"
	ctl foreground >>"$OUT/server.log" 2>&1 &
	local launcher=$!
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			# The Erlang VM is a descendant of the launcher (su, sh, erl):
			# the beam process whose command line names this script's node.
			server_pid=$(pgrep -f "beam.smp.* -s?name $NODE" | head -1)
			[ -n "$server_pid" ] || { echo "no beam.smp process for $NODE" >&2; exit 1; }
			return 0
		fi
		kill -0 "$launcher" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "ejabberd did not listen on $PORT" >&2
	exit 1
}

accounts=$(accounts_needed)
server_start provision
say "provisioning $accounts accounts through mod_http_api"
seq 1 "$accounts" | xargs -P 4 -I{} curl -sf -o /dev/null -X POST "http://127.0.0.1:$API_PORT/api/register" \
	-H 'Content-Type: application/json' -d "{\"user\":\"user{}\",\"host\":\"localhost\",\"password\":\"$PASSWORD\"}"
server_stop

run_measurements
