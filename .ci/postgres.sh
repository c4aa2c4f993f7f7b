#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on loopback for the tests, from Debian's packages;
# no system service. Source it: it exports DEVMSG_TEST_POSTGRES (an admin URL on the
# cluster's socket, trusted) and PGDATA_DEVMSG (stop it with `.ci/postgres.sh stop`).
set -euo pipefail

if [[ "${1:-}" == "stop" ]]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    su postgres -s /bin/sh -c "$bin/pg_ctl -D '$PGDATA_DEVMSG' -m fast stop" >/dev/null
    exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
# Debian's package may start its own cluster; this run does not need it.
service postgresql stop >/dev/null 2>&1 || true

dir=$(mktemp -d /tmp/devmsg-pg.XXXXXX)
chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null"
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -l '$dir/log' -w -o \"-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >/dev/null"
export PGDATA_DEVMSG="$dir/data"
export DEVMSG_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$port/postgres?host=$dir"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (socket $dir)"
