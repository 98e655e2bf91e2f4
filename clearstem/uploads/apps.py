from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "clearstem.uploads"
    label = "uploads"
