"""Two database roles on PostgreSQL: an owner that runs migrations, a runtime role for the rest.

The owner (DATABASE_OWNER_URL) owns every table and runs `migrate`; the runtime role
(DATABASE_URL: web, workers, reconciler) owns nothing, cannot change the schema, and gets only
what the application needs. On the tables whose rows are evidence it may add and read but never
rewrite or remove:

| table | runtime privileges |
|---|---|
| ledger entries, ledger nodes, tree heads, provenance records, usage events | SELECT, INSERT |
| webhook delivery attempts (a log) | SELECT, INSERT, DELETE (only with their delivery, when a webhook is removed) |
| the ledger state (the append frontier) | SELECT, INSERT, UPDATE (size, frontier) |
| license grants (one row per version) | SELECT, INSERT, UPDATE (status, status_changed_at) |
| a grant's recordings | SELECT, INSERT, DELETE (rows of a grant out of draft: refused by a trigger) |
| a recording's earlier revisions | SELECT, INSERT, DELETE (only with their recording; UPDATE refused by a trigger) |
| ledger verifications | SELECT, INSERT, UPDATE of the verdict columns (final once recorded: a trigger) |
| django_migrations | SELECT |
| every other table | SELECT, INSERT, UPDATE, DELETE |

and USAGE, SELECT on sequences; never TRUNCATE, REFERENCES, TRIGGER or CREATE. Column-level
UPDATE is what `SELECT … FOR UPDATE` needs to lock a row, so the append lock and the grant
lifecycle work while the terms columns cannot be written at all. Triggers (migrations) refuse
the rest to every role, the owner included: row UPDATE/DELETE on the append-only tables,
TRUNCATE on all of the above, a grant going back to draft or changing its terms.

A table a new migration adds gets the ordinary rights when `migrate` (as the owner) re-applies
this policy at its end; add an append-only table to `_restricted()` in the same change.
SQLite, the embedded default, has no roles: none of this applies there.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import environ
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from clearstem.notifications.models import DeliveryAttempt
from licensing.models import LicenseGrant, RecordingRevision, UsageEvent
from provenance.models import LedgerEntry, LedgerNode, LedgerState, LedgerVerification, ProvenanceRecord, TreeHead
from sharedcore.errors import DomainError

ORDINARY = ("SELECT", "INSERT", "UPDATE", "DELETE")
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Privileges:
    table: tuple[str, ...]  # table-level privileges
    update_columns: tuple[str, ...] = ()  # column-level UPDATE

    def describe(self) -> str:
        cols = f", UPDATE ({', '.join(self.update_columns)})" if self.update_columns else ""
        return ", ".join(self.table) + cols


def _columns(model, *names) -> tuple[str, ...]:
    return tuple(model._meta.get_field(n).column for n in names)


def _restricted() -> dict[str, Privileges]:
    """Tables whose runtime privileges are narrower than ORDINARY (db_table -> privileges)."""
    read_add = ("SELECT", "INSERT")
    out = {m._meta.db_table: Privileges(read_add)
           for m in (LedgerEntry, LedgerNode, TreeHead, ProvenanceRecord, UsageEvent)}
    out[LedgerState._meta.db_table] = Privileges(read_add, _columns(LedgerState, "size", "frontier"))
    out[LicenseGrant._meta.db_table] = Privileges(read_add, _columns(LicenseGrant, "status", "status_changed_at"))
    # Django's delete collector clears a removed recording's links in one statement (even when
    # there are none), so DELETE is granted; a trigger refuses it for grants out of draft.
    out[LicenseGrant.recordings.through._meta.db_table] = Privileges(("SELECT", "INSERT", "DELETE"))
    # history of a recording's title/artist/ISRC: added, never rewritten; removed with its recording
    out[RecordingRevision._meta.db_table] = Privileges(("SELECT", "INSERT", "DELETE"))
    out[LedgerVerification._meta.db_table] = Privileges(read_add, _columns(
        LedgerVerification, "finished_at", "ok", "size", "heads_checked", "first_bad_index", "problem", "elapsed_s"))
    # the log of each webhook POST: added, never rewritten; removed with its webhook (cascade)
    out[DeliveryAttempt._meta.db_table] = Privileges(("SELECT", "INSERT", "DELETE"))
    out["django_migrations"] = Privileges(("SELECT",))
    return out


def runtime_policy(tables) -> dict[str, Privileges]:
    restricted = _restricted()
    return {t: restricted.get(t, Privileges(ORDINARY)) for t in tables}


# --- connecting as the owner -----------------------------------------------------------------

def owner_url() -> str:
    return getattr(settings, "DATABASE_OWNER_URL", "") or ""


@contextlib.contextmanager
def connected_as_owner(alias: str = DEFAULT_DB_ALIAS):
    """Use DATABASE_OWNER_URL's credentials on `alias` for the duration (same database, other
    role), so migrations and their data steps all run as the owner; yields the runtime role,
    DATABASE_URL's user. Without DATABASE_OWNER_URL, yields None and changes nothing."""
    url = owner_url()
    conn = connections[alias]
    if not url:
        yield None
        return
    if conn.vendor != "postgresql":
        raise DomainError("no_roles", "DATABASE_OWNER_URL is set but the database is not PostgreSQL "
                                      "(SQLite, the embedded default, has no roles)")
    owner = environ.Env.db_url_config(url)
    current = conn.settings_dict
    if owner.get("NAME") and owner["NAME"] != current["NAME"]:
        raise DomainError("owner_database_mismatch",
                          f"DATABASE_OWNER_URL names database {owner['NAME']!r}, DATABASE_URL {current['NAME']!r}")
    runtime_role = current.get("USER") or ""
    if owner.get("USER") == runtime_role:
        raise DomainError("same_role", f"DATABASE_URL and DATABASE_OWNER_URL are both role {runtime_role!r}: "
                                       "the runtime role must not be the owner")
    keys = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    saved = {k: current.get(k) for k in keys}
    conn.close()
    current.update({"USER": owner.get("USER", ""), "PASSWORD": owner.get("PASSWORD", ""),
                    "HOST": owner.get("HOST") or saved["HOST"], "PORT": owner.get("PORT") or saved["PORT"],
                    "OPTIONS": {**(saved["OPTIONS"] or {}), **(owner.get("OPTIONS") or {})}})
    try:
        yield runtime_role
    finally:
        conn.close()
        current.update(saved)


