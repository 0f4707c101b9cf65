"""The container release provider against a local server that speaks Heroku's Platform API and registry API.

Pulumi's mocks never call a dynamic provider, so the provider is driven directly: release, diff, check.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from providers import heroku_release
from providers.heroku_release import (
    DOCKER_RELEASES,
    MANIFEST_V2,
    HerokuApiKeyError,
    HerokuReleaseError,
    HerokuReleaseProvider,
    RetryPolicy,
    parse_retry_after,
)

APP = "flightdeck-dev"
KEY = "test-heroku-api-key-0000"
MANIFEST_DIGEST = "sha256:" + "ab" * 32
CONFIG_DIGEST = "sha256:" + "cd" * 32
REF = f"registry.heroku.com/{APP}/web@{MANIFEST_DIGEST}"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_total=5)


def _basic_ok(request: Request) -> bool:
    expected = "Basic " + base64.b64encode(f"_:{KEY}".encode()).decode()
    return request.headers.get("Authorization") == expected


@dataclass
class FakeHeroku:
    """The slice of Heroku a release touches, with the state a release changes."""

    server: HTTPServer
    outcome: str = "succeeded"  # what the release phase ends in
    pending_polls: int = 1  # polls that still see the new release pending
    output: str = "Running migrations:\n  Applying flights.0002_seats... OK\n"
    manifest_media_type: str = MANIFEST_V2
    releases: list[dict[str, Any]] = field(
        default_factory=lambda: [{"id": "rel-1", "version": 1, "status": "succeeded"}]
    )
    patches: list[Any] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)

    addon_releases: int = 0  # releases that land right after ours
    # manifest digest -> config digest of the images in the registry
    images: dict[str, str] = field(default_factory=lambda: {MANIFEST_DIGEST: CONFIG_DIGEST})

    def __post_init__(self) -> None:
        s = self.server
        s.expect_request(re.compile(rf"/v2/{APP}/web/manifests/sha256:[0-9a-f]{{64}}")).respond_with_handler(
            self.manifest
        )
        s.expect_request(f"/apps/{APP}/releases", method="GET").respond_with_handler(self.list_releases)
        s.expect_request(f"/apps/{APP}/formation", method="PATCH").respond_with_handler(self.formation)
        s.expect_request(re.compile(r"/streams/rel-\d+")).respond_with_handler(self.stream)

    def stream(self, _request: Request) -> Response:
        return Response(self.output, content_type="text/plain")

    def api_ok(self, request: Request) -> bool:
        self.seen.append(request)
        return request.headers.get("Authorization") == f"Bearer {KEY}"

    def manifest(self, request: Request) -> Response:
        if not _basic_ok(request):
            return Response(status=401, headers={"WWW-Authenticate": 'Basic realm="heroku"'})
        assert request.headers["Accept"] == MANIFEST_V2
        body = {"schemaVersion": 2, "mediaType": self.manifest_media_type}
        if self.manifest_media_type == MANIFEST_V2:
            body["config"] = {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": self.images[request.path.rsplit("/", 1)[1]],
            }
        else:
            body["manifests"] = []
        return Response(json.dumps(body), content_type=self.manifest_media_type)

    def list_releases(self, request: Request) -> Response:
        if not self.api_ok(request):
            return Response(json.dumps({"id": "unauthorized", "message": "Invalid credentials"}), status=401)
        # Heroku's Range: "version <first>..; order=asc|desc, max=<n>" (first empty: from either end)
        match = re.fullmatch(r"version (\d*)\.\.; order=(asc|desc), max=(\d+)", request.headers["Range"])
        assert match, request.headers["Range"]
        first, order, most = int(match[1] or 0), match[2], int(match[3])
        chosen = [r for r in self.releases if r["version"] >= first][:: 1 if order == "asc" else -1][:most]
        for release in chosen:
            if release["status"] == "pending":
                if self.pending_polls <= 0:
                    release["status"] = self.outcome
                    release["output_stream_url"] = self.server.url_for(f"/streams/{release['id']}")
                self.pending_polls -= 1
        return Response(json.dumps(chosen), status=206, content_type="application/json")

    def formation(self, request: Request) -> Response:
        if not self.api_ok(request):
            return Response(json.dumps({"id": "unauthorized", "message": "Invalid credentials"}), status=401)
        assert request.headers["Accept"] == DOCKER_RELEASES
        self.patches.append(request.get_json())
        version = self.releases[-1]["version"] + 1
        self.releases.append({"id": f"rel-{version}", "version": version, "status": "pending"})
        for _ in range(self.addon_releases):  # releases an add-on makes meanwhile, already succeeded
            self.releases.append({"id": f"rel-{version + 1}", "version": version + 1, "status": "succeeded"})
            version += 1
        return Response(json.dumps([{"type": "web"}, {"type": "release"}]), content_type="application/json")


@pytest.fixture
def heroku(httpserver: HTTPServer) -> FakeHeroku:
    return FakeHeroku(httpserver)


def provider(server: HTTPServer, retry: RetryPolicy = FAST, poll: float = 0.01) -> HerokuReleaseProvider:
    base = server.url_for("/").rstrip("/")
    return HerokuReleaseProvider(api_url=base, registry_url=base, retry=retry, poll_interval=poll)


PROCESS_TYPES = ["web", "scheduler", "worker", "release"]  # app/Procfile's, as HerokuApp lists them


def props(
    image_ref: str = REF, timeout: float = 5.0, process_types: list[str] | None = None
) -> dict[str, Any]:
    return {
        "app": APP,
        "image_ref": image_ref,
        "api_key": KEY,
        "release_timeout": timeout,
        "process_types": PROCESS_TYPES if process_types is None else process_types,
    }


def test_release_patches_the_formation_with_the_config_digest_and_waits_for_success(
    heroku: FakeHeroku,
) -> None:
    result = provider(heroku.server).create(props())

    # One PATCH, one release: no process type ever runs another image than the others.
    assert heroku.patches == [
        {
            "updates": [
                {"type": "web", "docker_image": CONFIG_DIGEST},
                {"type": "scheduler", "docker_image": CONFIG_DIGEST},
                {"type": "worker", "docker_image": CONFIG_DIGEST},
                {"type": "release", "docker_image": CONFIG_DIGEST},
            ]
        }
    ]
    assert result.id == APP
    assert result.outs == {
        "app": APP,
        "image_ref": REF,
        "image_id": CONFIG_DIGEST,
        "release_id": "rel-2",
        "version": 2,
        "status": "succeeded",
        "release_timeout": 5.0,
        "process_types": PROCESS_TYPES,
    }
    assert KEY not in json.dumps(result.outs)  # the key never reaches the outputs (state)


def test_a_state_of_the_older_layout_releases_web_and_release(heroku: FakeHeroku) -> None:
    older = {k: v for k, v in props().items() if k != "process_types"}
    outs = provider(heroku.server).update(APP, {}, older).outs
    assert heroku.patches == [
        {
            "updates": [
                {"type": "web", "docker_image": CONFIG_DIGEST},
                {"type": "release", "docker_image": CONFIG_DIGEST},
            ]
        }
    ]
    assert outs is not None and outs["process_types"] == ["web", "release"]


def test_the_release_followed_is_the_one_the_patch_made(heroku: FakeHeroku) -> None:
    heroku.addon_releases = 1  # v3, succeeded, lands while ours (v2) is still in its release phase
    heroku.outcome = "failed"

    with pytest.raises(HerokuReleaseError, match="release v2 of flightdeck-dev"):
        provider(heroku.server).create(props())


def test_failed_release_phase_fails_with_its_output(heroku: FakeHeroku) -> None:
    heroku.outcome = "failed"
    heroku.output = "django.db.utils.ProgrammingError: relation flights_seat does not exist\n"

    with pytest.raises(HerokuReleaseError) as failure:
        provider(heroku.server).update(APP, {}, props())

    message = str(failure.value)
    assert "release v2 of flightdeck-dev" in message and "failed" in message
    assert "previous release (v1) keeps serving" in message
    assert "relation flights_seat does not exist" in message


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_api_key_names_the_setting_to_fix(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(f"/v2/{APP}/web/manifests/{MANIFEST_DIGEST}").respond_with_json(
        {"schemaVersion": 2, "mediaType": MANIFEST_V2, "config": {"digest": CONFIG_DIGEST}}
    )
    httpserver.expect_request(f"/apps/{APP}/releases").respond_with_json(
        {"id": "forbidden", "message": "nope"}, status=status
    )

    with pytest.raises(HerokuApiKeyError) as failure:
        provider(httpserver).create(props())

    message = str(failure.value)
    assert str(status) in message
    assert "heroku:apiKey" in message and "HEROKU_API_KEY" in message
    assert len(httpserver.log) == 2  # no retry of a refused key


def test_failed_release_without_streamed_output_points_at_the_logs(heroku: FakeHeroku) -> None:
    heroku.outcome = "failed"
    heroku.output = ""

    with pytest.raises(
        HerokuReleaseError, match=r"none streamed; see `heroku logs -a flightdeck-dev --dyno release`"
    ):
        provider(heroku.server).create(props())


def test_rate_limit_is_retried_after_the_time_heroku_asks(
    heroku: FakeHeroku, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(heroku_release.time, "sleep", slept.append)
    limited = {"left": 1}
    original = heroku.formation

    def rate_limited(request: Request) -> Response:
        if limited["left"]:
            limited["left"] -= 1
            return Response(
                '{"id":"rate_limit","message":"Too many requests"}', status=429, headers={"Retry-After": "3"}
            )
        return original(request)

    heroku.server.clear_all_handlers()
    heroku.formation = rate_limited  # type: ignore[method-assign]
    heroku.__post_init__()
    patient = RetryPolicy(attempts=3, base_delay=0.01, max_delay=10, max_total=60)

    outs = provider(heroku.server, retry=patient).create(props()).outs

    assert outs is not None and outs["status"] == "succeeded"
    assert slept[0] == 3.0  # Retry-After, not the 0.01 s backoff
    assert len(heroku.patches) == 1


def test_server_errors_are_retried_within_the_bound_then_given_up(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/v2/{APP}/web/manifests/{MANIFEST_DIGEST}").respond_with_data(
        "upstream", status=503
    )
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_total=5)
    started = time.monotonic()

    with pytest.raises(HerokuReleaseError, match=r"gave up after 3 attempts.*503"):
        provider(httpserver, retry=policy).create(props())

    assert len(httpserver.log) == 3
    assert time.monotonic() - started < 2


def test_an_unreachable_endpoint_is_retried_then_given_up() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_total=5)
    unreachable = HerokuReleaseProvider(api_url=closed, registry_url=closed, retry=policy)

    with pytest.raises(HerokuReleaseError, match=r"gave up after 3 attempts.*Connection refused"):
        unreachable.create(props())


def test_retry_stops_at_the_total_time_bound_without_sleeping_past_it(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(heroku_release.time, "sleep", slept.append)
    httpserver.expect_request(f"/v2/{APP}/web/manifests/{MANIFEST_DIGEST}").respond_with_data(
        "busy", status=429, headers={"Retry-After": "30"}
    )
    policy = RetryPolicy(attempts=10, base_delay=1, max_delay=60, max_total=10)

    with pytest.raises(HerokuReleaseError, match="gave up after 1 attempts"):
        provider(httpserver, retry=policy).create(props())

    assert slept == []


def test_poll_gives_up_at_the_release_timeout(heroku: FakeHeroku) -> None:
    heroku.pending_polls = 10**6  # the release phase never ends
    started = time.monotonic()

    with pytest.raises(HerokuReleaseError, match=r"release v2 of flightdeck-dev did not finish within 0.3s"):
        provider(heroku.server, poll=0.05).create(props(timeout=0.3))

    assert time.monotonic() - started < 2


def test_manifest_digest_resolves_to_the_config_digest_through_a_bearer_challenge(
    httpserver: HTTPServer,
) -> None:
    realm = httpserver.url_for("/token")

    def manifest(request: Request) -> Response:
        if request.headers.get("Authorization") != "Bearer registry-token":
            challenge = (
                f'Bearer realm="{realm}",service="registry.heroku.com",scope="repository:{APP}/web:pull"'
            )
            return Response(status=401, headers={"WWW-Authenticate": challenge})
        body = {"schemaVersion": 2, "mediaType": MANIFEST_V2, "config": {"digest": CONFIG_DIGEST}}
        return Response(json.dumps(body), content_type=MANIFEST_V2)

    def token(request: Request) -> Response:
        assert _basic_ok(request)
        assert request.args["scope"] == f"repository:{APP}/web:pull"
        return Response(json.dumps({"token": "registry-token"}), content_type="application/json")

    httpserver.expect_request(f"/v2/{APP}/web/manifests/{MANIFEST_DIGEST}").respond_with_handler(manifest)
    httpserver.expect_request("/token").respond_with_handler(token)

    assert provider(httpserver).image_id(REF, KEY) == CONFIG_DIGEST


def test_an_image_index_is_refused_with_the_build_fix(heroku: FakeHeroku) -> None:
    heroku.manifest_media_type = "application/vnd.oci.image.index.v1+json"

    with pytest.raises(HerokuReleaseError, match="BUILDX_NO_DEFAULT_ATTESTATIONS=1"):
        provider(heroku.server).image_id(REF, KEY)
    assert heroku.patches == []


def test_diff_releases_again_only_for_a_new_image_or_app() -> None:
    p = HerokuReleaseProvider()
    olds = {**props(), "api_key": None, "release_id": "rel-2", "version": 2}
    other = f"registry.heroku.com/{APP}/web@sha256:" + "ef" * 32

    same = p.diff(APP, olds, {**props(), "api_key": "rotated-key", "release_timeout": 60})
    new_image = p.diff(APP, olds, props(image_ref=other))
    new_app = p.diff(APP, olds, {**props(), "app": "flightdeck-prod"})
    new_type = p.diff(APP, olds, props(process_types=[*PROCESS_TYPES[:-1], "mailer", "release"]))

    assert same.changes is False
    assert new_image.changes is True and new_image.replaces == []
    assert new_app.changes is True and new_app.replaces == ["app"]
    # A process type added to the Procfile gets the image in a release of its own.
    assert new_type.changes is True and new_type.replaces == []


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        (REF, True),
        (f"registry.heroku.com/{APP}/web:latest", False),
        (f"registry.heroku.com/{APP}/web", False),
    ],
)
def test_check_refuses_a_tag(ref: str, ok: bool) -> None:
    result = HerokuReleaseProvider().check({}, props(image_ref=ref))
    assert (result.failures == []) is ok
    if not ok:
        assert result.failures[0].property == "image_ref"


def test_delete_leaves_the_app_serving(httpserver: HTTPServer) -> None:
    provider(httpserver).delete(APP, props())
    assert httpserver.log == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, 21, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Wed, 25 Nov 2026 21:00:12 GMT", now) == 12.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5)
    assert [policy.delay(attempt, None) for attempt in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert policy.delay(1, 120) == 5  # a Retry-After beyond the cap waits the cap


def test_the_manifest_is_asked_of_the_registry_the_reference_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a registry URL (as in production), the repository's own host is asked, over HTTPS."""
    seen: list[str] = []

    def send(_self: Any, _method: str, url: str, **_kwargs: Any) -> Any:
        seen.append(url)
        raise HerokuReleaseError("stop here")

    monkeypatch.setattr(heroku_release._Http, "send", send)
    with pytest.raises(HerokuReleaseError, match="stop here"):
        HerokuReleaseProvider().image_id(REF, KEY)
    assert seen == [f"https://registry.heroku.com/v2/{APP}/web/manifests/{MANIFEST_DIGEST}"]


