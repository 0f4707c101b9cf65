"""A stack deployed by the old layout (everything at the stack's root, commit f7ed2ac) keeps its resources
under the new one (a ComponentResource per target, targets/): the aliases of targets/outputs.py:moved() map
the old URNs to the new ones, so `pulumi up` replaces nothing.

Proved with the real engine, not mocks (the mock monitor builds URNs differently from the engine): each state
in tests/fixtures/old_layout/ (made by the old program, see the README there) is imported into a fresh file
backend and the current program is previewed against it, inline like tools/pulumi_inline.py, in a workspace
like tools/stack_workspace.py makes. The plugins that cannot be built here (heroku, linode, random, command)
and docker-build are fakes (tests/support/fake_provider.py); Heroku's release and the generated secrets are
the project's own dynamic providers, run by the SDK's real pulumi-resource-pulumi-python.

No Docker engine is needed; the Pulumi CLI is (scripts/install-pulumi): with REQUIRE_DOCKER=1 a missing CLI
is a failure, never a skip.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import pytest
import yaml

from contract import ROOT
from tests.support.fake_provider import PACKAGES, changed_keys, installed_versions, pulumi_root

FIXTURES = ROOT / "tests" / "fixtures"
OLD_LAYOUT = FIXTURES / "old_layout"
HEROKU_API_KEY = "fake-heroku-api-key-0000"  # the value the fixtures were made with (see their README)

# What must survive the move: every resource of these packages, and the Heroku release.
KEPT_PACKAGES = {"heroku", "linode", "docker-build"}
KEPT_TYPES = {"pulumi-python:dynamic/heroku:ContainerRelease"}


@dataclass(frozen=True)
class Expected:
    """What the preview of the current program plans on a state of the old layout, beyond `same`.

    Resources are named `<type>::<name>` (the URN without stack, project and parent types)."""

    # Replaced by design by another mechanism: pulumi-random and pulumi-command are gone from the program,
    # their resources leave the state with their default providers; and what the new program retires
    # (`retired`, the only deletions allowed in the kept packages, e.g. VMs it replaces on purpose).
    deleted: frozenset[str]
    # New by design: the target's component, flightdeck's own dynamic resources, and what the new program
    # adds (`added`, the only creations allowed in the kept packages).
    created: frozenset[str]
    added: frozenset[str] = frozenset()
    retired: frozenset[str] = frozenset()
    # Deliberate input changes of a kept resource: `<type>::<name>` -> the top-level inputs that change.
    updated: dict[str, frozenset[str]] = field(default_factory=dict)


# The dynamic providers' default provider gets the stack's whole config as its inputs: every key Pulumi.yaml
# declares, renames or defaults differently changes them (an update of the provider, never a replacement).
PYTHON_PROVIDER = "pulumi:providers:pulumi-python::default"

_HEROKU = Expected(
    deleted=frozenset(
        {
            "random:index/randomPassword:RandomPassword::heroku-secret-key",
            "pulumi:providers:random::default_4_21_4",
        }
    ),
    created=frozenset(
        {
            "flightdeck:targets:Heroku::heroku",
            "pulumi-python:dynamic/flightdeck:GeneratedSecret::heroku-app-secret-key",
            "heroku:formation/formation:Formation::heroku-app-worker",
            "heroku:formation/formation:Formation::heroku-app-scheduler",
        }
    ),
    # The worker and scheduler process types of app/Procfile, new in the current program.
    added=frozenset(
        {
            "heroku:formation/formation:Formation::heroku-app-worker",
            "heroku:formation/formation:Formation::heroku-app-scheduler",
        }
    ),
    updated={
        # SECRET_KEY is the new GeneratedSecret's value, no longer the RandomPassword's result: the app's
        # sensitive config vars change once (Heroku restarts the dynos with the new key).
        "heroku:app/app:App::heroku-app-app": frozenset({"sensitiveConfigVars"}),
        # The image is built in exec mode on the engine's own BuildKit (builder "default"),
        # components/image.py; the old layout set neither.
        "docker-build:index:Image::heroku-image-build": frozenset({"builder", "exec"}),
        # Every process type of app/Procfile is released (the old layout released web and release only).
        "pulumi-python:dynamic/heroku:ContainerRelease::heroku-app-release": frozenset({"process_types"}),
    },
)

# iaas: the bucket (backups, registry), its key and the NodeBalancer with its address are kept through their
# aliases. The VMs are replaced by design: they now boot inside their firewall and VPC, with no root key and a
# generated host key that is pinned, none of which a running VM can be given (tools/pulumi_inline.py says so
# before anything changes, with how to carry the database over). The images are built on this machine and
# copied to the servers' registry instead of built on the manager's remote builder.
_IAAS_VMS = frozenset(f"linode:index/instance:Instance::iaas-vms-vm-{n}" for n in (1, 2, 3))
_IAAS_ADDED = _IAAS_VMS | {
    "linode:index/vpc:Vpc::iaas-vms-network-vpc",
    "linode:index/vpcSubnet:VpcSubnet::iaas-vms-network-subnet",
    "docker-build:index:Image::iaas-layer-build-build",
    "docker-build:index:Image::iaas-layer-backups-image-build",
    "pulumi:providers:docker-build::default_0_0_22",
}
_IAAS_RETIRED = frozenset(
    {
        *(f"linode:index/instance:Instance::linode-vm-{n}" for n in (1, 2, 3)),
        "linode:index/sshKey:SshKey::linode-ssh-key",  # root gets no key any more
        "docker-build:index:Image::image-build",
        "docker-build:index:Image::backup-image-build",
        "pulumi:providers:docker-build::manager-docker",
    }
)
_IAAS = Expected(
    deleted=_IAAS_RETIRED
    | {
        "command:remote:Command::swarm-deploy",
        "command:remote:Command::registry-stack-deploy",
        "command:remote:Command::linode-swarm-manager",
        "command:remote:Command::linode-swarm-join-2",
        "command:remote:Command::linode-swarm-join-3",
        "command:local:Command::manager-builder",
        "random:index/randomPassword:RandomPassword::database-password",
        "random:index/randomPassword:RandomPassword::secret-key",
        "random:index/randomPassword:RandomPassword::registry-http-secret",
        "random:index/randomPassword:RandomPassword::registry-password",
        "pulumi:providers:random::default_4_21_4",
        "pulumi:providers:command::default_1_2_1",
        "flightdeck:swarm:SwarmStack::swarm",
        "flightdeck:image:AppImage::image",
        "flightdeck:image:AppImage::backup-image",
        "flightdeck:registry_stack:RegistryStack::registry-stack",
        "flightdeck:registry:PrivateRegistry::registry",
        "flightdeck:linode:LinodeHosts::linode",
    },
    created=_IAAS_ADDED
    | {
        "flightdeck:targets:Iaas::iaas",
        "flightdeck:linode:LinodeVms::iaas-vms",
        "flightdeck:linode:LinodeNetwork::iaas-vms-network",
        "flightdeck:linode:LinodeBalancer::iaas-balancer",
        "flightdeck:linode:LinodeObjectStorage::iaas-storage",
        "flightdeck:servers:ServersLayer::iaas-layer",
        "flightdeck:swarm:SwarmHosts::iaas-layer-swarm",
        "flightdeck:swarm:SwarmStack::iaas-layer-stack",
        "flightdeck:local_registry:LocalRegistry::iaas-layer-build-registry",
        "flightdeck:registry:PrivateRegistry::iaas-layer-registry",
        "flightdeck:image:AppImage::iaas-layer-build",
        "flightdeck:promotion:PromotedImage::iaas-layer-image",
        "flightdeck:backups:BackupJob::iaas-layer-backups",
        "flightdeck:image:AppImage::iaas-layer-backups-image",
        "flightdeck:promotion:PromotedImage::iaas-layer-backups-copy",
        "pulumi:providers:pulumi-python::default",
        *(f"pulumi-python:dynamic/flightdeck:GeneratedSshKey::iaas-vms-vm-{n}-host-key" for n in (1, 2, 3)),
        *(
            f"pulumi-python:dynamic/flightdeck:GeneratedSecret::iaas-vms-vm-{n}-root-password"
            for n in (1, 2, 3)
        ),
        *(
            f"pulumi-python:dynamic/flightdeck:GeneratedSecret::iaas-layer-{name}"
            for name in ("database-password", "secret-key", "registry-password", "registry-http-secret")
        ),
        "pulumi-python:dynamic/flightdeck:RegistryContainer::iaas-layer-build-registry-container",
        "pulumi-python:dynamic/flightdeck:SwarmCluster::iaas-layer-swarm-cluster",
        "pulumi-python:dynamic/flightdeck:SwarmVolume::iaas-layer-stack-database-volume",
        "pulumi-python:dynamic/flightdeck:SwarmDeployment::iaas-layer-registry-deployment",
        "pulumi-python:dynamic/flightdeck:SwarmDeployment::iaas-layer-stack-deployment",
        "pulumi-python:dynamic/flightdeck:ImageCopy::iaas-layer-image-copy",
        "pulumi-python:dynamic/flightdeck:ImageCopy::iaas-layer-backups-copy-copy",
    },
    added=_IAAS_ADDED,
    retired=_IAAS_RETIRED,
    updated={
        # The new VMs go behind the firewall, which now also lets the swarm's ports in from the VPC only.
        "linode:index/firewall:Firewall::iaas-vms-network-firewall": frozenset({"inbounds", "linodes"}),
        # The balancer's nodes point at the new VMs' private addresses.
        **{
            f"linode:index/nodeBalancerNode:NodeBalancerNode::iaas-balancer-lb-{port}-vm-{n}": frozenset(
                {"address"}
            )
            for port in (80, 443)
            for n in (1, 2, 3)
        },
    },
)

EXPECTED: dict[str, Expected] = {
    "dev": _HEROKU,
    "prod": _HEROKU,
    # Promotion: the copy into prod's repository was a pulumi-command script; it is an ImageCopy now, and
    # nothing is built.
    "prod-promoted": Expected(
        deleted=_HEROKU.deleted
        | {"command:local:Command::image-copy", "pulumi:providers:command::default_1_2_1"},
        created=_HEROKU.created | {"pulumi-python:dynamic/flightdeck:ImageCopy::heroku-image-copy"},
        added=_HEROKU.added,
        updated={
            **{k: v for k, v in _HEROKU.updated.items() if not k.startswith("docker-build:")},
            # The release's image is the new ImageCopy's output: unknown until the copy has run (the same
            # repository@digest as before).
            "pulumi-python:dynamic/heroku:ContainerRelease::heroku-app-release": frozenset(
                {"image_ref", "process_types"}
            ),
        },
    ),
    "iaas": _IAAS,
}

CASES = list(EXPECTED)


# -- the engine ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[ProcessPoolExecutor]:
    """A fresh interpreter per preview: the inline program must not share the SDK's globals (settings,
    config, mocks) with the unit tests of this session."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        yield pool


