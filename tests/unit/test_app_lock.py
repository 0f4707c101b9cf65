"""app/requirements.txt is what the image installs: the app's slice of uv.lock, pinned and hashed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.support.docker import ROOT

REQUIREMENTS = ROOT / "app" / "requirements.txt"
# The one command that writes app/requirements.txt (with --quiet -o app/requirements.txt).
EXPORT = [
    "uv",
    "export",
    "--package",
    "flightdeck-app",
    "--no-dev",
    "--frozen",
    "--no-emit-project",
    "--no-header",
]
REGENERATE = " ".join([*EXPORT, "--quiet", "-o", "app/requirements.txt"])


def requirement_blocks(text: str) -> list[str]:
    """One string per requirement: its line and its continuation lines, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def test_requirements_match_the_lockfile() -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH; it is needed to compare app/requirements.txt with uv.lock")
    exported = subprocess.run(
        [uv, *EXPORT[1:]], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert REQUIREMENTS.read_text() == exported, f"app/requirements.txt is stale; run: {REGENERATE}"


def test_every_requirement_is_pinned_and_hashed() -> None:
    # pip --require-hashes refuses the whole file if one entry lacks a pin or a hash; say which one here.
    blocks = requirement_blocks(REQUIREMENTS.read_text())
    assert blocks, "app/requirements.txt lists no requirement"
    for block in blocks:
        assert re.match(r"^[A-Za-z0-9._-]+(\[[^\]]+\])?==[^ ;]+", block), f"not pinned with ==: {block}"
        assert "--hash=sha256:" in block, f"no hash: {block}"
        assert not block.startswith(("-e", "file:", ".")), f"local or editable entry: {block}"


def test_what_the_image_runs_is_locked() -> None:
    # The image's CMD starts gunicorn; the slim base has no libpq, so psycopg needs its binary wheel.
    blocks = requirement_blocks(REQUIREMENTS.read_text())
    names = {re.split(r"[=\[ ;]", block, maxsplit=1)[0].lower() for block in blocks}
    assert {"django", "gunicorn", "whitenoise", "psycopg", "psycopg-binary"} <= names
