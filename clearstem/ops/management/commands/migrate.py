"""`manage.py migrate`, Django's own, run as the database owner when DATABASE_OWNER_URL is set:
the migrations (their data steps and Django's post-migrate ones included) connect with the
owner's credentials, then the runtime role — DATABASE_URL's user — gets exactly its privileges
again (`setup_db_roles`), so tables a migration adds are covered at once. Without
DATABASE_OWNER_URL (the embedded SQLite default, the test suite) it is Django's migrate."""
from django.core.management.base import CommandError
from django.core.management.commands import migrate

from clearstem.ops.dbroles import connected_as_owner, do_grant_runtime_privileges, owner_url
from sharedcore.errors import DomainError


class Command(migrate.Command):
    help = migrate.Command.help + (" Connects as DATABASE_OWNER_URL when it is set, then grants DATABASE_URL's "
                                   "role its runtime privileges.")

    def handle(self, *args, **options):
        if not owner_url():
            return super().handle(*args, **options)
        alias = options["database"]
        try:
            with connected_as_owner(alias) as runtime_role:
                super().handle(*args, **options)
                if options.get("plan") or options.get("check_unapplied"):
                    return
                policy = do_grant_runtime_privileges(runtime_role, alias)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        if options["verbosity"]:
            self.stdout.write(f"Granted runtime role {runtime_role!r} its privileges on {len(policy)} tables.")
