#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the tests: Debian's server binaries, a data
# directory of its own, a free port, a random password.
#   infra/postgres/test-cluster.sh start DIR   prints MASH_TEST_POSTGRES_OWNER_URL=... (the schema owner)
#                                              and MASH_TEST_POSTGRES_URL=... (the processes' role)
#   infra/postgres/test-cluster.sh stop DIR
#   infra/postgres/test-cluster.sh pause|resume DIR   stop the server and start it again on its port
#                                                    (a fault test's database outage)
set -euo pipefail
action=${1:?usage: test-cluster.sh start|stop DIR}
dir=${2:?usage: test-cluster.sh start|stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "test-cluster: PostgreSQL server not installed: apt-get install -y postgresql" >&2
  exit 2
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_postgres bash -c "printf '%s\n' '$password' > '$dir/.pw' && chmod 600 '$dir/.pw'"
    echo "$port" > "$dir/.port"
    as_postgres "$bin/initdb" -D "$dir/data" -U mash --pwfile="$dir/.pw" -A scram-sha-256 >"$dir/initdb.log"
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    # The schema owner (migrations: `mash db upgrade`) and the processes' role, which owns nothing
    # and is granted least privilege by `mash db upgrade`: the tests run the hub as it.
    owner_pw=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    runtime_pw=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    PGPASSWORD=$password "$bin/psql" -q -h 127.0.0.1 -p "$port" -U mash -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE mash_owner LOGIN PASSWORD '$owner_pw'" \
      -c "CREATE ROLE mash_runtime LOGIN PASSWORD '$runtime_pw'" >/dev/null
    PGPASSWORD=$password "$bin/createdb" -h 127.0.0.1 -p "$port" -U mash -O mash_owner mash_test
    PGPASSWORD=$password "$bin/psql" -q -h 127.0.0.1 -p "$port" -U mash -d mash_test -v ON_ERROR_STOP=1 \
      -c "ALTER SCHEMA public OWNER TO mash_owner" >/dev/null
    echo "MASH_TEST_POSTGRES_OWNER_URL=postgresql+psycopg://mash_owner:$owner_pw@127.0.0.1:$port/mash_test"
    echo "MASH_TEST_POSTGRES_URL=postgresql+psycopg://mash_runtime:$runtime_pw@127.0.0.1:$port/mash_test"
    ;;
  stop|pause)
    [ -d "$dir/data" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  resume)
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-p $(cat "$dir/.port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    ;;
  *)
    echo "usage: test-cluster.sh start|stop|pause|resume DIR" >&2
    exit 2
    ;;
esac
