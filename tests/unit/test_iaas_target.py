"""The iaas target under Pulumi mocks (targets/iaas.py): the Linode VMs made into the servers layer's hosts,
the bucket and its key handed to the registry and the backups, the balancer's address as the app's; with three
VMs (Pulumi.iaas.yaml), with one, and with a managed database. The Linode components themselves are tested in
tests/unit/test_linode_*.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.linode_mocks import INSTANCE
from tests.support.pulumi_mocks import COMPUTED, RecordingMocks
from tests.support.secrets import reveal, unwrap
from tests.support.stack_runs import run_stack, stack_document

CLUSTER = "pulumi-python:dynamic/flightdeck:SwarmCluster"
HOST_KEY = "pulumi-python:dynamic/flightdeck:GeneratedSshKey"
BUCKET_KEY = COMPUTED["linode:index/objectStorageKey:ObjectStorageKey"]
BALANCER_IP = COMPUTED["linode:index/nodeBalancer:NodeBalancer"]["ipv4"]


@pytest.fixture(scope="module")
def three() -> tuple[RecordingMocks, dict[str, Any]]:
    mocks, outputs = run_stack("iaas")
    return RecordingMocks(resources=list(mocks.resources)), outputs


def vpc_address(vm: Any) -> str:
    [vpc] = [i for i in vm.inputs["interfaces"] if i["purpose"] == "vpc"]
    return str(vpc["ipv4"]["vpc"])


def test_each_vm_is_a_swarm_host_over_ssh_advertising_its_private_address(three: Any) -> None:
    mocks, _ = three
    vms = mocks.of_type(INSTANCE)
    [cluster] = mocks.of_type(CLUSTER)
    hosts = cluster.inputs["hosts"]
    assert len(hosts) == len(vms) == 3
    assert [h["role"] for h in hosts] == ["manager", "worker", "worker"]
    assert {h["address"] for h in hosts} == {vpc_address(vm) for vm in vms}  # swarm traffic stays in the VPC
    for host in hosts:
        assert host["engine"].startswith("ssh://") and host["engine"].endswith(":22")
        assert not host["engine"].startswith("ssh://root@")  # the deploy user, never root
        assert host["label"].startswith("the Linode VM ")


def test_each_vms_generated_host_key_is_pinned(three: Any) -> None:
    mocks, _ = three
    [cluster] = mocks.of_type(CLUSTER)
    trust = unwrap(cluster.inputs["ssh"])[0]
    engines = {h["engine"].split("@", 1)[1].rsplit(":", 1)[0] for h in cluster.inputs["hosts"]}
    assert {h["address"] for h in trust["hosts"]} == engines  # pinned for the address SSH connects to
    keys = [h["host_key"] for h in trust["hosts"]]
    assert len(set(keys)) == 3 and all(k.startswith("ssh-ed25519 ") for k in keys)
    assert len(mocks.of_type(HOST_KEY)) == 3


def test_the_bucket_and_its_key_serve_the_registry_and_the_backups(three: Any) -> None:
    mocks, outputs = three
    registry = mocks.named("iaas-layer-registry-deployment")
    files = reveal(registry.inputs["secrets"])
    s3 = yaml.safe_load(files["registry_config"])["storage"]["s3"]
    assert (s3["bucket"], s3["regionendpoint"], s3["secure"]) == (
        "flightdeck-iaas-data", "https://eu-central-1.linodeobjects.com", True
    )  # fmt: skip
    credentials = files["bucket_credentials"]
    assert BUCKET_KEY["access_key"] in credentials and BUCKET_KEY["secret_key"] in credentials
    app = mocks.named("iaas-layer-stack-deployment")
    backup = stack_document(app)["services"]["backup"]["environment"]
    assert (backup["BACKUP_BUCKET"], backup["BACKUP_S3_ENDPOINT"]) == (
        "flightdeck-iaas-data", "https://eu-central-1.linodeobjects.com"
    )  # fmt: skip
    assert reveal(app.inputs["secrets"])["bucket_credentials"] == credentials
    assert outputs["bucket"] == "flightdeck-iaas-data"


def test_the_app_answers_at_the_domain_and_the_balancers_address(three: Any) -> None:
    mocks, outputs = three
    assert outputs["url"] == "https://flights-iaas.example.com"
    assert outputs["public_address"] == BALANCER_IP
    document = stack_document(mocks.named("iaas-layer-stack-deployment"))
    hosts = document["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")
    assert hosts[0] == "flights-iaas.example.com" and BALANCER_IP in hosts
    assert document["services"]["web"]["deploy"]["replicas"] == 3


def test_one_vm_is_its_own_address_and_the_only_host() -> None:
    mocks, outputs = run_stack("iaas", linodeInstanceCount=1, webInstances=1, domain=None)
    [cluster] = mocks.of_type(CLUSTER)
    [host] = cluster.inputs["hosts"]
    assert host["role"] == "manager"
    address = host["engine"].split("@", 1)[1].rsplit(":", 1)[0]
    assert outputs["url"] == f"http://{address}" and outputs["public_address"] == address
    assert outputs["manager_address"] == address
    assert mocks.of_type("linode:index/nodeBalancer:NodeBalancer") == []


def test_iaas_costs_what_its_vms_and_services_cost(three: Any) -> None:
    _, outputs = three
    assert [i["item"] for i in outputs["monthly_cost"]["items"]] == [
        "Linode g6-standard-1",
        "Linode Backups for g6-standard-1",
        "NodeBalancer",
        "Object Storage",
    ]
