"""The proxy's Caddyfile (render/caddyfile.py): the site, the dynamic upstreams, retries, the health path; and
what Caddy itself makes of the file (`caddy adapt`, Debian's caddy, no network)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render.caddyfile import LOCAL_HOSTS, UPSTREAM, render_caddyfile, token

needs_caddy = pytest.mark.skipif(
    shutil.which("caddy") is None, reason="caddy is not installed (apt-get install caddy)"
)


def adapted(caddyfile: str, tmp_path: Path) -> dict[str, Any]:
    """Caddy's JSON config of the file (what `caddy run` would load)."""
    path = tmp_path / "Caddyfile"
    path.write_text(caddyfile)
    result = subprocess.run(
        ["caddy", "adapt", "--adapter", "caddyfile", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def proxies(node: Any) -> list[dict[str, Any]]:
    """Every reverse_proxy handler under a piece of Caddy's JSON config."""
    if isinstance(node, dict):
        found = [node] if node.get("handler") == "reverse_proxy" else []
        return found + [p for value in node.values() for p in proxies(value)]
    if isinstance(node, list):
        return [p for value in node for p in proxies(value)]
    return []


def test_without_a_domain_the_site_is_plain_http_on_port_80() -> None:
    caddyfile = render_caddyfile(domain=None)
    assert caddyfile.startswith("{\n\tadmin off\n\tauto_https off\n}\n")
    assert "\n:80 {\n\timport web\n}\n" in caddyfile
    assert "http://localhost" not in caddyfile


def test_with_a_domain_caddy_serves_https_and_a_plain_http_health_path_for_the_host() -> None:
    caddyfile = render_caddyfile(domain="air.example.com")
    assert "auto_https" not in caddyfile  # automatic HTTPS, with its HTTP->HTTPS redirect, stays on
    assert "\nair.example.com {\n\timport web\n}\n" in caddyfile
    local = caddyfile[caddyfile.index("http://localhost, http://127.0.0.1 {") :]
    health = "\thandle /healthz {\n\t\timport web\n\t}\n\trespond 404\n"
    assert local == "http://localhost, http://127.0.0.1 {\n" + health + "}\n"
    assert LOCAL_HOSTS == ("localhost", "127.0.0.1")


def test_replicas_are_found_by_name_and_failed_attempts_retried_elsewhere() -> None:
    caddyfile = render_caddyfile(domain=None, upstream="tasks.app", port=9000)
    assert "\t\tdynamic a tasks.app 9000 {\n\t\t\trefresh 1s\n\t\t\tdial_timeout 2s\n\t\t}\n" in caddyfile
    assert "\t\tlb_try_duration 15s\n\t\tlb_try_interval 250ms\n" in caddyfile
    assert "\t\tlb_retry_match {\n\t\t\tmethod GET HEAD\n\t\t}\n" in caddyfile
    assert "header_up X-Forwarded-Proto {scheme}" in caddyfile
    assert render_caddyfile(domain=None).count(f"dynamic a {UPSTREAM} 8000") == 1  # the app's port ($PORT)


@pytest.mark.parametrize(
    "bad",
    ["air.example.com {", "a b", "x\nrespond 200", "}", "{$HOME}", "air.example.com\t", "", "a;b", 'a"b'],
)
def test_a_value_that_would_not_be_one_token_never_reaches_the_file(bad: str) -> None:
    with pytest.raises(ValueError, match="one token"):
        token(bad)
    with pytest.raises(ValueError, match="one token"):
        render_caddyfile(domain=bad)
    with pytest.raises(ValueError, match="one token"):
        render_caddyfile(domain=None, upstream=bad)


def test_plain_names_are_tokens_as_they_are() -> None:
    for good in ("air.example.com", "tasks.web", "xn--bcher-kva.example", "127.0.0.1"):
        assert token(good) == good


@needs_caddy
def test_caddy_reads_the_site_without_a_domain_as_plain_http_to_every_replica(tmp_path: Path) -> None:
    config = adapted(render_caddyfile(domain=None), tmp_path)
    assert config["admin"] == {"disabled": True}
    [server] = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":80"]
    assert server["automatic_https"] == {"disable": True}
    [proxy] = proxies(server)
    upstreams = proxy["dynamic_upstreams"]
    assert (upstreams["source"], upstreams["name"], upstreams["port"]) == ("a", "tasks.web", "8000")
    assert (upstreams["refresh"], upstreams["dial_timeout"]) == (1_000_000_000, 2_000_000_000)
    balancing = proxy["load_balancing"]
    assert balancing["try_duration"] == 15_000_000_000 and balancing["try_interval"] == 250_000_000
    assert balancing["retry_match"] == [{"method": ["GET", "HEAD"]}]


@needs_caddy
def test_caddy_reads_the_domain_site_and_the_local_health_path(tmp_path: Path) -> None:
    config = adapted(render_caddyfile(domain="air.example.com"), tmp_path)
    servers = config["apps"]["http"]["servers"]
    https = next(s for s in servers.values() if s["listen"] == [":443"])
    http = next(s for s in servers.values() if s["listen"] == [":80"])
    assert https["routes"][0]["match"] == [{"host": ["air.example.com"]}]
    assert len(proxies(https)) == 1
    [local] = http["routes"]
    assert local["match"] == [{"host": list(LOCAL_HOSTS)}]
    # Only /healthz reaches the app over plain HTTP; anything else is a 404 from Caddy itself.
    text = json.dumps(local)
    assert '"path": ["/healthz"]' in text and '"status_code": 404' in text
    assert len(proxies(local)) == 1
