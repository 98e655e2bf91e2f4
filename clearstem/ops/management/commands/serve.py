"""`manage.py serve`: the embedded default in one process — web server, worker, reconciler."""
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import run
from django.core.wsgi import get_wsgi_application

from clearstem.worker import start_reconciler, start_worker


class Command(BaseCommand):
    help = "Serve ClearStem on one process (embedded default: in-process worker)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, addr, port, **_):
        call_command("migrate", interactive=False, verbosity=0)
        if settings.CLEARSTEM_EMBEDDED_WORKER:
            start_worker()
            start_reconciler()
            self.stdout.write("in-process worker started (embedded default)")
        self.stdout.write(f"serving on http://{addr}:{port}/ (Ctrl-C to stop)")
        run(addr, port, StaticFilesHandler(get_wsgi_application()), threading=True)
