from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "clearstem.notifications"
    label = "notifications"
    verbose_name = "Notifications (webhooks and e-mail)"

    def ready(self) -> None:
        # Django's way to connect receivers: models may be imported only once apps are ready.
        from . import receivers  # noqa: PLC0415

        receivers.connect()
