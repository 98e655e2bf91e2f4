from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operator commands: the embedded server (`serve`) and the walkthrough (`demo`)."""

    name = "clearstem.ops"
    label = "ops"
