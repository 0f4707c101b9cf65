from django.apps import AppConfig


class FlightsConfig(AppConfig):
    name = "flights"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from flights import checks  # noqa: F401 (registers the system checks)
