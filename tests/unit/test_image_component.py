"""AppImage and PromotedImage under Pulumi mocks (real pulumi-docker-build resources, the ImageCopy provider's
inputs), release_image's choice between them, and the git sha helper."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.image import (
    AppImage,
    AppImageArgs,
    PromotedImage,
    PromotedImageArgs,
    RegistryLogin,
    git_head_sha,
    release_image,
)
from providers.image_copy import Tunnel
from tests.support.pulumi_mocks import COMPUTED, RecordingMocks, install_mocks, use_mocks
from tests.support.secrets import is_secret, reveal

IMAGE = "docker-build:index:Image"
COPY = "pulumi-python:dynamic/flightdeck:ImageCopy"
SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "registry.heroku.com/flightdeck-dev/web"
MOCK_DIGEST = COMPUTED[IMAGE]["digest"]
DIGEST = "sha256:" + "0123456789abcdef" * 4
DEV_REF = f"{REPO}@{DIGEST}"
LOGIN = RegistryLogin(address="registry.heroku.com", username="_", password="heroku-api-key")


def declare(make: Any) -> tuple[RecordingMocks, dict[str, Any]]:
    """Declare what make() returns (an AppImage or PromotedImage) and resolve its ref and digest."""
    mocks = use_mocks()
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[None]:
        image = make()
        return pulumi.Output.all(image.ref, image.digest).apply(
            lambda v: outputs.update(ref=v[0], digest=v[1])
        )

    program()
    return mocks, outputs


def build(**kwargs: Any) -> tuple[RecordingMocks, dict[str, Any]]:
    kwargs.setdefault("repository", REPO)
    kwargs.setdefault("git_sha", SHA)
    return declare(lambda: AppImage("web", AppImageArgs(**kwargs)))


def test_a_build_pushes_a_schema2_image_for_amd64_and_outputs_its_digest_ref() -> None:
    mocks, outputs = build(registry=LOGIN, python_image="python:3.13-slim")
    [made] = mocks.of_type(IMAGE)
    image = made.inputs
    assert made.name == "web-build"
    # Schema 2: the registry export pins OCI media types off; `push` stays off so no second, default export.
    assert image["exports"] == [
        {
            "registry": {
                "compression": "gzip",
                "compressionLevel": 0,
                "forceCompression": False,
                "ociMediaTypes": False,
                "push": True,
                "store": True,
            }
        }
    ]
    assert image["push"] is False
    assert image["platforms"] == ["linux/amd64"]
    assert image["tags"] == [f"{REPO}:{SHA}", f"{REPO}:latest"]
    assert image["buildArgs"] == {"PYTHON_IMAGE": "python:3.13-slim"}
    assert image["context"]["location"].endswith("/app")
    assert image["dockerfile"]["location"].endswith("/app/Dockerfile")
    assert image["cacheTo"] == [{"inline": {}}]
    assert image["cacheFrom"] == [{"registry": {"ref": f"{REPO}:latest"}}]
    assert image["network"] == "default"
    # The password makes the whole list secret (Pulumi lifts secrecy to the top-level property).
    assert is_secret(image["registries"])
    assert reveal(image["registries"]) == [
        {"address": "registry.heroku.com", "username": "_", "password": "heroku-api-key"}
    ]
    assert outputs == {"ref": f"{REPO}@{MOCK_DIGEST}", "digest": MOCK_DIGEST}


def test_every_build_runs_in_exec_mode_on_the_engines_own_builder() -> None:
    """No provenance attestation (Heroku refuses image indexes) and no BuildKit image to pull."""
    for kwargs in ({}, {"insecure": True, "network_host": True}, {"registry": LOGIN}):
        mocks, _ = build(**kwargs)
        image = mocks.of_type(IMAGE)[0].inputs
        assert image["exec"] is True
        assert image["builder"] == {"name": "default"}


def test_a_loopback_registry_is_pushed_to_over_plain_http_on_the_host_network() -> None:
    mocks, outputs = build(repository="127.0.0.1:5000/airline/web", insecure=True, network_host=True)
    image = mocks.of_type(IMAGE)[0].inputs
    assert image["exports"][0]["registry"]["insecure"] is True
    assert image["network"] == "host"
    assert "registries" not in image
    assert outputs["ref"] == f"127.0.0.1:5000/airline/web@{MOCK_DIGEST}"


def test_another_dockerfile_gets_its_own_build_args_without_python_image() -> None:
    mocks, _ = build(
        repository="127.0.0.1:5050/airline/backup",
        context=Path("/src/backup"),
        python_image=None,
        build_args={"POSTGRES_IMAGE": "postgres:16"},
    )
    image = mocks.of_type(IMAGE)[0].inputs
    assert image["buildArgs"] == {"POSTGRES_IMAGE": "postgres:16"}
    assert image["context"]["location"] == "/src/backup"
    assert image["dockerfile"]["location"] == "/src/backup/Dockerfile"
    assert image["tags"] == [f"127.0.0.1:5050/airline/backup:{SHA}", "127.0.0.1:5050/airline/backup:latest"]


def test_extra_build_args_are_added_to_python_image_and_win() -> None:
    mocks, _ = build(build_args={"EXTRA": "1", "PYTHON_IMAGE": "python:3.12-slim"})
    assert mocks.of_type(IMAGE)[0].inputs["buildArgs"] == {"PYTHON_IMAGE": "python:3.12-slim", "EXTRA": "1"}


def test_a_preview_that_skips_the_build_leaves_the_ref_unknown() -> None:
    mocks = RecordingMocks(computed={**COMPUTED, IMAGE: {"digest": ""}})
    install_mocks(mocks, "test", preview=True)
    known: dict[str, bool] = {}

    async def check(image: AppImage) -> None:
        known["ref"] = await image.ref.is_known()
        known["digest"] = await image.digest.is_known()

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[None]:
        return pulumi.Output.from_input(check(AppImage("web", AppImageArgs(repository=REPO, git_sha=SHA))))

    try:
        program()
    finally:
        use_mocks()
    assert known == {"ref": False, "digest": False}  # never `<repository>@` with an empty digest


# -- PromotedImage and release_image ----------------------------------------------------------------------


def test_an_image_already_in_the_target_repository_is_not_copied() -> None:
    mocks, outputs = declare(
        lambda: PromotedImage("same", PromotedImageArgs(source=DEV_REF, repository=REPO))
    )
    assert outputs == {"ref": DEV_REF, "digest": DIGEST}
    assert mocks.of_type(COPY) == []


def test_promotion_copies_into_the_target_repository_with_secret_credentials() -> None:
    prod = "registry.heroku.com/flightdeck-prod/web"
    args = PromotedImageArgs(source=DEV_REF, repository=prod, source_login=LOGIN, destination_login=LOGIN)
    mocks, outputs = declare(lambda: PromotedImage("prod", args))
    [copy] = mocks.of_type(COPY)
    assert copy.name == "prod-copy"
    assert copy.inputs["source"] == DEV_REF and copy.inputs["repository"] == prod
    for key in ("source_auth", "destination_auth"):
        assert is_secret(copy.inputs[key])
        assert reveal(copy.inputs[key]) == {"username": "_", "password": "heroku-api-key"}
    assert "tunnel" not in copy.inputs
    assert outputs == {"ref": f"{prod}@{DIGEST}", "digest": DIGEST}


def test_a_copy_to_a_servers_registry_goes_through_the_tunnel() -> None:
    tunnel = Tunnel(engine="ssh://deploy@203.0.113.21:22", remote="127.0.0.1:5000", label="the swarm manager")
    ssh = {"hosts": [{"address": "203.0.113.21", "port": 22, "host_key": "ssh-ed25519 AAAA"}]}
    args = PromotedImageArgs(
        source=f"127.0.0.1:5050/airline/web@{DIGEST}",
        repository="127.0.0.1:5000/airline/web",
        tunnel=tunnel,
        ssh=ssh,
    )
    mocks, outputs = declare(lambda: PromotedImage("image", args))
    [copy] = mocks.of_type(COPY)
    assert copy.inputs["tunnel"] == {
        "engine": tunnel.engine,
        "remote": "127.0.0.1:5000",
        "label": "the swarm manager",
    }
    assert copy.inputs["ssh"] == ssh
    assert outputs["ref"] == f"127.0.0.1:5000/airline/web@{DIGEST}"


def test_a_source_not_by_digest_is_refused() -> None:
    with pytest.raises(ValueError, match="not an image reference by digest"):
        PromotedImage("bad", PromotedImageArgs(source=f"{REPO}:latest", repository=REPO))


def test_release_image_builds_unless_a_digest_is_given() -> None:
    mocks, outputs = declare(
        lambda: release_image("img", digest=None, python_image="python:3.13-slim", repository=REPO)
    )
    assert len(mocks.of_type(IMAGE)) == 1 and mocks.of_type(COPY) == []
    assert outputs["ref"] == f"{REPO}@{MOCK_DIGEST}"
    prod = "registry.heroku.com/flightdeck-prod/web"
    mocks, outputs = declare(
        lambda: release_image(
            "img", digest=DEV_REF, python_image="python:3.13-slim", repository=prod, registry=LOGIN
        )
    )
    assert mocks.of_type(IMAGE) == [] and len(mocks.of_type(COPY)) == 1
    assert outputs["ref"] == f"{prod}@{DIGEST}"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(
        tmp_path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.org",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "one",
    )
    return tmp_path


def test_git_head_sha_reads_a_branch_a_packed_ref_and_a_detached_head(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert git_head_sha(repo) == head
    (repo / "dirty.txt").write_text("uncommitted")
    assert git_head_sha(repo) == head  # a dirty tree still names HEAD
    _git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert git_head_sha(repo) == head
    _git(repo, "checkout", "-q", "--detach")
    assert git_head_sha(repo) == head


def test_git_head_sha_of_a_worktree(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("wt") / "tree"
    _git(repo, "worktree", "add", "-q", "-b", "side", str(other))
    assert git_head_sha(other) == _git(repo, "rev-parse", "HEAD")


def test_git_head_sha_without_commits_says_so(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    with pytest.raises(ValueError, match="refs/heads/main, which has no commit yet"):
        git_head_sha(tmp_path)


def test_git_head_sha_outside_a_checkout_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a git checkout"):
        git_head_sha(tmp_path)
