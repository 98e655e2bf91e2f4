"""`manage.py setup_db_roles [--runtime-role NAME] [--check]`: give the runtime database role
exactly its privileges (clearstem.ops.dbroles), as the owner. Idempotent; `migrate` runs it
itself at its end when DATABASE_OWNER_URL is set. `--check` only reports what differs."""
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from clearstem.ops.dbroles import connected_as_owner, do_grant_runtime_privileges, runtime_role_problems
from sharedcore.errors import DomainError


class Command(BaseCommand):
    help = ("Grant the runtime database role (DATABASE_URL's user, or --runtime-role) exactly its privileges, "
            "connected as the owner (DATABASE_OWNER_URL, else DATABASE_URL). PostgreSQL only.")

    def add_arguments(self, parser):
        parser.add_argument("--runtime-role", help="the role web, workers and the reconciler connect as "
                                                   "(default: DATABASE_URL's user when DATABASE_OWNER_URL is set)")
        parser.add_argument("--check", action="store_true", help="grant nothing; exit 1 if the role's rights differ")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, runtime_role, check, database, verbosity, **_):
        try:
            with connected_as_owner(database) as default_role:
                role = runtime_role or default_role
                if not role:
                    raise DomainError("no_runtime_role", "name the runtime role (--runtime-role), or set "
                                                         "DATABASE_OWNER_URL so DATABASE_URL's user is the one")
                if check:
                    problems = runtime_role_problems(role, database)
                    for p in problems:
                        self.stdout.write(f"- {p}")
                    if problems:
                        raise DomainError("privileges_differ", f"{len(problems)} differences for role {role!r}")
                    self.stdout.write(f"OK: role {role!r} has exactly the runtime privileges")
                    return
                policy = do_grant_runtime_privileges(role, database)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        narrow = {t: p for t, p in policy.items() if p.table != ("SELECT", "INSERT", "UPDATE", "DELETE")}
        self.stdout.write(f"runtime role {role!r}: SELECT, INSERT, UPDATE, DELETE on {len(policy) - len(narrow)} "
                          f"tables, no DDL, no TRUNCATE; narrower on {len(narrow)}:")
        if verbosity:
            for table, privs in sorted(narrow.items()):
                self.stdout.write(f"  {table}: {privs.describe()}")
