#!/usr/bin/env bash
# Makes sure the servers the integration tests talk to are up on this
# machine, the way the project's machines run them:
#   Postgres  127.0.0.1:5432, trust auth over local TCP, a database "test"
#   Redis     127.0.0.1:6379, keeping nothing on disk
#   NATS      127.0.0.1:4222 with JetStream
# When all answer, it only looks (well under a second, no root needed).
# Otherwise it installs the missing Debian packages (postgresql,
# redis-server, nats-server; apt-get update first), starts what is down,
# and for Postgres adds trust lines for 127.0.0.1 and ::1 to pg_hba.conf
# and creates the "test" database when they are missing. It never stops or
# restarts a running server. Needs root or sudo for the slow path.
set -euo pipefail

readonly pg_port=5432 redis_port=6379 nats_port=4222
readonly pg_check_dsn="host=127.0.0.1 port=$pg_port user=postgres dbname=test connect_timeout=5"
readonly hba_marker="# switchboard scripts/services.sh: trust local TCP for the tests"
readonly start_timeout=60 # seconds for a started server to answer

say() { echo "services: $*"; }
die() {
	echo "services: $*" >&2
	exit 1
}

# as_root runs a command as root, through sudo when needed.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root or sudo to run: $*"
	fi
}

# as_postgres runs a command as the postgres user, from a directory that
# user may enter.
as_postgres() { (cd / && as_root runuser -u postgres -- "$@"); }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

pg_ok() {
	command -v psql >/dev/null 2>&1 &&
		psql -X -w -q -At "$pg_check_dsn" -c 'SELECT 1' >/dev/null 2>&1
}

redis_ok() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; printf "PING\r\n" >&3; IFS= read -r l <&3; [[ $l == +PONG* ]]' \
		"$redis_port" 2>/dev/null
}

# nats_ok reads the INFO line a NATS server greets with; JetStream must be on.
nats_ok() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; IFS= read -r l <&3; [[ $l == INFO* && $l == *"\"jetstream\":true"* ]]' \
		"$nats_port" 2>/dev/null
}

# wait_until polls a check until it passes or start_timeout runs out.
wait_until() {
	local what="$1" deadline=$((SECONDS + start_timeout))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || die "$what did not come up within ${start_timeout}s"
		sleep 0.2
	done
}

updated=""
# ensure_packages installs those of the named Debian packages that are
# missing, after one apt-get update per run.
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$updated" ]; then
		as_root apt-get update -q
		updated=1
	fi
	as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

start_postgres() {
	ensure_packages postgresql
	local ver
	ver="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
	if [ -z "$ver" ] || [ ! -d "/etc/postgresql/$ver/main" ]; then
		ver="${ver:-$(ls /usr/lib/postgresql | sort -V | tail -n 1)}"
		say "creating the Postgres $ver cluster main"
		as_root pg_createcluster "$ver" main
	fi
	say "starting Postgres $ver/main"
	# pg_ctlcluster fails on a cluster that is already running (on another
	# port, say); status tells that case from a real failure.
	as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start ||
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null ||
		die "could not start Postgres $ver/main"
	wait_until "Postgres on 127.0.0.1:$pg_port" port_open "$pg_port"
	wait_until "Postgres" as_postgres psql -X -q -At -o /dev/null -c 'SELECT 1'
}

# configure_postgres gives local TCP trust auth and creates the database
# "test", each only when missing, over the server's Unix socket as the
# postgres user (Debian's peer auth).
configure_postgres() {
	local hba
	hba="$(as_postgres psql -X -At -c 'SHOW hba_file')" || die "cannot reach Postgres as the postgres user over its socket"
	if ! as_root grep -qF "$hba_marker" "$hba"; then
		say "trusting local TCP connections in $hba"
		# First match wins, so the lines go first.
		as_root sed -i "1i $hba_marker\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust" "$hba"
		as_postgres psql -X -q -At -c 'SELECT pg_reload_conf()' >/dev/null
	fi
	if [ -z "$(as_postgres psql -X -At -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" ]; then
		say "creating the database test"
		as_postgres createdb test
	fi
}

start_redis() {
	ensure_packages redis-server
	as_root mkdir -p /var/lib/redis /var/log/redis
	say "starting Redis"
	as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save '' --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	wait_until "Redis on 127.0.0.1:$redis_port" redis_ok
}

start_nats() {
	ensure_packages nats-server
	as_root mkdir -p /var/lib/nats-server
	say "starting NATS with JetStream"
	as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
		-a 127.0.0.1 -p "$nats_port" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
	wait_until "NATS on 127.0.0.1:$nats_port" nats_ok
}

if ! pg_ok; then
	port_open "$pg_port" || start_postgres
	command -v psql >/dev/null 2>&1 || ensure_packages postgresql-client
	pg_ok || configure_postgres
	wait_until "Postgres with trust auth and the database test" pg_ok
fi

if ! redis_ok; then
	port_open "$redis_port" && die "127.0.0.1:$redis_port is taken by something that does not answer PING like Redis"
	start_redis
fi

if ! nats_ok; then
	port_open "$nats_port" && die "NATS on 127.0.0.1:$nats_port runs without JetStream (or is not NATS); restart it with -js"
	start_nats
fi

say "Postgres (127.0.0.1:$pg_port, database test), Redis (127.0.0.1:$redis_port) and NATS with JetStream (127.0.0.1:$nats_port) are up"
