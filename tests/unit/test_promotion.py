"""Promotion of an already-built image: pure ref handling and the resources it declares under mocks."""

from __future__ import annotations

import pulumi
import pytest

from components.promotion import PromotedImage, PromotedImageArgs, promotion_tag, split_ref
from tests.support.pulumi_mocks import use_mocks
from tests.support.secrets import is_secret, reveal

DIGEST = "sha256:" + "0123456789abcdef" * 4
DEV_REF = f"registry.heroku.com/flightdeck-dev/web@{DIGEST}"
MOCKS = use_mocks()


def test_split_ref_takes_only_references_by_digest() -> None:
    assert split_ref(DEV_REF) == ("registry.heroku.com/flightdeck-dev/web", DIGEST)
    for bad in ["registry.heroku.com/flightdeck-dev/web:latest", f"web@{DIGEST[:-1]}", "sha256:" + "0" * 64]:
        with pytest.raises(ValueError, match="not an image reference by digest"):
            split_ref(bad)


def test_the_copy_is_tagged_after_its_digest() -> None:
    assert promotion_tag("r.example/app/web", DIGEST) == "r.example/app/web:promoted-0123456789ab"


@pulumi.runtime.test
def test_an_image_already_in_the_target_repository_is_not_copied() -> pulumi.Output[None]:
    MOCKS.resources.clear()
    image = PromotedImage(
        "same", PromotedImageArgs(source=DEV_REF, repository="registry.heroku.com/flightdeck-dev/web")
    )

    def check(ref: str) -> None:
        assert ref == DEV_REF
        assert MOCKS.of_type("command:local:Command") == []

    return image.ref.apply(check)


@pulumi.runtime.test
def test_promotion_copies_into_the_target_repository_with_secret_credentials() -> pulumi.Output[None]:
    MOCKS.resources.clear()
    image = PromotedImage(
        "prod",
        PromotedImageArgs(
            source=DEV_REF,
            repository="registry.heroku.com/flightdeck-prod/web",
            registry_username="_",
            registry_password="heroku-api-key",
        ),
    )

    def check(ref: str) -> None:
        assert ref == f"registry.heroku.com/flightdeck-prod/web@{DIGEST}"
        [copy] = MOCKS.of_type("command:local:Command")
        assert copy.name == "prod-copy"
        assert is_secret(copy.inputs["environment"])  # it holds the registry password
        env = reveal(copy.inputs["environment"])
        assert env["REGISTRY_PASSWORD"] == "heroku-api-key"
        assert env["SOURCE"] == DEV_REF
        assert env["DESTINATION"] == "registry.heroku.com/flightdeck-prod/web:promoted-0123456789ab"
        assert env["DIGEST"] == DIGEST
        assert env["REGISTRY_HOST"] == "registry.heroku.com"
        assert copy.inputs["triggers"] == [DEV_REF, "registry.heroku.com/flightdeck-prod/web"]
        assert "heroku-api-key" not in copy.inputs["create"]

    return image.ref.apply(check)
