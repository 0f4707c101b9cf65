"""LinodeBalancer under Pulumi mocks: a NodeBalancer only for more than one VM, checking /healthz on port 80
and passing 443 through, its nodes on the VMs' private addresses."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.linode_balancer import LinodeBalancer, LinodeBalancerArgs
from components.linode_vms import LinodeVms, LinodeVmsArgs
from tests.support.linode_mocks import (
    BALANCER,
    BALANCER_CONFIG,
    BALANCER_NODE,
    Run,
    linode_options,
    private,
    public,
    run,
)
from tests.support.pulumi_mocks import COMPUTED

APP = "flightdeck-iaas"


def deploy(count: int) -> Run[LinodeBalancer]:
    def build(opts: pulumi.ResourceOptions) -> LinodeBalancer:
        vms = LinodeVms("vms", LinodeVmsArgs(APP, linode_options(instance_count=count)), opts=opts)
        return LinodeBalancer("entry", LinodeBalancerArgs(APP, "eu-central", vms.vms), opts=opts)

    def outputs(balancer: LinodeBalancer) -> dict[str, Any]:
        found = {"public_address": balancer.public_address}
        if balancer.node_balancer is not None:
            found["balancer_id"] = balancer.node_balancer.id
        return found

    return run(build, outputs)


def test_one_vm_has_no_balancer_and_is_the_public_address() -> None:
    deployed = deploy(1)
    assert deployed.component.node_balancer is None
    assert (
        deployed.of_type(BALANCER)
        == deployed.of_type(BALANCER_CONFIG)
        == deployed.of_type(BALANCER_NODE)
        == []
    )
    assert deployed.values["public_address"] == public(1)


@pytest.mark.parametrize("count", [2, 3])
def test_several_vms_sit_behind_a_balancer_checking_healthz(count: int) -> None:
    deployed = deploy(count)
    balancer = deployed.one(BALANCER)
    assert balancer.inputs["region"] == "eu-central"
    assert balancer.inputs["label"] == f"{APP}-lb"
    assert deployed.values["public_address"] == COMPUTED[BALANCER]["ipv4"]
    configs = {c.inputs["port"]: c.inputs for c in deployed.of_type(BALANCER_CONFIG)}
    assert set(configs) == {80, 443}
    assert configs[80]["protocol"] == "http"
    assert configs[80]["check"] == "http" and configs[80]["checkPath"] == "/healthz"
    assert configs[443]["protocol"] == "tcp" and configs[443]["check"] == "connection"
    assert all(c["nodebalancerId"] == int(deployed.values["balancer_id"]) for c in configs.values())
    nodes = deployed.of_type(BALANCER_NODE)
    assert sorted(n.inputs["address"] for n in nodes) == sorted(
        f"{private(n)}:{port}" for n in range(1, count + 1) for port in (80, 443)
    )
    assert all(n.inputs["mode"] == "accept" and len(n.inputs["label"]) <= 32 for n in nodes)


def test_a_balancer_needs_a_vm() -> None:
    with pytest.raises(ValueError, match="at least one VM"):
        LinodeBalancer("entry", LinodeBalancerArgs(APP, "eu-central", []))
