"""The iaas target runs exactly the servers layer on its VMs: for the same host (address, user, pinned key),
the same app settings and the same bucket, both targets give the swarm, the registry, the image copy and the
app's deployment the same inputs. Under Pulumi mocks, the whole program of each stack."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.program import run_program
from tests.support.pulumi_mocks import COMPUTED, Declared, RecordingMocks
from tests.support.secrets import reveal

DEPLOYMENT = "pulumi-python:dynamic/flightdeck:SwarmDeployment"
CLUSTER = "pulumi-python:dynamic/flightdeck:SwarmCluster"
COPY = "pulumi-python:dynamic/flightdeck:ImageCopy"
BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
VM = "linode:index/instance:Instance"
BUCKET_KEY = COMPUTED["linode:index/objectStorageKey:ObjectStorageKey"]


def of_type(mocks: RecordingMocks, kind: str) -> list[Declared]:
    return [r for r in mocks.resources if r.type == kind]


def inputs(resource: Declared) -> dict[str, Any]:
    """What the provider is given, secrets unwrapped, without the pickled provider itself."""
    return {k: v for k, v in reveal(resource.inputs).items() if k != "__provider"}


def iaas_with_one_vm() -> tuple[RecordingMocks, dict[str, Any]]:
    return run_program("iaas", linodeInstanceCount=1, webInstances=2)


def test_iaas_and_servers_give_the_same_deployment_inputs_for_the_same_host() -> None:
    iaas, _ = iaas_with_one_vm()
    [vm] = of_type(iaas, VM)
    [cluster] = of_type(iaas, CLUSTER)
    [manager] = inputs(cluster)["hosts"]
    address = manager["engine"].removeprefix("ssh://deploy@").rsplit(":", 1)[0]
    app_iaas = next(inputs(r) for r in of_type(iaas, DEPLOYMENT) if r.inputs.get("app_services"))
    [pinned] = inputs(cluster)["ssh"]["hosts"]
    assert pinned["address"] == address
    [bucket] = of_type(iaas, BUCKET)
    servers, _ = run_program(
        "servers",
        appName="flightdeck-iaas",
        domain="flights-iaas.example.com",
        webInstances=2,
        protectData=False,
        servers=[
            {
                "name": vm.inputs["label"],
                "address": address,
                "user": "deploy",
                "role": "manager",
                "hostKey": pinned["host_key"],
            }
        ],
        bucketEndpoint="https://eu-central-1.linodeobjects.com",
        bucketName=bucket.inputs["label"],
        bucketRegion="eu-central",
        bucketAccessKey=BUCKET_KEY["access_key"],
        bucketSecretKey=BUCKET_KEY["secret_key"],
    )
    app_servers = next(inputs(r) for r in of_type(servers, DEPLOYMENT) if r.inputs.get("app_services"))
    # One difference: the servers' bucket (any S3 API) has no lifecycle rules, so their backup job writes
    # the expiry rule; the iaas bucket's rules are Linode resources of the stack.
    documents = [yaml.safe_load(app["stack_file"]) for app in (app_servers, app_iaas)]
    expiry = documents[0]["services"]["backup"]["environment"].pop("BACKUP_RETENTION_DAYS")
    assert expiry == "14" and documents[0] == documents[1]
    assert {**app_servers, "stack_file": None} == {**app_iaas, "stack_file": None}
    registry = [
        [inputs(r) for r in of_type(m, DEPLOYMENT) if not r.inputs.get("app_services")]
        for m in (iaas, servers)
    ]
    assert registry[0] == registry[1] and len(registry[0]) == 1
    copies = [sorted((inputs(r) for r in of_type(m, COPY)), key=str) for m in (iaas, servers)]
    assert copies[0] == copies[1] and len(copies[0]) == 2  # the app image and the backup image
    # The swarm: the same host, engine and pinned key; iaas advertises the VM's VPC address instead.
    [server] = inputs(of_type(servers, CLUSTER)[0])["hosts"]
    assert {k: server[k] for k in ("name", "engine", "role")} == {
        k: manager[k] for k in ("name", "engine", "role")
    }
    assert inputs(of_type(servers, CLUSTER)[0])["ssh"] == inputs(cluster)["ssh"]
    assert manager["address"].startswith("172.16.0.") and server["address"] == address