# -- through the real Pulumi engine ---------------------------------------------------------------------
# The provider is pickled into the state and run by the engine's dynamic provider host in its own process:
# the same lifecycle against the fake Heroku, with scripts/install-pulumi's CLI and the project's inline
# runner (tools/pulumi_inline.py).
ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import os

import pulumi

from providers.heroku_release import (
    HerokuContainerRelease,
    HerokuContainerReleaseArgs,
    HerokuReleaseProvider,
    RetryPolicy,
)

release = HerokuContainerRelease(
    "release",
    HerokuContainerReleaseArgs(
        app=os.environ["FD_APP"],
        image_ref=os.environ["FD_IMAGE_REF"],
        api_key=pulumi.Output.secret(os.environ["FD_API_KEY"]),
        release_timeout=30,
    ),
    provider=HerokuReleaseProvider(
        api_url=os.environ["FD_API_URL"],
        registry_url=os.environ["FD_API_URL"],
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_total=5),
        poll_interval=0.05,
    ),
)
"""


class Engine:
    def __init__(self, bin_dir: Path, project: Path, api_url: str) -> None:
        self.bin_dir, self.project = bin_dir, project
        project.mkdir()
        (project / "Pulumi.yaml").write_text("name: fdrelease\nruntime: python\n")
        (project / "__main__.py").write_text(PROGRAM)
        (project / "state").mkdir()
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PULUMI_BACKEND_URL": f"file://{project / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "test-passphrase",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_RUNTIME_VIRTUALENV": str(ROOT / ".venv"),
            "PYTHONPATH": str(ROOT),  # the provider host unpickles providers.heroku_release
            "FD_APP": APP,
            "FD_API_URL": api_url.rstrip("/"),
            "FD_API_KEY": KEY,
        }

    def run(self, operation: str, image_ref: str = REF) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "tools.pulumi_inline", operation, "--stack", "test"),
                *("--project", str(self.project), "--work-dir", str(self.project)),
                *("--pulumi-root", str(self.bin_dir.parent)),
            ],
            cwd=ROOT,
            env={**self.env, "FD_IMAGE_REF": image_ref},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def exported(self) -> tuple[str, dict[str, Any]]:
        """The stack's state as text, and the release resource's outputs."""
        text = subprocess.run(
            [self.bin_dir / "pulumi", "stack", "export", "--stack", "test", "--cwd", str(self.project)],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        [release] = [
            r for r in json.loads(text)["deployment"]["resources"] if "ContainerRelease" in r["type"]
        ]
        return text, release["outputs"]


def test_release_lifecycle_through_the_pulumi_engine(
    pulumi_bin: Path, heroku: FakeHeroku, tmp_path: Path
) -> None:
    engine = Engine(pulumi_bin, tmp_path / "project", heroku.server.url_for("/"))
    second, third = "sha256:" + "12" * 32, "sha256:" + "34" * 32
    heroku.images.update({second: "sha256:" + "56" * 32, third: "sha256:" + "78" * 32})
    ref = f"registry.heroku.com/{APP}/web@"

    created = engine.run("up")
    assert created.returncode == 0, created.stdout + created.stderr
    state, outs = engine.exported()
    assert (outs["image_id"], outs["version"], outs["status"]) == (CONFIG_DIGEST, 2, "succeeded")
    assert KEY not in state  # the key is in the state only encrypted

    assert engine.run("up").returncode == 0
    assert len(heroku.patches) == 1  # same image: no release

    assert engine.run("up", ref + second).returncode == 0
    assert engine.exported()[1]["image_id"] == "sha256:" + "56" * 32
    assert len(heroku.patches) == 2

    heroku.outcome = "failed"
    heroku.output = "django.db.utils.OperationalError: could not connect to server\n"
    failed = engine.run("up", ref + third)
    assert failed.returncode != 0
    assert "could not connect to server" in failed.stdout + failed.stderr
    assert "keeps serving" in failed.stdout + failed.stderr
    assert engine.exported()[1]["image_id"] == "sha256:" + "56" * 32  # the state still names the live release

    assert engine.run("destroy").returncode == 0
    assert len(heroku.patches) == 3  # deleting the release resource calls nothing
