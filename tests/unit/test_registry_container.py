"""The loopback registry container's provider (providers/registry_container.py) without an engine: what diff
replaces, and how it tells a registry answering on its port."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.runtime.rpc import UNKNOWN

from providers.registry_container import RegistryContainerProvider, _answers

PROVIDER = RegistryContainerProvider()
# Inputs as the engine hands them to a dynamic provider: every number a float.
NEWS = {
    "engine": "unix:///var/run/docker.sock",
    "image": "registry:2",
    "container": "flightdeck-local-registry",
    "volume": "flightdeck-local-registry-data",
    "port": 5000.0,
    "running": None,
}


def state(**changes: Any) -> dict[str, Any]:
    """What create recorded, as the state gives it back."""
    return {**NEWS, "running": True, **changes}


def test_nothing_changes_for_the_same_registry() -> None:
    result = PROVIDER.diff("id", state(), NEWS)
    assert result.changes is False and result.replaces == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("image", "registry:2.8"),
        ("port", 5050.0),
        ("volume", "other"),
        ("container", "x"),
        ("engine", "unix:///r.sock"),
    ],
)
def test_another_registry_is_a_new_container(key: str, value: Any) -> None:
    result = PROVIDER.diff("id", state(), {**NEWS, key: value})
    assert result.changes is True and result.replaces == [key]
    assert result.delete_before_replace is True  # one container name, one port


def test_a_container_found_stopped_or_running_another_image_is_made_again() -> None:
    assert PROVIDER.diff("id", state(running=False), NEWS).replaces == ["running"]
    assert PROVIDER.diff("id", state(image="registry:2.7"), NEWS).replaces == ["image"]  # seen by refresh


def test_a_value_not_known_yet_is_a_change() -> None:
    assert PROVIDER.diff("id", state(), {**NEWS, "engine": UNKNOWN}).changes is True


@pytest.fixture
def registry_port() -> Iterator[int]:
    class V2(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/v2/" else 404)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), V2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_registry_answers_its_v2_endpoint(registry_port: int) -> None:
    assert _answers(registry_port) is True
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        assert _answers(int(probe.getsockname()[1])) is False  # nobody listens
