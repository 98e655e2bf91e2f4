from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "clearstem.accounts"
    label = "accounts"
    verbose_name = "Accounts and organisations"
