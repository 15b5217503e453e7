#!/bin/sh
# Start Redis with one ACL user per service, then exec redis-server (same pid).
#
#   start.sh /usr/local/etc/redis/redis.conf [more redis-server options]
#
# Passwords come from REDIS_PASSWORD_<USER> (SENTINEL, PRODUCER, CONSUMER, GATEKEEPER, OPS);
# the ACL file (REDIS_ACL_FILE, default /data/users.acl) holds only their SHA-256 hashes.
# Every user reaches only the project's keys (ta:*) and no @dangerous or @admin command
# (FLUSHALL, CONFIG, KEYS, DEBUG, SHUTDOWN, ...); the ops user (CLI, runbook, backups) may also
# read INFO, SLOWLOG and LATENCY and start an AOF rewrite. The default user is off.
set -eu

acl_file=${REDIS_ACL_FILE:-/data/users.acl}
users="sentinel producer consumer gatekeeper ops"
permissions="~ta:* &ta:* +@all -@dangerous -@admin"

umask 077
tmp="$acl_file.tmp"
: >"$tmp"
for user in $users; do
    var="REDIS_PASSWORD_$(echo "$user" | tr '[:lower:]' '[:upper:]')"
    eval "password=\${$var:-}"
    if [ -z "$password" ]; then
        echo "redis start: $var is empty; set it in .env (see deploy/docs/DEPLOYMENT.md)" >&2
        rm -f "$tmp"
        exit 1
    fi
    hash=$(printf '%s' "$password" | sha256sum | cut -d ' ' -f 1)
    extra=""
    if [ "$user" = ops ]; then
        extra=" +info +slowlog +latency +bgrewriteaof"
    fi
    echo "user $user on #$hash $permissions$extra" >>"$tmp"
done
echo "user default off resetpass -@all" >>"$tmp"
mv "$tmp" "$acl_file"

exec redis-server "$@" --aclfile "$acl_file"