# --- granting --------------------------------------------------------------------------------

def _one(cur, sql, params=()):
    cur.execute(sql, params)
    return cur.fetchone()


def _refuse_unfit_role(cur, role: str) -> None:
    if not ROLE_NAME.match(role or ""):
        raise DomainError("invalid_role", f"{role!r} is not a plain role name (letters, digits, _)")
    me = _one(cur, "SELECT current_user")[0]
    found = _one(cur, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
    if found is None:
        raise DomainError("unknown_role", f"role {role!r} does not exist: create it first "
                                          f"(CREATE ROLE {role} LOGIN PASSWORD '…', as a superuser)")
    if role == me:
        raise DomainError("same_role", f"connected as {role!r}: run this as the owner, for another runtime role")
    if found[0] or found[1]:
        raise DomainError("runtime_role_too_powerful",
                          f"role {role!r} is a superuser or bypasses row security: the app must not run as it")
    if _one(cur, "SELECT pg_has_role(%s, current_user, 'MEMBER')", [role])[0]:
        raise DomainError("runtime_role_too_powerful",
                          f"role {role!r} is a member of the owner {me!r} and would have all its rights")
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tableowner = %s", [role])
    owned = [r[0] for r in cur.fetchall()]
    if owned:
        raise DomainError("runtime_role_owns_tables",
                          f"role {role!r} owns {len(owned)} tables ({', '.join(owned[:3])}…): as a superuser run "
                          f"REASSIGN OWNED BY {role} TO {me}, then this again")
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tableowner <> current_user")
    foreign = [r[0] for r in cur.fetchall()]
    if foreign:
        raise DomainError("not_owner", f"{me!r} does not own {', '.join(foreign[:3])}: run this as the tables' owner")


def _tables(cur) -> list[str]:
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
    return [r[0] for r in cur.fetchall()]


def do_grant_runtime_privileges(role: str, alias: str = DEFAULT_DB_ALIAS) -> dict[str, Privileges]:
    """Give `role` exactly the runtime privileges (idempotent: everything is revoked and granted
    again in one transaction, so no session ever sees the role without them). Run as the owner."""
    conn = connections[alias]
    if conn.vendor != "postgresql":
        raise DomainError("no_roles", "SQLite (the embedded default) has no database roles")
    q = conn.ops.quote_name
    with transaction.atomic(using=alias), conn.cursor() as cur:
        _refuse_unfit_role(cur, role)
        schema = q(_one(cur, "SELECT current_schema()")[0])
        who = q(role)
        policy = runtime_policy(_tables(cur))
        # PostgreSQL 15 no longer lets PUBLIC create in `public`; older clusters did (a warning,
        # not an error, where this role does not own the schema: the check below catches it).
        cur.execute(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, {who}")
        cur.execute(f"GRANT USAGE ON SCHEMA {schema} TO {who}")
        cur.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {who}")  # column grants go too
        for table, privs in policy.items():
            cur.execute(f"GRANT {', '.join(privs.table)} ON TABLE {q(table)} TO {who}")
            if privs.update_columns:
                cols = ", ".join(q(c) for c in privs.update_columns)
                cur.execute(f"GRANT UPDATE ({cols}) ON TABLE {q(table)} TO {who}")
        cur.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {who}")
        cur.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}")
        problems = runtime_role_problems(role, alias, cur=cur)
        if problems:
            raise DomainError("privileges_not_applied", "; ".join(problems))
    return policy


TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def runtime_role_problems(role: str, alias: str = DEFAULT_DB_ALIAS, cur=None) -> list[str]:
    """What `role` may do beyond the runtime policy (or lacks of it); [] when it matches."""
    conn = connections[alias]
    if cur is None:
        with conn.cursor() as own:
            return runtime_role_problems(role, alias, own)
    problems = []
    found = _one(cur, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
    if found is None:
        return [f"role {role!r} does not exist"]
    if found[0] or found[1]:
        problems.append(f"{role} is a superuser or bypasses row security")
    if _one(cur, "SELECT has_schema_privilege(%s, current_schema(), 'CREATE')", [role])[0]:
        problems.append(f"{role} may create tables in the schema (REVOKE CREATE ON SCHEMA … FROM PUBLIC as its owner)")
    if _one(cur, "SELECT has_database_privilege(%s, current_database(), 'CREATE')", [role])[0]:
        problems.append(f"{role} may create schemas in the database")
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tableowner = %s", [role])
    problems += [f"{role} owns {r[0]}" for r in cur.fetchall()]
    for table, privs in runtime_policy(_tables(cur)).items():
        for priv in TABLE_PRIVILEGES:
            has = _one(cur, "SELECT has_table_privilege(%s, %s, %s)", [role, conn.ops.quote_name(table), priv])[0]
            if has != (priv in privs.table):
                problems.append(f"{role} {'has' if has else 'lacks'} {priv} on {table}")
        for col in privs.update_columns:
            if not _one(cur, "SELECT has_column_privilege(%s, %s, %s, 'UPDATE')",
                        [role, conn.ops.quote_name(table), col])[0]:
                problems.append(f"{role} lacks UPDATE ({col}) on {table}")
    return problems
