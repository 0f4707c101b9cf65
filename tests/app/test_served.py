"""The app under gunicorn with production settings, built the way the image builds it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.app.processes import HOST, copy_app, gunicorn, manage, production_env
from tests.support.docker import free_port


@pytest.fixture(scope="module")
def built_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = copy_app(tmp_path_factory.mktemp("app"))
    result = manage("collectstatic", "--noinput", env={"SECRET_KEY": secrets.token_urlsafe(50)}, cwd=app)
    assert result.returncode == 0, result.stderr
    return app


@pytest.fixture(scope="module")
def served(built_app: Path, test_database_url: str) -> Iterator[str]:
    with gunicorn(built_app, free_port(), production_env(DATABASE_URL=test_database_url)) as url:
        yield url


@pytest.mark.postgres
def test_healthz_answers_plain_http_with_production_settings(served: str) -> None:
    response = requests.get(f"{served}/healthz", headers={"Host": HOST}, timeout=10, allow_redirects=False)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.postgres
def test_pages_over_plain_http_redirect_to_https(served: str) -> None:
    response = requests.get(f"{served}/", headers={"Host": HOST}, timeout=10, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{HOST}/"


@pytest.mark.postgres
def test_pages_through_the_tls_proxy_are_served_with_hsts_and_cached_static(served: str) -> None:
    proxied = {"Host": HOST, "X-Forwarded-Proto": "https"}
    page = requests.get(f"{served}/", headers=proxied, timeout=10, allow_redirects=False)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    stylesheet = re.search(r'href="(/static/flights/style\.[0-9a-f]{12}\.css)"', page.text)
    assert stylesheet, page.text
    static = requests.get(f"{served}{stylesheet.group(1)}", headers=proxied, timeout=10)
    assert static.status_code == 200
    assert static.headers["Cache-Control"] == "max-age=315360000, public, immutable"


@pytest.mark.postgres
def test_an_unknown_host_is_refused(served: str) -> None:
    assert requests.get(f"{served}/healthz", timeout=10).status_code == 400  # Host: 127.0.0.1:<port>


def test_healthz_is_503_when_the_database_is_unreachable(built_app: Path) -> None:
    closed = f"postgres://airline:unused@127.0.0.1:{free_port()}/airline"
    with gunicorn(built_app, free_port(), production_env(DATABASE_URL=closed)) as url:
        response = requests.get(f"{url}/healthz", headers={"Host": HOST}, timeout=10)
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}
