"""System checks for configuration that only matters once the app serves or migrates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

DUMMY_ENGINE = "django.db.backends.dummy"


@register()
def database_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Without DATABASE_URL the settings fall back to Django's dummy backend (fine for collectstatic only).

    Untagged, so migrate, check and runserver report it; collectstatic runs only the staticfiles checks.
    """
    # Django fills an empty DATABASES in place with the dummy engine once connections are configured.
    engine = settings.DATABASES.get("default", {}).get("ENGINE", DUMMY_ENGINE)
    if engine != DUMMY_ENGINE:
        return []
    return [
        Error(
            "DATABASE_URL is not set, so there is no database.",
            hint="Set DATABASE_URL, e.g. postgres://USER:PASSWORD@HOST:5432/NAME",
            id="flights.E001",
        )
    ]
