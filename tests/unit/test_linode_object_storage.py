"""LinodeObjectStorage under Pulumi mocks: a versioned bucket whose lifecycle follows the backup retention,
a key scoped to that bucket alone, secret credentials, and protection on request."""

from __future__ import annotations

import pulumi
import pytest

from components.linode_object_storage import (
    LinodeObjectStorage,
    LinodeObjectStorageArgs,
    bucket_label,
    endpoint_url,
)
from tests.support.linode_mocks import BUCKET, BUCKET_KEY, Run, run
from tests.support.pulumi_mocks import COMPUTED

APP = "flightdeck-iaas"


def deploy(*, protect_data: bool = False, retention_days: int = 30) -> Run[LinodeObjectStorage]:
    args = LinodeObjectStorageArgs(APP, "eu-central", retention_days, protect_data=protect_data)

    def build(opts: pulumi.ResourceOptions) -> LinodeObjectStorage:
        return LinodeObjectStorage("storage", args, opts=opts)

    return run(build, lambda s: {"access_key": s.access_key, "secret_key": s.secret_key})


def test_bucket_is_versioned_and_expires_backups_and_old_versions_after_the_retention() -> None:
    deployed = deploy(retention_days=30)
    bucket = deployed.one(BUCKET)
    assert bucket.inputs["label"] == "flightdeck-iaas-data" == deployed.component.bucket_name
    assert bucket.inputs["region"] == "eu-central" == deployed.component.region
    assert bucket.inputs["versioning"] is True
    rules = {r["id"]: r for r in bucket.inputs["lifecycleRules"]}
    assert set(rules) == {"expire-backups", "tidy-versions"}
    assert all(r["enabled"] for r in rules.values())
    assert rules["expire-backups"]["prefix"] == "backups/"
    assert rules["expire-backups"]["expiration"] == {"days": 30}
    assert "prefix" not in rules["tidy-versions"]  # every object's old versions
    assert rules["tidy-versions"]["noncurrentVersionExpiration"] == {"days": 30}
    assert rules["tidy-versions"]["abortIncompleteMultipartUploadDays"] == 1
    assert deploy(retention_days=7).one(BUCKET).inputs["lifecycleRules"][0]["expiration"] == {"days": 7}


def test_the_key_reads_and_writes_this_bucket_only_and_its_halves_are_secret() -> None:
    deployed = deploy()
    key = deployed.one(BUCKET_KEY)
    assert key.inputs["bucketAccesses"] == [
        {"bucketName": "flightdeck-iaas-data", "region": "eu-central", "permissions": "read_write"}
    ]
    assert "regions" not in key.inputs  # no right to make buckets
    assert deployed.values["access_key"] == COMPUTED[BUCKET_KEY]["access_key"]
    assert deployed.values["secret_key"] == COMPUTED[BUCKET_KEY]["secret_key"]
    assert deployed.secret == {"access_key": True, "secret_key": True}
    assert deployed.component.endpoint_url == "https://eu-central-1.linodeobjects.com"


@pytest.mark.parametrize("protect", [False, True])
def test_the_bucket_is_protected_and_retained_on_request(protect: bool) -> None:
    deployed = deploy(protect_data=protect)
    options = deployed.options["storage-bucket"]
    assert bool(options.protect) is protect
    assert bool(options.retain_on_delete) is protect
    assert not deployed.options["storage-key"].protect  # a key is made anew at no loss


def test_names_are_known_before_the_bucket_exists() -> None:
    assert bucket_label("a" * 70) == "a" * 58 + "-data"
    assert len(bucket_label("a" * 70)) == 63
    assert endpoint_url("us-ord") == "https://us-ord-1.linodeobjects.com"
