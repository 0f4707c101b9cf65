"""CI/CD rules read from the workflow files: who may deploy, what prod releases, what runs where."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CLOUD_STACKS = ["dev", "prod", "iaas"]


def load(name: str) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def pulumi_commands(workflow: dict[str, Any]) -> list[str]:
    """Every Pulumi operation a workflow runs, through the action or the CLI."""
    found = []
    for _, step in steps(workflow):
        if step.get("uses", "").startswith("pulumi/actions") and "command" in step.get("with", {}):
            found.append(step["with"]["command"])
        found += re.findall(r"\bpulumi (up|preview|refresh|destroy|import)\b", step.get("run", ""))
    return found


@pytest.fixture(scope="module", params=sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_ci_runs_the_readme_test_command_on_push_and_pull_request() -> None:
    readme = (ROOT / "README.md").read_text()
    [command] = re.findall(r"\| the tests[^|]*\| `([^`]+)` \|", readme)
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    runs = [step.get("run", "") for _, step in steps(ci)]
    assert any(command in run for run in runs), f"{command!r} not run by ci.yml: {runs}"
    assert any(step.get("env", {}).get("REQUIRE_DOCKER") == "1" for _, step in steps(ci))


def test_preview_runs_on_pull_requests_for_every_cloud_stack_and_comments() -> None:
    preview = load("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    [job] = preview["jobs"].values()
    assert job["strategy"]["matrix"]["stack"] == CLOUD_STACKS
    [step] = [s for _, s in steps(preview) if s.get("uses", "").startswith("pulumi/actions")]
    assert step["with"]["command"] == "preview"
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["with"]["comment-on-pr"] is True


@pytest.mark.parametrize("name", ["preview.yml", "drift.yml"])
def test_read_only_workflows_cannot_change_a_stack(name: str) -> None:
    workflow = load(name)
    assert set(pulumi_commands(workflow)) <= {"preview", "refresh"}
    for _, step in steps(workflow):
        if "refresh" in step.get("run", ""):
            assert "--preview-only" in step["run"]
        for value in step.get("env", {}).values():
            secret = re.fullmatch(r"\$\{\{ secrets\.(\w+) \}\}", str(value))
            if secret:
                assert secret[1] in {"PULUMI_ACCESS_TOKEN", "GITHUB_TOKEN"} or secret[1].endswith(
                    "_READ_ONLY"
                )


def test_only_the_deploy_workflow_deploys_and_only_from_main() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        if path.name != "deploy.yml":
            assert "up" not in pulumi_commands(load(path.name)), path.name
    deploy = load("deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}


def test_prod_needs_dev_and_releases_devs_digest_without_building() -> None:
    jobs = load("deploy.yml")["jobs"]
    dev, prod = jobs["dev"], jobs["prod"]
    assert prod["needs"] == "dev"
    assert dev["outputs"]["image_ref"] == "${{ steps.outputs.outputs.image_ref }}"
    [promote] = [s for s in prod["steps"] if "imageDigest" in s.get("run", "")]
    assert promote["run"] == 'pulumi config set --stack prod imageDigest "$IMAGE_REF"'
    assert promote["env"]["IMAGE_REF"] == "${{ needs.dev.outputs.image_ref }}"
    [up] = [s for s in prod["steps"] if s.get("with", {}).get("command") == "up"]
    assert prod["steps"].index(promote) < prod["steps"].index(up)
    assert up["with"]["stack-name"] == "prod"
    assert not any("docker" in s.get("run", "") or "build" in s.get("uses", "") for s in prod["steps"])


def test_prod_waits_for_reviewers_and_deploys_of_a_stack_never_overlap() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["prod"]["environment"]["name"] == "prod"
    groups = {name: job["concurrency"] for name, job in jobs.items()}
    assert groups == {
        "dev": {"group": "deploy-dev", "cancel-in-progress": False},
        "prod": {"group": "deploy-prod", "cancel-in-progress": False},
    }


def test_dev_is_smoke_checked_before_prod_can_start() -> None:
    dev = load("deploy.yml")["jobs"]["dev"]
    names = [s.get("name", "") for s in dev["steps"]]
    assert names.index("Smoke-check dev") > names.index("pulumi up dev (builds and pushes the image)")


def test_drift_checks_every_cloud_stack_daily_and_names_the_one_that_drifted() -> None:
    drift = load("drift.yml")
    assert drift["on"]["schedule"]
    [job] = drift["jobs"].values()
    assert job["strategy"]["matrix"]["stack"] == CLOUD_STACKS
    assert job["strategy"]["fail-fast"] is False
    [run] = [s["run"] for _, s in steps(drift) if "refresh" in s.get("run", "")]
    assert "--expect-no-changes" in run
    assert "stack $STACK drifted" in run


def test_no_expression_is_expanded_inside_a_script(workflow: dict[str, Any]) -> None:
    """Values reach scripts through env only: no script injection, and secrets are masked, never echoed."""
    for job, step in steps(workflow):
        assert "${{" not in step.get("run", ""), f"{job}: {step.get('name')}"


def test_secrets_come_only_from_github_secrets(workflow: dict[str, Any]) -> None:
    text = yaml.safe_dump(workflow)
    assert not re.search(r"(API_KEY|TOKEN|PASSWORD): ['\"]?[A-Za-z0-9_-]{8,}", text.replace("${{", ""))
    for _, step in steps(workflow):
        for name, value in step.get("env", {}).items():
            if re.search(r"KEY|TOKEN|PASSWORD|SECRET", name):
                assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", str(value)), name
