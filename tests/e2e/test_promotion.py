"""Promotion for real: ImageCopyProvider (providers/image_copy.py) copies dev's image into prod's repository
with the real skopeo, between two real registries on loopback (each configured by render/registry_config.py,
each with its own password; see tests/support/registry.py).

The provider's create and read are called directly: Pulumi's mocks never run a dynamic provider, and the whole
stack runs through the real engine in tests/e2e/test_pulumi_local.py and tests/e2e/test_servers.py.
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract import split_ref
from providers.image_copy import SECRET_OUTPUTS, CopyFailed, ImageCopyProvider, promotion_tag
from render.registry_config import USERNAME
from tests.support.docker import docker
from tests.support.registry import Registry, docker_login, registry_bucket, running_registry, unique_image

pytestmark = pytest.mark.docker

PREFIX = "fd-promotion-e2e"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


@pytest.fixture(scope="module")
def dev(docker_engine: str) -> Iterator[Registry]:
    with registry_bucket(f"{PREFIX}-dev") as s3, running_registry(s3, f"{PREFIX}-dev") as reg:
        yield reg


@pytest.fixture(scope="module")
def prod(docker_engine: str) -> Iterator[Registry]:
    with registry_bucket(f"{PREFIX}-prod") as s3, running_registry(s3, f"{PREFIX}-prod") as reg:
        yield reg


@pytest.fixture(scope="module")
def dev_ref(dev: Registry, python_base: str) -> str:
    """An image of its own pushed to the dev repository, by digest, as `pulumi up --stack dev` leaves it."""
    tag = f"{dev.address}/flightdeck-dev/web:build-{uuid.uuid4().hex[:6]}"
    unique_image(python_base, tag)
    try:
        with docker_login(dev.address, dev.password) as env:
            subprocess.run(["docker", "push", tag], env=env, capture_output=True, check=True, timeout=300)
        digest = docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", tag).strip()
    finally:
        docker("image", "rm", "--force", tag, check=False)
    return f"{dev.address}/flightdeck-dev/web@{digest.split('@', 1)[1]}"


def auth(reg: Registry, password: str | None = None) -> dict[str, str]:
    return {"username": USERNAME, "password": password or reg.password}


def props(dev: Registry, prod: Registry, source: str, **overrides: Any) -> dict[str, Any]:
    """The resource's inputs, as components/image.py's PromotedImage gives them."""
    return {
        "source": source,
        "repository": f"{prod.address}/flightdeck-prod/web",
        "source_auth": auth(dev),
        "destination_auth": auth(prod),
        "tunnel": None,
        "ssh": None,
        "ref": None,
        "digest": None,
        **overrides,
    }


def manifest(reg: Registry, repository: str, reference: str) -> Any:
    return reg.api(
        f"/v2/{repository}/manifests/{reference}", reg.password, headers={"Accept": MANIFEST_TYPES}
    )


def tags(reg: Registry, repository: str) -> list[str]:
    listed = reg.api(f"/v2/{repository}/tags/list", reg.password)
    return list(listed.json().get("tags") or []) if listed.status_code == 200 else []


@dataclass
class SkopeoCall:
    argv: list[str]
    authfile_mode: int
    authfile: dict[str, Any]
    authfile_path: Path


@pytest.fixture
def skopeo_calls(monkeypatch: pytest.MonkeyPatch) -> list[SkopeoCall]:
    """Every skopeo command the provider runs (the real one runs), with its auth file as skopeo saw it."""
    calls: list[SkopeoCall] = []
    real_run = subprocess.run

    def recording(argv: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(argv, list) and argv and argv[0] == "skopeo":
            path = Path(argv[argv.index("--authfile") + 1])
            mode = stat.S_IMODE(path.stat().st_mode)
            calls.append(SkopeoCall([str(a) for a in argv], mode, json.loads(path.read_text()), path))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording)  # the module providers/image_copy.py calls
    return calls


def test_prod_gets_devs_image_under_the_same_digest(
    dev: Registry, prod: Registry, dev_ref: str, skopeo_calls: list[SkopeoCall]
) -> None:
    digest = split_ref(dev_ref).digest
    result = ImageCopyProvider().create(props(dev, prod, dev_ref))

    prod_repository = f"{prod.address}/flightdeck-prod/web"
    assert result.id == f"{prod_repository}@{digest}"
    outs = result.outs or {}
    assert outs["ref"] == result.id and outs["digest"] == digest
    served = manifest(prod, "flightdeck-prod/web", digest)
    assert served.status_code == 200, served.text
    assert served.headers["Docker-Content-Digest"] == digest
    assert served.content == manifest(dev, "flightdeck-dev/web", digest).content  # byte for byte
    for blob in [served.json()["config"], *served.json()["layers"]]:
        assert (
            prod.api(f"/v2/flightdeck-prod/web/blobs/{blob['digest']}", prod.password, "HEAD").status_code
            == 200
        )
    assert promotion_tag(prod_repository, digest).rpartition(":")[2] in tags(prod, "flightdeck-prod/web")

    # Both passwords went to skopeo in a private file, removed afterwards, and never on a command line.
    assert [call.argv[1] for call in skopeo_calls] == ["copy", "inspect"]
    tokens = {r.address: base64.b64encode(f"{USERNAME}:{r.password}".encode()).decode() for r in (dev, prod)}
    for call in skopeo_calls:
        assert not [arg for arg in call.argv if dev.password in arg or prod.password in arg], call.argv
        assert call.authfile_mode == 0o600
        assert {host: entry["auth"] for host, entry in call.authfile["auths"].items()} == tokens
        assert not call.authfile_path.exists()
    # The logins stay in the state for read() (refresh), only in the outputs ImageCopy makes secret.
    plain = {key: value for key, value in outs.items() if key not in SECRET_OUTPUTS}
    assert dev.password not in json.dumps(plain) and prod.password not in json.dumps(plain)


def test_read_finds_the_copy_and_reports_it_gone_once_deleted(
    dev: Registry, prod: Registry, dev_ref: str
) -> None:
    provider = ImageCopyProvider()
    inputs = props(dev, prod, dev_ref)
    created = provider.create(inputs)
    state = {**inputs, **(created.outs or {})}
    found = provider.read(created.id, state)
    assert found.id == created.id and found.outs == state

    digest = split_ref(dev_ref).digest
    deleted = prod.api(f"/v2/flightdeck-prod/web/manifests/{digest}", prod.password, "DELETE")
    assert deleted.status_code == 202, deleted.text
    gone = provider.read(created.id, state)
    assert (gone.id, gone.outs) == ("", {})  # refresh drops it; the next up copies it again

    again = provider.create(inputs)  # and that copy is the same image again
    assert again.id == created.id and manifest(prod, "flightdeck-prod/web", digest).status_code == 200


def test_read_with_the_state_the_engine_keeps_finds_the_copy(
    dev: Registry, prod: Registry, dev_ref: str
) -> None:
    provider = ImageCopyProvider()
    created = provider.create(props(dev, prod, dev_ref))
    assert provider.read(created.id, dict(created.outs or {})).id == created.id


def test_a_source_digest_that_does_not_exist_fails_clearly_and_copies_nothing(
    dev: Registry, prod: Registry
) -> None:
    missing = f"{dev.address}/flightdeck-dev/web@sha256:{'0' * 64}"
    before = tags(prod, "flightdeck-prod/web")
    with pytest.raises(CopyFailed, match=r"skopeo copy failed: .*manifest unknown"):
        ImageCopyProvider().create(props(dev, prod, missing))
    assert tags(prod, "flightdeck-prod/web") == before


def test_a_wrong_password_fails_clearly(dev: Registry, prod: Registry, dev_ref: str) -> None:
    wrong = auth(prod, password="not-" + prod.password)
    with pytest.raises(
        CopyFailed, match=r"skopeo copy failed: .*(unauthorized|authentication required)"
    ) as err:
        ImageCopyProvider().create(props(dev, prod, dev_ref, destination_auth=wrong))
    assert prod.password not in str(err.value)
