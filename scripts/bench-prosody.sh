#!/usr/bin/env bash
# The measurements of docs/performance.md against Debian's Prosody, run as a
# child process with its own configuration on loopback ports (never the
# system service): no mod_limits (Debian's config throttles clients to
# 10 kB/s), epoll, TLS offered but not required, PLAIN allowed in the clear
# for the no-TLS runs, a self-signed certificate made here.
#
#   apt-get install prosody    # Debian 12: 0.12
#   scripts/bench-prosody.sh
#
# Settings: those of scripts/bench-lib.sh, PORT (27222), OUT.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/bench-lib.sh"
PORT=${PORT:-27222}
OUT=${OUT:-/tmp/xmppbench-prosody-$(date -u +%Y%m%dT%H%M%SZ)}
PASSWORD=bench-secret
NAME=Prosody
TLS_MECH=SCRAM-SHA-1
IDLE_MECH=SCRAM-SHA-1
LOGIN_MECHS="PLAIN SCRAM-SHA-1"
command -v prosody >/dev/null || { echo "prosody is not installed (apt-get install prosody)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
server_stop() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}
trap 'server_stop; rm -rf "$work"' EXIT
mkdir -p "$OUT" "$work/data" "$work/certs"

say "building xmppbench into $work/bin"
(cd "$root" && go build -o "$work/bin/xmppbench" ./cmd/xmppbench)
xb=$work/bin/xmppbench
VERSION="$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo '?') (Debian package, one process, single-threaded)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
	-keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
cfg=$work/prosody.cfg.lua
cat >"$cfg" <<CFG
run_as_root = true
daemonize = false
pidfile = "$work/prosody.pid"
data_path = "$work/data"
log = { warn = "$OUT/server.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
legacy_ssl_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
admin_socket = "$work/admin.sock"
network_backend = "epoll"
-- No "limits": Debian's configuration throttles every client.
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
authentication = "internal_hashed"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
certificates = "$work/certs"
ssl = { certificate = "$work/cert.pem"; key = "$work/key.pem" }
VirtualHost "localhost"
CFG

accounts=$(accounts_needed)
# prosodyctl register is one Lua start per account (about 70 ms): register
# user1 with it, and give the others a copy of its stored SCRAM keys, which
# do not depend on the user name (same password, same salt).
say "provisioning $accounts accounts (prosodyctl register user1, copies for the rest)"
prosodyctl --config "$cfg" register user1 localhost "$PASSWORD" 2>/dev/null
acc=$work/data/localhost/accounts
for i in $(seq 2 "$accounts"); do cp "$acc/user1.dat" "$acc/user$i.dat"; done

server_start() {
	say "starting prosody on 127.0.0.1:$PORT ($1)"
	prosody --config "$cfg" -F >>"$OUT/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		kill -0 "$server_pid" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "prosody did not listen on $PORT" >&2
	exit 1
}

run_measurements
