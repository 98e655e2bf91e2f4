#!/usr/bin/env bash
# ClearStem's two database roles (README "Database roles"): clearstem_owner owns the database and
# every table and runs migrations; clearstem_app, the runtime role, owns nothing and gets its
# privileges from `manage.py migrate` (as the owner) / `manage.py setup_db_roles`.
# The postgres image runs this once, as its superuser, when the data volume is created. It is
# idempotent: on an existing volume (where the app used to run as the superuser) run it by hand,
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-clearstem-roles.sh
# then `docker compose run --rm migrate`.
set -e
: "${CLEARSTEM_DB_OWNER_PASSWORD:?set CLEARSTEM_DB_OWNER_PASSWORD}" "${CLEARSTEM_DB_PASSWORD:?set CLEARSTEM_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-clearstem}" \
  -v owner_pw="$CLEARSTEM_DB_OWNER_PASSWORD" -v app_pw="$CLEARSTEM_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE clearstem_owner' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clearstem_owner') \gexec
SELECT 'CREATE ROLE clearstem_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clearstem_app') \gexec
ALTER ROLE clearstem_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'owner_pw';
ALTER ROLE clearstem_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'app_pw';
SELECT format('ALTER DATABASE %I OWNER TO clearstem_owner', current_database()) \gexec
ALTER SCHEMA public OWNER TO clearstem_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- tables made by an earlier setup (the app as the superuser) go to the owner; their identity
-- sequences follow them
SELECT format('ALTER TABLE public.%I OWNER TO clearstem_owner', tablename)
  FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'clearstem_owner' \gexec
SELECT format('ALTER SEQUENCE public.%I OWNER TO clearstem_owner', sequencename)
  FROM pg_sequences s WHERE schemaname = 'public' AND sequenceowner <> 'clearstem_owner'
   AND NOT EXISTS (SELECT FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
                   WHERE c.relname = s.sequencename AND d.deptype = 'i') \gexec
SELECT format('ALTER FUNCTION %s OWNER TO clearstem_owner', p.oid::regprocedure)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proowner <> 'clearstem_owner'::regrole \gexec
SQL
