from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "clearstem.jobs"
    label = "jobs"

    def ready(self) -> None:
        from licensing.signals import license_stopped

        from .receivers import stop_jobs_when_license_stops

        license_stopped.connect(stop_jobs_when_license_stops, dispatch_uid="clearstem.jobs.license_stopped")
