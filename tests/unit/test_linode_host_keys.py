"""GeneratedSshKey's provider, called directly (Pulumi mocks skip a dynamic provider's create): a valid
ed25519 pair, stable across diffs, replaced only when its recipe changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pulumi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from providers.generated_ssh_key import GeneratedSshKey, GeneratedSshKeyProvider, fingerprint
from tests.support.linode_mocks import HOST_KEY, run

RECIPE = {"algorithm": "ed25519"}


def test_create_draws_an_ed25519_pair_whose_halves_match() -> None:
    created = GeneratedSshKeyProvider().create(dict(RECIPE))
    outs = created.outs or {}
    private = serialization.load_ssh_private_key(outs["private_key"].encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert outs["public_key"] == public.decode()
    assert outs["public_key"].startswith("ssh-ed25519 ")
    assert outs["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert outs["algorithm"] == "ed25519"
    assert created.id == fingerprint(outs["public_key"])


def test_every_create_draws_a_new_key() -> None:
    provider = GeneratedSshKeyProvider()
    keys = {(provider.create(dict(RECIPE)).outs or {})["public_key"] for _ in range(5)}
    assert len(keys) == 5


def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path: Path) -> None:
    outs = GeneratedSshKeyProvider().create(dict(RECIPE)).outs or {}
    path = tmp_path / "key.pub"
    path.write_text(outs["public_key"] + "\n")
    listed = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True)
    assert listed.stdout.split()[1] == fingerprint(outs["public_key"])


def test_diff_is_stable_for_the_same_recipe() -> None:
    provider = GeneratedSshKeyProvider()
    created = provider.create(dict(RECIPE))
    olds = dict(created.outs or {})
    diff = provider.diff(created.id, olds, {**RECIPE, "private_key": None, "public_key": None})
    assert not diff.changes and not diff.replaces
    # read keeps what the state holds: a refresh changes nothing either.
    assert provider.read(created.id, olds).outs == olds


def test_a_recipe_change_replaces_the_key() -> None:
    provider = GeneratedSshKeyProvider()
    created = provider.create(dict(RECIPE))
    diff = provider.diff(created.id, dict(created.outs or {}), {"algorithm": "rsa"})
    assert diff.changes and diff.replaces == ["algorithm"]
    assert diff.delete_before_replace is False


def test_check_refuses_an_unknown_algorithm() -> None:
    provider = GeneratedSshKeyProvider()
    assert provider.check({}, dict(RECIPE)).failures == []
    (failure,) = provider.check({}, {"algorithm": "dsa"}).failures
    assert failure.property == "algorithm"


def test_the_private_half_is_kept_secret_and_the_public_half_plain() -> None:
    def build(opts: pulumi.ResourceOptions) -> GeneratedSshKey:
        return GeneratedSshKey("host-key", opts=opts)

    deployed = run(build, lambda key: {"public": key.public_key})
    assert deployed.one(HOST_KEY).inputs["algorithm"] == "ed25519"
    # The engine encrypts the outputs named here in the state (the mocks do not apply them).
    assert deployed.options["host-key"].additional_secret_outputs == ["private_key"]
    assert deployed.secret == {"public": False}
    assert deployed.values["public"].startswith("ssh-ed25519 ")
