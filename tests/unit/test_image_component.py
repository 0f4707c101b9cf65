"""AppImage under Pulumi mocks (real pulumi-docker-build resources), and the git sha helper."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.image import (
    AppImage,
    AppImageArgs,
    RegistryLogin,
    git_head_sha,
    remote_builder_script,
    remove_builder_script,
)
from tests.support.pulumi_mocks import COMPUTED, RecordingMocks, use_mocks
from tests.support.secrets import is_secret

IMAGE = "docker-build:index:Image"
SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "registry.heroku.com/flightdeck-dev/web"
MOCK_DIGEST = COMPUTED[IMAGE]["digest"]


def declare(args: AppImageArgs) -> tuple[RecordingMocks, dict[str, Any], AppImage]:
    mocks = use_mocks()
    outputs: dict[str, Any] = {}
    made: list[AppImage] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        image = AppImage("web", args)
        made.append(image)
        return pulumi.Output.all(image.ref, image.digest).apply(
            lambda v: outputs.update(ref=v[0], digest=v[1])
        )

    program()
    return mocks, outputs, made[0]


def heroku_args(**kwargs: Any) -> AppImageArgs:
    login = RegistryLogin(address="registry.heroku.com", username="_", password="heroku-api-key")
    return AppImageArgs(
        repository=REPO, git_sha=SHA, registry=login, python_image="python:3.13-slim", **kwargs
    )


def test_heroku_build_pushes_a_schema2_image_for_amd64_and_outputs_its_digest_ref() -> None:
    mocks, outputs, _ = declare(heroku_args())

    [build] = mocks.of_type(IMAGE)
    image = build.inputs
    assert build.name == "web-build"
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
    # The password makes the whole list secret (Pulumi lifts secrecy to the top-level property).
    assert is_secret(image["registries"])
    [registry] = image["registries"]["value"]
    assert registry == {"address": "registry.heroku.com", "username": "_", "password": "heroku-api-key"}
    assert outputs == {"ref": f"{REPO}@{MOCK_DIGEST}", "digest": MOCK_DIGEST}


def test_registry_cache_is_the_buildcache_tag_in_mode_max() -> None:
    mocks, _, _ = declare(
        AppImageArgs(repository="127.0.0.1:5000/airline", git_sha=SHA, cache="registry", insecure=True)
    )

    image = mocks.of_type(IMAGE)[0].inputs
    assert image["cacheFrom"] == [{"registry": {"ref": "127.0.0.1:5000/airline:buildcache"}}]
    [cache_to] = image["cacheTo"]
    assert cache_to["registry"]["ref"] == "127.0.0.1:5000/airline:buildcache"
    assert cache_to["registry"]["mode"] == "max"
    assert image["exports"][0]["registry"]["insecure"] is True
    assert "registries" not in image


def test_unpushed_build_loads_into_the_engine_and_refers_to_the_sha_tag() -> None:
    mocks, outputs, _ = declare(
        AppImageArgs(repository="flightdeck/airline", git_sha=SHA, push=False, network_host=True)
    )

    image = mocks.of_type(IMAGE)[0].inputs
    [export] = image["exports"]
    assert set(export) == {"docker"}
    assert image["network"] == "host"
    assert outputs["ref"] == f"flightdeck/airline:{SHA}"


def test_another_dockerfile_gets_its_own_build_args_without_python_image() -> None:
    mocks, _, _ = declare(
        AppImageArgs(
            repository="127.0.0.1:5000/airline/backup",
            context="/src/backup",
            dockerfile="/src/backup/Dockerfile",
            git_sha=SHA,
            python_image=None,
            build_args={"POSTGRES_IMAGE": "postgres:16"},
            insecure=True,
        )
    )

    image = mocks.of_type(IMAGE)[0].inputs
    assert image["buildArgs"] == {"POSTGRES_IMAGE": "postgres:16"}
    assert image["context"]["location"] == "/src/backup"
    assert image["tags"] == [f"127.0.0.1:5000/airline/backup:{SHA}", "127.0.0.1:5000/airline/backup:latest"]


def test_a_named_builder_is_passed_on() -> None:
    mocks, _, _ = declare(AppImageArgs(repository=REPO, git_sha=SHA, builder="airline-manager"))
    assert mocks.of_type(IMAGE)[0].inputs["builder"] == {"name": "airline-manager"}
    plain, _, _ = declare(AppImageArgs(repository=REPO, git_sha=SHA))
    assert "builder" not in plain.of_type(IMAGE)[0].inputs


def test_remote_builder_runs_buildkit_on_the_hosts_network_with_plain_http_to_its_registry(
    tmp_path: Path,
) -> None:
    script = remote_builder_script("airline-manager", "127.0.0.1:5000")
    check = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    # Run it against a stand-in docker that records its arguments and the buildkitd config it is given.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(
        '#!/bin/sh\necho "$*" >>"$LOG"\n'
        'for a; do case $prev in --buildkitd-config) cat "$a" >"$LOG.toml" ;; esac; prev=$a; done\n'
    )
    fake.chmod(0o755)
    log = tmp_path / "log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LOG": str(log),
        "FLIGHTDECK_BUILD_HOST": "ssh://deploy@203.0.113.10",
    }
    run = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "buildx rm airline-manager"
    assert calls[1].startswith("buildx create --name airline-manager --driver docker-container")
    assert "--driver-opt network=host" in calls[1] and calls[1].endswith("ssh://deploy@203.0.113.10")
    assert calls[2] == "buildx inspect --bootstrap airline-manager"
    assert Path(f"{log}.toml").read_text() == '[registry."127.0.0.1:5000"]\n  http = true\n'
    assert (
        remove_builder_script("airline-manager")
        == "docker buildx rm airline-manager >/dev/null 2>&1 || true\n"
    )


def test_extra_build_args_are_added_to_python_image() -> None:
    mocks, _, _ = declare(AppImageArgs(repository=REPO, git_sha=SHA, build_args={"EXTRA": "1"}))

    assert mocks.of_type(IMAGE)[0].inputs["buildArgs"] == {"PYTHON_IMAGE": "python:3.13-slim", "EXTRA": "1"}


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
