from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from pytest_django import DjangoDbBlocker

from tests.support.docker import free_port


@pytest.mark.django_db
@pytest.mark.postgres
def test_healthz_is_200_when_the_database_answers() -> None:
    response = Client().get("/healthz")  # plain HTTP, as probes send it: not redirected
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.fixture
def unreachable_database(django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """Point the default connection at a closed port on this machine, and back afterwards."""
    database = connection.settings_dict
    saved = database["HOST"], database["PORT"]
    with django_db_blocker.unblock():
        connection.close()
        database["HOST"], database["PORT"] = "127.0.0.1", free_port()
        try:
            yield
        finally:
            connection.close()
            database["HOST"], database["PORT"] = saved


def test_healthz_is_503_when_the_database_is_unreachable(unreachable_database: None) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


def test_healthz_answers_only_to_allowed_hosts() -> None:
    # No exemption from host validation: probes send a host from ALLOWED_HOSTS.
    assert Client().get("/healthz", headers={"Host": "attacker.example"}).status_code == 400


def test_healthz_takes_get_and_head_only() -> None:
    assert Client().post("/healthz").status_code == 405
