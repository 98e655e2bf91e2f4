from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "clearstem.jobs"
    label = "jobs"

    def ready(self) -> None:
        # Django's way to connect receivers: models may be imported only once apps are ready.
        from licensing.signals import license_stopped  # noqa: PLC0415

        from .receivers import stop_jobs_when_license_stops  # noqa: PLC0415

        license_stopped.connect(stop_jobs_when_license_stops, dispatch_uid="clearstem.jobs.license_stopped")
