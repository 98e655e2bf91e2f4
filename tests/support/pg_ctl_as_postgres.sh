#!/usr/bin/env bash
# pg_ctl refuses to run as root: run it as the postgres user then.
PG_CTL=${CLEARSTEM_PG_CTL:-$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$PG_CTL" ]; then echo "pg_ctl not found (install the postgresql package)" >&2; exit 127; fi
if [ "$(id -u)" = 0 ]; then
  cd / && exec runuser -u postgres -- "$PG_CTL" "$@"
fi
exec "$PG_CTL" "$@"
