from django.core.management.base import BaseCommand, CommandError

from clearstem.accounts.services import do_create_org
from sharedcore.errors import DomainError


class Command(BaseCommand):
    help = "Create an organisation (label, producer or platform)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--kind", required=True, choices=["label", "producer", "platform"])
        parser.add_argument("--name")
        parser.add_argument("--verified", action="store_true", help="mark a producer as verified")

    def handle(self, slug, kind, name, verified, **_):
        try:
            org = do_create_org(slug, kind, name, verified)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        self.stdout.write(f"created {org.kind} organisation {org.slug!r}")
