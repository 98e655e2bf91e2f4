from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "clearstem.web"
    label = "web"
    verbose_name = "Web UI"
