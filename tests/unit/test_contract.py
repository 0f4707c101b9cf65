"""What the program and the image agree on (contract.py): image references by digest, registries' addresses,
the Procfile's process types."""

from __future__ import annotations

import pytest

from contract import PROCFILE, DigestRef, is_image_reference, parse_procfile, repository_host, split_ref

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_split_ref_takes_only_references_by_digest() -> None:
    ref = split_ref(f"registry.heroku.com/flightdeck-dev/web@{DIGEST}")
    assert ref == DigestRef("registry.heroku.com/flightdeck-dev/web", DIGEST)
    assert (ref.host, ref.path, str(ref)) == (
        "registry.heroku.com", "flightdeck-dev/web", f"registry.heroku.com/flightdeck-dev/web@{DIGEST}"
    )  # fmt: skip
    for bad in (
        "registry.heroku.com/flightdeck-dev/web:latest",
        f"web@{DIGEST[:-1]}",
        DIGEST,
        f"web@{DIGEST}\n",
        f"Web@{DIGEST}",
        f"web:1@{DIGEST}",  # a tag beside the digest: which one is released?
        f"web@sha512:{'0' * 128}",
    ):
        with pytest.raises(ValueError, match="not an image reference by digest"):
            split_ref(bad)


@pytest.mark.parametrize(
    ("repository", "host"),
    [
        ("127.0.0.1:5000/flightdeck-local/web", "127.0.0.1:5000"),
        ("localhost/app", "localhost"),
        ("[::1]:5000/app", "[::1]:5000"),
        ("registry.heroku.com/app/web", "registry.heroku.com"),
        ("library/postgres", "docker.io"),
        ("postgres", "docker.io"),
        ("team/app", "docker.io"),
    ],
)
def test_the_registry_of_a_repository(repository: str, host: str) -> None:
    assert repository_host(repository) == host
    assert split_ref(f"{repository}@{DIGEST}").host == host


@pytest.mark.parametrize(
    ("reference", "ok"),
    [
        ("postgres:16", True),
        ("caddy", True),
        ("registry.example.com:5000/team/app:1.2", True),
        (f"postgres@{DIGEST}", True),
        ("Postgres:16", False),
        ("postgres:16 --privileged", False),
        ("postgres:", False),
        ("-postgres", False),
        ("a" * 256, False),
    ],
)
def test_image_references_are_what_the_docker_cli_takes(reference: str, ok: bool) -> None:
    assert is_image_reference(reference) is ok


def test_the_procfile_gives_each_process_type_its_command() -> None:
    types = parse_procfile(
        "# comment\nweb: gunicorn app\n\nworker:   python manage.py work --queue a\nrelease: migrate\n"
    )
    assert types == {"web": "gunicorn app", "worker": "python manage.py work --queue a", "release": "migrate"}
    with pytest.raises(ValueError, match="line 2: process type web is declared twice"):
        parse_procfile("web: a\nweb: b\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_procfile("Web: a\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_procfile("web:\n")


def test_the_apps_procfile_has_what_the_targets_run() -> None:
    types = parse_procfile(PROCFILE.read_text())
    assert {"web", "release"} <= set(types)
