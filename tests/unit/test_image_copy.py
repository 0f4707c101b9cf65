"""ImageCopy (providers/image_copy.py): when a registry is spoken to over plain HTTP, and the copy driven
against a stand-in `skopeo` that records what it is asked (credentials in a private file, never on a command
line; the copy's digest checked against the source's)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from providers.image_copy import (
    ACCESS,
    SECRET_OUTPUTS,
    CopyFailed,
    ImageCopyProvider,
    plain_http,
    promotion_tag,
    registry_host,
)

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": "sha256:" + "cd" * 32},
        "layers": [],
    },
    indent=3,
)  # fmt: skip
DIGEST = "sha256:" + hashlib.sha256(MANIFEST.encode()).hexdigest()
DEV = f"registry.heroku.com/flightdeck-dev/web@{DIGEST}"
PROD = "registry.heroku.com/flightdeck-prod/web"
KEY = "heroku-api-key-0123"


@pytest.mark.parametrize(
    ("address", "plain"),
    [
        ("127.0.0.1:5000", True),
        ("127.0.0.1", True),
        ("127.9.9.9:5050", True),
        ("localhost:5000", True),
        ("localhost", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("127.attacker.example:5000", False),
        ("localhost.attacker.example:5000", False),
        ("127.0.0.1.nip.io:5000", False),
        ("registry.heroku.com", False),
        ("203.0.113.21:5000", False),
        ("[2001:db8::1]:5000", False),
        ("0.0.0.0:5000", False),
    ],
)
def test_plain_http_only_for_a_loopback_address(address: str, plain: bool) -> None:
    assert plain_http(address) is plain


def test_the_host_of_an_address() -> None:
    assert registry_host("127.0.0.1:5000") == "127.0.0.1"
    assert registry_host("[::1]:5000") == "::1"
    assert registry_host("registry.heroku.com") == "registry.heroku.com"
    assert registry_host("::1") == "::1"


def test_the_copy_is_tagged_after_its_digest() -> None:
    assert promotion_tag(PROD, "sha256:" + "0123456789abcdef" * 4) == f"{PROD}:promoted-0123456789ab"


def test_diff_copies_again_only_for_another_source_destination_or_tunnel() -> None:
    provider = ImageCopyProvider()
    olds = {"source": DEV, "repository": PROD, "tunnel": None, "ref": f"{PROD}@{DIGEST}", "digest": DIGEST}
    assert provider.diff("id", olds, {"source": DEV, "repository": PROD, "tunnel": None}).changes is False
    other = f"registry.heroku.com/flightdeck-dev/web@sha256:{'0' * 64}"
    for key, value in (("source", other), ("repository", f"{PROD}-2"), ("tunnel", {"engine": "ssh://d@h"})):
        result = provider.diff("id", olds, {"source": DEV, "repository": PROD, "tunnel": None, key: value})
        assert result.changes is True and result.replaces == [key]


def test_a_re_pinned_host_key_of_the_tunnel_reaches_the_state() -> None:
    tunnel = {
        "engine": "ssh://deploy@203.0.113.21:22",
        "remote": "127.0.0.1:5000",
        "label": "the swarm manager",
    }
    old = {"hosts": [{"address": "203.0.113.21", "port": 22, "host_key": "ssh-ed25519 AAAAold"}]}
    new = {"hosts": [{"address": "203.0.113.21", "port": 22, "host_key": "ssh-ed25519 AAAAnew"}]}
    olds = {"source": DEV, "repository": PROD, "tunnel": tunnel, "ssh": old, "ref": f"{PROD}@{DIGEST}"}
    news = {"source": DEV, "repository": PROD, "tunnel": tunnel, "ssh": new}
    assert ImageCopyProvider().diff("id", olds, news).changes is True


@dataclass
class FakeSkopeo:
    log: Path
    manifest: Path

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def authfiles(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.log.parent / "auth.log").read_text().splitlines()]


@pytest.fixture
def skopeo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSkopeo]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "skopeo"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, stat, sys\n"
        "args = sys.argv[1:]\n"
        "with open(os.environ['FAKE_LOG'], 'a') as log: log.write(json.dumps(args) + '\\n')\n"
        "auth = args[args.index('--authfile') + 1]\n"
        "mode = stat.S_IMODE(os.stat(auth).st_mode)\n"
        "with open(os.path.join(os.path.dirname(os.environ['FAKE_LOG']), 'auth.log'), 'a') as log:\n"
        "    log.write(json.dumps({'mode': mode, 'content': json.load(open(auth))}) + '\\n')\n"
        "if args[0] == 'copy' and os.environ.get('FAKE_COPY_ERROR'):\n"
        "    sys.exit(print(os.environ['FAKE_COPY_ERROR'], file=sys.stderr) or 1)\n"
        "if args[0] == 'inspect':\n"
        "    if os.environ.get('FAKE_INSPECT_ERROR'):\n"
        "        sys.exit(print(os.environ['FAKE_INSPECT_ERROR'], file=sys.stderr) or 1)\n"
        "    sys.stdout.write(open(os.environ['FAKE_MANIFEST']).read())\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(MANIFEST)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "skopeo.log"))
    monkeypatch.setenv("FAKE_MANIFEST", str(manifest))
    (tmp_path / "skopeo.log").touch()
    yield FakeSkopeo(tmp_path / "skopeo.log", manifest)


def props(**overrides: Any) -> dict[str, Any]:
    return {
        "source": DEV,
        "repository": PROD,
        "source_auth": {"username": "_", "password": KEY},
        "destination_auth": {"username": "_", "password": KEY},
        "tunnel": None,
        "ssh": None,
        "ref": None,
        "digest": None,
        **overrides,
    }


def test_a_promotion_copies_by_digest_with_private_credentials(skopeo: FakeSkopeo) -> None:
    result = ImageCopyProvider().create(props())
    copy, inspect = skopeo.calls()
    assert copy[:5] == [
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=true",
        "--dest-tls-verify=true",
    ]
    assert copy[5:7] == [f"docker://{DEV}", f"docker://{PROD}:promoted-{DIGEST[7:19]}"]
    assert inspect[:3] == ["inspect", "--raw", "--tls-verify=true"]
    assert inspect[3] == f"docker://{PROD}@{DIGEST}"  # the copy, read back by digest
    assert all(KEY not in arg for call in skopeo.calls() for arg in call)
    for authfile in skopeo.authfiles():
        assert authfile["mode"] == 0o600
        token = base64.b64encode(f"_:{KEY}".encode()).decode()
        assert authfile["content"] == {"auths": {"registry.heroku.com": {"auth": token}}}
    assert not Path(copy[copy.index("--authfile") + 1]).exists()  # removed after the copy
    assert result.id == f"{PROD}@{DIGEST}"
    assert result.outs["ref"] == f"{PROD}@{DIGEST}" and result.outs["digest"] == DIGEST
    # read() (refresh) gets only the state: the logins are kept there, in outputs ImageCopy makes secret.
    logins = {key: result.outs[key] for key in ACCESS if key != "ssh"}
    assert KEY not in json.dumps({k: v for k, v in result.outs.items() if k not in logins})
    assert set(logins) <= set(SECRET_OUTPUTS)


def test_a_local_copy_speaks_plain_http_to_loopback_registries(skopeo: FakeSkopeo) -> None:
    source = f"127.0.0.1:5050/flightdeck-servers/web@{DIGEST}"
    ImageCopyProvider().create(props(source=source, repository="localhost:5000/app/web", source_auth=None,
                                     destination_auth=None))  # fmt: skip
    copy, inspect = skopeo.calls()
    assert "--src-tls-verify=false" in copy and "--dest-tls-verify=false" in copy
    assert "--tls-verify=false" in inspect
    assert skopeo.authfiles()[0]["content"] == {"auths": {}}


def test_a_copy_the_registry_rewrote_is_refused(skopeo: FakeSkopeo) -> None:
    skopeo.manifest.write_text(MANIFEST.replace("   ", "  "))  # same JSON, other bytes: another digest
    with pytest.raises(CopyFailed, match="rewrote the manifest"):
        ImageCopyProvider().create(props())


def test_a_failed_copy_says_what_skopeo_said(skopeo: FakeSkopeo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_COPY_ERROR", "unauthorized: authentication required")
    with pytest.raises(CopyFailed, match="skopeo copy failed: unauthorized: authentication required"):
        ImageCopyProvider().create(props())


def test_a_source_not_by_digest_is_refused_before_any_copy(skopeo: FakeSkopeo) -> None:
    with pytest.raises(ValueError, match="not an image reference by digest"):
        ImageCopyProvider().create(props(source="registry.heroku.com/flightdeck-dev/web:latest"))
    assert skopeo.calls() == []


def test_read_finds_the_copy_or_reports_it_gone(skopeo: FakeSkopeo, monkeypatch: pytest.MonkeyPatch) -> None:
    state = {**props(), "ref": f"{PROD}@{DIGEST}", "digest": DIGEST}
    assert ImageCopyProvider().read(f"{PROD}@{DIGEST}", state).id == f"{PROD}@{DIGEST}"
    monkeypatch.setenv("FAKE_INSPECT_ERROR", "manifest unknown: manifest unknown")
    gone = ImageCopyProvider().read(f"{PROD}@{DIGEST}", state)
    assert (gone.id, gone.outs) == ("", {})  # refresh drops it; the next up copies it again
    monkeypatch.setenv("FAKE_INSPECT_ERROR", "pinging container registry: connection refused")
    with pytest.raises(CopyFailed, match="connection refused"):
        ImageCopyProvider().read(f"{PROD}@{DIGEST}", state)
