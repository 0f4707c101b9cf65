"""Changes to the app that tests deploy: each is {path under app/: new text}, applied to a copy of app/."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from contract import APP_DIR


def apply(app: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)


@contextmanager
def app_copy(files: Mapping[str, str]) -> Iterator[Path]:
    """A temporary copy of app/ with some files replaced or added (the tree itself is never modified)."""
    with tempfile.TemporaryDirectory(prefix="flightdeck-app-") as tmp:
        context = Path(tmp) / "app"
        shutil.copytree(
            APP_DIR, context, ignore=shutil.ignore_patterns("__pycache__", ".venv", "staticfiles")
        )
        apply(context, files)
        yield context


def marked_page(marker: str, app: Path = APP_DIR) -> dict[str, str]:
    """A visible change to every page: the marker in the base template."""
    base = app / "flights" / "templates" / "flights" / "base.html"
    return {"flights/templates/flights/base.html": base.read_text() + f"\n<!-- {marker} -->\n"}


def broken_health(app: Path = APP_DIR) -> dict[str, str]:
    """An image whose web process starts but whose /healthz always answers 503."""
    health = (app / "airline" / "health.py").read_text()
    health += (
        "\n\n@never_cache\n@require_safe\ndef healthz(request: HttpRequest) -> JsonResponse:  # noqa: F811\n"
        '    return JsonResponse({"status": "error", "database": "broken on purpose"}, status=503)\n'
    )
    return {"airline/health.py": health}


NEW_COLUMN = "timezone_note"


def with_new_column(app: Path = APP_DIR) -> dict[str, str]:
    """Airport gets a nullable column, with its migration (the one after the app's latest)."""
    models = (app / "flights" / "models.py").read_text()
    field_line = "    city = models.CharField(max_length=64)\n"
    if field_line not in models:
        raise RuntimeError("flights/models.py changed: update with_new_column()")
    models = models.replace(
        field_line,
        field_line + f"    {NEW_COLUMN} = models.CharField(max_length=64, null=True, blank=True)\n",
    )
    latest = sorted(p.stem for p in (app / "flights" / "migrations").glob("0*.py"))[-1]
    number = int(latest[:4]) + 1
    migration = (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f'    dependencies = [("flights", "{latest}")]\n'
        "    operations = [\n"
        f'        migrations.AddField("airport", "{NEW_COLUMN}", '
        "models.CharField(max_length=64, null=True, blank=True)),\n"
        "    ]\n"
    )
    return {
        "flights/models.py": models,
        f"flights/migrations/{number:04d}_airport_{NEW_COLUMN}.py": migration,
    }
