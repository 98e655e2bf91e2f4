import os

from django.core.management.base import BaseCommand, CommandError

from clearstem.accounts.services import do_create_user
from sharedcore.errors import DomainError


class Command(BaseCommand):
    help = "Create a user in an organisation; --token prints an API token."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--org", required=True)
        parser.add_argument("--role", default="member", choices=["admin", "member", "viewer"])
        parser.add_argument("--token", action="store_true", help="create and print an API token")
        parser.add_argument(
            "--password-env", metavar="VAR",
            help="read the sign-in password from this environment variable (never argv)",
        )

    def handle(self, email, org, role, token, password_env, **_):
        password = os.environ.get(password_env) if password_env else None
        if password_env and not password:
            raise CommandError(f"environment variable {password_env} is empty or unset")
        try:
            user, key = do_create_user(email, org, role, password=password, with_token=token)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        self.stdout.write(key if key else f"created user {user.username!r}")
