"""The image's health probe (app/healthcheck.py) names a host that ALLOWED_HOSTS accepts.

Its run inside a container is tested in test_image.py; these are the host choices it makes.
"""

from __future__ import annotations

import pytest
from django.http.request import validate_host
from healthcheck import probe_host


@pytest.mark.parametrize(
    "allowed",
    [
        "airline.example.com",
        " airline.example.com , www.example.com",
        ".example.com",
        "*",
        "*,airline.example.com",
    ],
)
def test_the_probe_host_is_one_django_accepts(allowed: str) -> None:
    hosts = [h.strip() for h in allowed.split(",") if h.strip()]
    assert validate_host(probe_host(allowed), hosts)


def test_without_allowed_hosts_the_probe_asks_for_localhost() -> None:
    # Django's own default with DEBUG on (and nothing answers with DEBUG off and no hosts).
    assert probe_host("") == "localhost"
    assert validate_host("localhost", [".localhost", "127.0.0.1", "[::1]"])