def plugin_versions(fixture: dict[str, Any]) -> dict[str, str]:
    """The fake plugins' versions: what the state records for each package's provider (random and command,
    whose SDKs the project no longer has, included), else the version of the package's SDK here."""
    recorded = {
        r["type"].removeprefix("pulumi:providers:"): r["inputs"]["version"]
        for r in fixture["deployment"]["deployment"]["resources"]
        if r["type"].startswith("pulumi:providers:") and "version" in r.get("inputs", {})
    }
    return {**installed_versions(), **{p: v for p, v in recorded.items() if p in PACKAGES}}


def relocated(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture's deployment as if the old layout had run from this checkout at this commit: its image
    inputs name the checkout's absolute path and tag the commit, which any new commit or runner changes."""
    from components.image import git_head_sha

    text = json.dumps(fixture["deployment"]["deployment"])
    text = text.replace(fixture["checkout"], str(ROOT)).replace(fixture["commit"], git_head_sha())
    return dict(json.loads(text))


def preview_over(
    work: Path, root: Path, stack: str, deployment: dict[str, Any], env: dict[str, str]
) -> list[dict[str, Any]]:
    """Runs in the engine's process: import the state, preview the project's program on it, return the steps
    (op, urn, type, the old URN, the changed keys)."""
    for inherited in [key for key in os.environ if key.startswith("PULUMI_")]:
        del os.environ[inherited]  # a developer's backend, passphrase file or access token
    os.environ.update(env)
    from pulumi import automation as auto

    from tools.pulumi_inline import open_stack

    workspace = open_stack(ROOT, work, stack, root)
    workspace.import_stack(auto.Deployment(version=3, deployment=deployment))
    steps: list[dict[str, Any]] = []

    def collect(event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is None:
            return
        step = pre.metadata
        steps.append(
            {
                "op": str(getattr(step.op, "value", step.op)),
                "urn": step.urn,
                "type": step.type,
                "old_urn": step.old.urn if step.old else None,
                # The provider's changed keys (a dynamic provider names none: then the inputs that differ).
                "diffs": sorted(step.diffs or [])
                or (
                    changed_keys(step.old.inputs or {}, step.new.inputs or {})
                    if step.old and step.new
                    else []
                ),
            }
        )

    try:
        workspace.preview(on_event=collect, color="never")
    except auto.CommandError as error:  # its result does not pickle across processes
        raise RuntimeError(str(error)) from None
    return steps


@pytest.fixture
def planned(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pulumi_bin: Path,
    engine: ProcessPoolExecutor,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import tools.stack_workspace

    fixture = json.loads((OLD_LAYOUT / f"{request.param}.json").read_text())
    stack = fixture["stack"]
    state = tmp_path / "state"
    # The workspace's stack file: the fixture's salt (its secrets are encrypted with it) and the extra
    # config it was made with (prod-promoted's imageDigest), merged by tools/stack_workspace.py with the
    # tracked stack file.
    workspace = state / "workspaces" / stack
    workspace.mkdir(parents=True)
    (workspace / f"Pulumi.{stack}.yaml").write_text(
        yaml.safe_dump({"encryptionsalt": fixture["encryptionsalt"], "config": fixture["config"]})
    )
    work = tools.stack_workspace.prepare(ROOT, state, stack, standins=False)
    root = pulumi_root(
        tmp_path / "pulumi", pulumi_bin, plugin_versions(fixture), keep=["pulumi-resource-pulumi-python"]
    )
    (tmp_path / "home").mkdir()
    env = {
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": fixture["passphrase"],
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The project's dynamic providers run in this venv and import its packages (providers/).
        "PULUMI_RUNTIME_TOOLCHAIN": "uv",
        "PULUMI_RUNTIME_VIRTUALENV": sys.prefix,
        "PYTHONPATH": str(ROOT),
        "FAKE_PROVIDER_LOG": str(tmp_path / "calls.jsonl"),
    }
    if stack in ("dev", "prod"):
        env["HEROKU_API_KEY"] = HEROKU_API_KEY
    future = engine.submit(preview_over, work, root, stack, relocated(fixture), env)
    try:
        steps = future.result(timeout=120)
    except RuntimeError as error:
        pytest.fail(f"the preview of {request.param} failed:\n{error}", pytrace=False)
    return fixture, steps


# -- the checks ------------------------------------------------------------------------------------------


def short(urn: str) -> str:
    """`<type>::<name>` of a URN: its own type, without stack, project and parent types."""
    _, _, qualified, name = urn.split("::", 3)
    return f"{qualified.rsplit('$', 1)[-1]}::{name}"


def kept(kind: str) -> bool:
    package = kind.removeprefix("pulumi:providers:").split(":", 1)[0]
    return package in KEPT_PACKAGES or kind in KEPT_TYPES


def table(steps: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {s['op']:>18} {short(s['urn'])}"
        + (f" (was {short(s['old_urn'])})" if s["old_urn"] and s["old_urn"] != s["urn"] else "")
        + (f" {s['diffs']}" if s["diffs"] else "")
        for s in steps
    )


@pytest.mark.parametrize("planned", CASES, indirect=True)
def test_the_new_layout_keeps_every_resource_of_a_stack_the_old_one_deployed(
    planned: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    fixture, steps = planned
    case = "prod-promoted" if fixture["config"] else fixture["stack"]
    expected = EXPECTED[case]
    plan = f"the preview of {case} on the old layout's state:\n{table(steps)}"
    steps = [s for s in steps if s["type"] != "pulumi:pulumi:Stack"]

    # Nothing of Heroku, Linode or the image is recreated: each is `same`, or updated in place where the new
    # layout changes its inputs on purpose (Expected.updated, with the inputs that change).
    by_design = {("create", n) for n in expected.added} | {("delete", n) for n in expected.retired}
    for step in steps:
        name = short(step["urn"])
        if (step["op"], name) in by_design:
            continue
        if kept(step["type"]):
            assert step["op"] in ("same", "update"), f"{name} is {step['op']}d\n{plan}"
        if step["op"] == "update" and name != PYTHON_PROVIDER:
            assert expected.updated.get(name) == frozenset(step["diffs"]), f"{name}: {step['diffs']}\n{plan}"
    python_provider = [s for s in steps if short(s["urn"]) == PYTHON_PROVIDER and s["op"] == "update"]
    for step in python_provider:
        assert all(key.startswith("flightdeck:") for key in step["diffs"]), plan
    # Each of those old resources is found through its alias.
    resources = fixture["deployment"]["deployment"]["resources"]
    old_kept = {r["urn"] for r in resources if kept(r["type"]) and short(r["urn"]) not in expected.retired}
    found = {s["old_urn"] for s in steps if s["op"] in ("same", "update")}
    assert not old_kept - found, f"not found through an alias: {sorted(old_kept - found)}\n{plan}"

    # What changes, exactly.
    ops = {op: {short(s["urn"]) for s in steps if s["op"] == op} for op in ("create", "delete", "update")}
    assert ops["delete"] == expected.deleted, plan
    assert ops["create"] == expected.created, plan
    assert ops["update"] - {PYTHON_PROVIDER} == set(expected.updated), plan
    assert {s["op"] for s in steps} <= {"same", "update", "create", "delete"}, plan


# -- the release provider a state of the old layout holds -----------------------------------------------


def test_a_release_provider_serialized_by_the_old_layout_loads_as_the_current_one() -> None:
    """The old layout's state holds its Heroku release provider pickled by reference to
    components.heroku_release; the engine unpickles it to refresh or delete the release."""
    from providers.heroku_release import HerokuReleaseProvider, RetryPolicy

    serialized = (FIXTURES / "old_heroku_release_provider.b64").read_text().strip()
    provider = dill.loads(base64.b64decode(serialized))  # noqa: S301 (committed bytes of this project)
    assert isinstance(provider, HerokuReleaseProvider)
    assert (provider.api_url, provider.registry_url, provider.retry) == (
        "https://api.heroku.com",
        None,
        RetryPolicy(),
    )
    # The current code diffs a release the old layout recorded (no process_types: it released web and
    # release): the same types are no change, the Procfile's worker and scheduler are a release of them.
    recorded = {
        "app": "flightdeck-dev",
        "image_ref": "registry.heroku.com/flightdeck-dev/web@sha256:" + "0" * 64,
    }
    same = {**recorded, "process_types": ["web", "release"]}
    assert not provider.diff("flightdeck-dev", recorded, same).changes
    every = {**recorded, "process_types": ["web", "worker", "scheduler", "release"]}
    assert provider.diff("flightdeck-dev", recorded, every).changes
