#!/bin/sh
# The entrypoint of the fbl-rspamd image (docker/rspamd/Dockerfile). Runs as root:
#  1. waits for RSPAMD_PASSWORD_FILE (the compose stack's "init" service writes it; root
#     reads it whatever its owner: it stays mode 0600);
#  2. writes its hash (rspamadm pw) as the controller's password and enable_password to
#     /etc/rspamd/override.d/worker-controller.inc, so the configuration never holds the
#     password itself and a new password file takes effect at the next start;
#  3. exec rspamd in the foreground as the user _rspamd (logs: see local.d/logging.inc).
set -eu
: "${RSPAMD_PASSWORD_FILE:=/run/fbl-secret/password}"
: "${RSPAMD_WAIT_SECONDS:=300}"
# PID 1 gets no default signal handling: stop on SIGTERM/SIGINT until the exec below.
trap 'exit 143' TERM
trap 'exit 130' INT
log() { echo "fbl-rspamd: $*" >&2; }

waited=0
while [ ! -s "$RSPAMD_PASSWORD_FILE" ]; do
    [ "$waited" = 0 ] && log "waiting for $RSPAMD_PASSWORD_FILE"
    if [ "$waited" -ge "$((RSPAMD_WAIT_SECONDS * 2))" ]; then
        log "no $RSPAMD_PASSWORD_FILE after ${RSPAMD_WAIT_SECONDS}s"
        exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
done

# rspamadm pw reads no standard input: the password is on its command line for that
# moment, visible inside this container only.
hash=$(rspamadm pw --encrypt --password "$(cat "$RSPAMD_PASSWORD_FILE")")
case $hash in
'$'*) ;;
*) log "rspamadm pw gave no hash"; exit 1 ;;
esac
install -d -m 0755 /etc/rspamd/override.d
umask 027
cat >/etc/rspamd/override.d/worker-controller.inc.new <<INC
# Written by the fbl-rspamd entrypoint from $RSPAMD_PASSWORD_FILE at every start.
password = "$hash";
enable_password = "$hash";
INC
chgrp _rspamd /etc/rspamd/override.d/worker-controller.inc.new
mv /etc/rspamd/override.d/worker-controller.inc.new /etc/rspamd/override.d/worker-controller.inc
install -d -o _rspamd -g _rspamd -m 0750 /run/rspamd /var/lib/rspamd
exec setpriv --reuid=_rspamd --regid=_rspamd --init-groups \
    rspamd -f -c /etc/rspamd/rspamd.conf "$@"
