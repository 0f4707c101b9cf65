"""The Caddyfile renderer: the site, the dynamic upstreams, retries; and Caddy itself accepts the result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.proxy import render_caddyfile
from tests.e2e.swarm_support import STANDINS, standin_images


def test_without_a_domain_the_site_is_plain_http_on_port_80() -> None:
    caddyfile = render_caddyfile(domain=None)
    assert "\tauto_https off\n" in caddyfile
    assert "\n:80 {\n\timport web\n}\n" in caddyfile
    assert "http://localhost" not in caddyfile


def test_with_a_domain_caddy_serves_https_and_a_plain_http_health_path_for_the_host() -> None:
    caddyfile = render_caddyfile(domain="air.example.com", email="ops@example.com")
    assert "auto_https" not in caddyfile  # automatic HTTPS, with the HTTP->HTTPS redirect, stays on
    assert "\nair.example.com {\n\timport web\n}\n" in caddyfile
    assert "\temail ops@example.com\n" in caddyfile
    local = caddyfile[caddyfile.index("http://localhost, http://127.0.0.1 {") :]
    assert "handle /healthz {\n\t\timport web\n\t}\n\trespond 404\n}" in local


def test_replicas_are_found_by_name_and_failed_attempts_retried_elsewhere() -> None:
    caddyfile = render_caddyfile(domain=None, upstream="tasks.app", port=9000)
    assert "dynamic a tasks.app 9000 {\n\t\t\trefresh 1s\n" in caddyfile
    assert "\t\tlb_try_duration 15s\n\t\tlb_try_interval 250ms\n" in caddyfile
    assert "\t\tlb_retry_match {\n\t\t\tmethod GET HEAD\n\t\t}\n" in caddyfile
    assert "header_up X-Forwarded-Proto {scheme}" in caddyfile
    assert "\tadmin off\n" in caddyfile


@pytest.mark.docker
@pytest.mark.parametrize("domain", [None, "air.example.com"])
def test_caddy_validates_the_rendered_file(docker_engine: str, tmp_path: Path, domain: str | None) -> None:
    standin_images()
    (tmp_path / "Caddyfile").write_text(render_caddyfile(domain=domain))
    mount = f"{tmp_path}:/etc/caddy:ro"
    validate = ["caddy", "validate", "--adapter", "caddyfile", "--config", "/etc/caddy/Caddyfile"]
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--volume", mount, STANDINS["caddy"], *validate],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr
