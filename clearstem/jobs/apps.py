from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "clearstem.jobs"
    label = "jobs"
