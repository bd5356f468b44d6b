#!/bin/sh
# The entrypoint of the fbl-postgres image (docker/postgres/Dockerfile). Runs as root:
#  1. waits for POSTGRES_PASSWORD_FILE (the compose stack's "init" service writes it;
#     root reads it whatever its owner: it stays mode 0600);
#  2. on the first start, initdb in $PGDATA (UTF-8, C.UTF-8; scram-sha-256 over TCP from
#     anywhere, trust on the Unix socket, which only this container reaches);
#  3. on every start, on a server that listens on the Unix socket only: the role
#     POSTGRES_USER (not a superuser) with the password in the file (so the file is always
#     the truth), the database POSTGRES_DB it owns, and the NOLOGIN roles that
#     POSTGRES_NOLOGIN_ROLES names, each ROLE or ROLE:PARENT (made a member of PARENT), as
#     fbl's schema grants to fbl_analyst, fbl_writer and fbl_security (a member of
#     fbl_analyst) but may not create them;
#  4. exec postgres as the user postgres, listening on every address.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=fbl}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD_FILE:=/run/fbl-secret/password}"
: "${POSTGRES_NOLOGIN_ROLES:=}"
: "${POSTGRES_WAIT_SECONDS:=300}"
sock=/run/postgresql

# PID 1 gets no default signal handling: stop on SIGTERM/SIGINT until the exec below.
trap 'exit 143' TERM
trap 'exit 130' INT
log() { echo "fbl-postgres: $*" >&2; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

waited=0
while [ ! -s "$POSTGRES_PASSWORD_FILE" ]; do
    [ "$waited" = 0 ] && log "waiting for $POSTGRES_PASSWORD_FILE"
    if [ "$waited" -ge "$((POSTGRES_WAIT_SECONDS * 2))" ]; then
        log "no $POSTGRES_PASSWORD_FILE after ${POSTGRES_WAIT_SECONDS}s"
        exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
done

install -d -o postgres -g postgres -m 0700 "$PGDATA"
install -d -o postgres -g postgres -m 2775 "$sock"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initdb in $PGDATA"
    as_postgres initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    printf '%s\n' "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    cat >>"$PGDATA/postgresql.conf" <<CONF
# fbl-postgres: the container's settings (listen_addresses is set on the command line)
unix_socket_directories = '$sock'
password_encryption = scram-sha-256
log_line_prefix = '%m [%p] %q%u@%d '
CONF
fi

# The role and the database, on a server that no other container can reach yet (and
# that the healthcheck, pg_isready on $sock, does not take for the real one).
initsock=$sock/init
install -d -o postgres -g postgres -m 0700 "$initsock"
as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$initsock" \
    -w -t 120 -s start
# The password goes through the environment into a psql variable (\getenv): never on a
# command line, and quoted by psql (:'pw').
FBL_PG_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE") setpriv --reuid=postgres --regid=postgres \
    --init-groups psql -X -q -v ON_ERROR_STOP=1 \
    -h "$initsock" -U postgres -d postgres -v user="$POSTGRES_USER" -v db="$POSTGRES_DB" \
    -v nologin="$POSTGRES_NOLOGIN_ROLES" <<'SQL'
\getenv pw FBL_PG_PASSWORD
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') AS make_role \gset
\if :make_role
CREATE ROLE :"user" LOGIN;
\endif
ALTER ROLE :"user" PASSWORD :'pw';
\unset pw
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') AS make_db \gset
\if :make_db
CREATE DATABASE :"db" OWNER :"user";
\endif
SELECT format('CREATE ROLE %I NOLOGIN', split_part(r, ':', 1))
  FROM regexp_split_to_table(:'nologin', '[\s,]+') AS r
 WHERE r <> '' AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = split_part(r, ':', 1)) \gexec
SELECT format('GRANT %I TO %I', split_part(r, ':', 2), split_part(r, ':', 1))
  FROM regexp_split_to_table(:'nologin', '[\s,]+') AS r
 WHERE split_part(r, ':', 2) <> ''
   AND NOT pg_has_role(split_part(r, ':', 1), split_part(r, ':', 2), 'MEMBER') \gexec
SQL
as_postgres pg_ctl -D "$PGDATA" -m fast -w -s stop
log "ready: database $POSTGRES_DB, role $POSTGRES_USER (password from $POSTGRES_PASSWORD_FILE)"
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
    -c listen_addresses='*'
