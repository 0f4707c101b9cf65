"""`manage.py release`: the release phase (Procfile `release`), run once per release before it takes traffic.

It migrates the database, then, when LOAD_SAMPLE_DATA is true (a demo stack such as `local`), loads the
sample airports, flights and passengers; that adds nothing when they are there already.
"""

from __future__ import annotations

import os
from typing import Any

from airline import env
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate the database, and load the sample data when LOAD_SAMPLE_DATA is true"

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        if env.boolean(os.environ, "LOAD_SAMPLE_DATA", default=False):
            call_command("load_sample_data", verbosity=options["verbosity"])
