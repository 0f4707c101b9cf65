"""CI/CD rules read from the workflow files: who may deploy, what prod releases, what runs where, and which
runs can ever hold a credential that reads (and so decrypts) prod."""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
CLOUD_STACKS = ["dev", "prod", "iaas"]
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"

# The trust model (docs/operations.md, "CI and secrets"). Every credential is a secret of one of these
# GitHub environments, never a repository or organization secret (those reach every branch's workflows,
# including a pull request's edited copy). The maintainers configure each environment's protection rules
# so that it is released only to the events listed, and give it an identity that reads only the stacks
# listed. In Pulumi Cloud reading a stack includes decrypting its secrets: a credential that can read prod
# decrypts prod.
ENVIRONMENTS: dict[str, tuple[set[str], set[str]]] = {
    # name: (events whose runs may use it, stacks its identity can read)
    "preview": ({"pull_request", "schedule", "workflow_dispatch"}, {"dev", "iaas"}),  # no protection
    "prod-preview": ({"pull_request"}, {"prod"}),  # required reviewers, no self-review
    "prod-read": ({"schedule", "workflow_dispatch"}, {"prod"}),  # branch main only
    "dev": ({"push"}, {"dev"}),  # branch main only
    "prod": ({"push"}, {"prod"}),  # branch main only, required reviewers
}
REVIEWED = {"prod-preview", "prod"}
PROD_ENVIRONMENTS = {name for name, (_, stacks) in ENVIRONMENTS.items() if "prod" in stacks}
PULL_REQUEST_ENVIRONMENTS = {name for name, (events, _) in ENVIRONMENTS.items() if "pull_request" in events}
# Credentials that change things. Read-only workflows never name them (their twins end in _READ_ONLY).
DEPLOY_SECRETS = {"PULUMI_ACCESS_TOKEN", "HEROKU_API_KEY", "LINODE_TOKEN"}
# Triggers that run with the base repository's secrets on behalf of someone else's code.
DANGEROUS_TRIGGERS = {"pull_request_target", "workflow_run", "issue_comment", "pull_request_review_comment"}

PERMISSION_SCOPES = {
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
}
# The only write access any job has: (workflow, job) -> scopes.
WRITES = {("preview.yml", "preview"): {"pull-requests"}}  # the preview comment


def load(name: str) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True)
    return workflow


def triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow["on"]
    return {on} if isinstance(on, str) else set(on)


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def action_steps() -> Iterator[tuple[str, dict[str, Any]]]:
    """The steps of this repository's own (composite) actions: they run inside the workflows' jobs."""
    for path in sorted(ACTIONS.glob("*/action.yml")):
        for step in yaml.safe_load(path.read_text())["runs"].get("steps", []):
            yield path.parent.name, step


def envs(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every env block: the workflow's, each job's, each step's."""
    yield workflow.get("env", {})
    for job in workflow["jobs"].values():
        yield job.get("env", {})
        for step in job.get("steps", []):
            yield step.get("env", {})


def pulumi_commands(workflow: dict[str, Any]) -> list[str]:
    """Every Pulumi operation a workflow runs, through the action or the CLI."""
    found = []
    for _, step in steps(workflow):
        if step.get("uses", "").startswith("pulumi/actions") and "command" in step.get("with", {}):
            found.append(step["with"]["command"])
        found += re.findall(r"\bpulumi (up|preview|refresh|destroy|import)\b", step.get("run", ""))
    return found


def variants(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The matrix entries a job runs as (one empty entry without a matrix)."""
    matrix = job.get("strategy", {}).get("matrix")
    if not matrix:
        return [{}]
    axes = {key: values for key, values in matrix.items() if key not in {"include", "exclude"}}
    # Axes combined with include/exclude have subtle merge rules: keep the matrices simple enough to read.
    assert not (axes and set(matrix) & {"include", "exclude"}), "use either matrix axes or include only"
    if axes:
        return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    return list(matrix["include"])


def expand(value: Any, entry: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: str(entry[m[1]]), str(value))


def environment(job: dict[str, Any], entry: dict[str, Any]) -> str | None:
    env = job.get("environment")
    if env is None:
        return None
    return expand(env["name"] if isinstance(env, dict) else env, entry)


def stacks_touched(job: dict[str, Any], entry: dict[str, Any]) -> set[str]:
    """The stacks a job's steps name: the action's stack-name, `--stack X` or `--stack "$VAR"` in a script."""
    found = set()
    for step in job.get("steps", []):
        if step.get("uses", "").startswith("pulumi/actions") and "stack-name" in step.get("with", {}):
            found.add(expand(step["with"]["stack-name"], entry))
        for name in re.findall(r"--stack[= ]\"?\$?\{?(\w+)", step.get("run", "")):
            found.add(expand(step.get("env", {}).get(name, name), entry))
    return found


def secrets_named(job: dict[str, Any]) -> set[str]:
    # Only `secrets.NAME`: no `secrets[...]`, `toJSON(secrets)` or `secrets: inherit` handing over them all.
    assert "secrets" not in job, "a reusable workflow's call hands over secrets"
    expressions = " ".join(re.findall(r"\$\{\{(.*?)\}\}", yaml.safe_dump(job, width=10**6), re.S))
    assert not re.search(r"\bsecrets\b(?!\.\w)", expressions), "a job names secrets other than by name"
    return set(re.findall(r"\bsecrets\.(\w+)", expressions))


@pytest.fixture(scope="module", params=sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def workflow_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def workflow(workflow_name: str) -> dict[str, Any]:
    return load(workflow_name)


def ci_operations_section() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    [section] = re.findall(r"^## CI and secrets\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return section


# --- what runs where --------------------------------------------------------------------------------------


def test_ci_runs_the_readme_test_command_on_push_and_pull_request() -> None:
    readme = (ROOT / "README.md").read_text()
    [command] = re.findall(r"\| the tests[^|]*\| `([^`]+)` \|", readme)
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    runs = [step.get("run", "") for _, step in steps(ci)]
    assert any(command in run for run in runs), f"{command!r} not run by ci.yml: {runs}"
    assert any(step.get("env", {}).get("REQUIRE_DOCKER") == "1" for _, step in steps(ci))


def test_ci_runs_what_the_ci_entry_point_runs_in_its_environment() -> None:
    """.ci/run (a fresh machine) and ci.yml run the same make goals with the same variables."""
    script = (ROOT / ".ci" / "run").read_text()
    exported = dict(re.findall(r"^export (\w+)=(\S+)$", script, re.M))
    goals = re.findall(r"^make (\w+)$", script, re.M)
    assert goals == ["setup", "test"]
    assert exported["REQUIRE_DOCKER"] == "1"
    [step] = [s for _, s in steps(load("ci.yml")) if "make " in s.get("run", "")]
    words = shlex.split(step["run"])
    assert words[words.index("make") + 1 :] == goals
    assert {name: str(step["env"].get(name)) for name in exported} == exported
    if words[0] == "sudo":  # sudo drops the environment unless told to keep it
        [kept] = [w.split("=", 1)[1] for w in words if w.startswith("--preserve-env=")]
        assert set(exported) <= set(kept.split(","))


def test_preview_runs_on_pull_requests_for_every_cloud_stack_and_comments() -> None:
    preview = load("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    [job] = preview["jobs"].values()
    assert sorted(entry["stack"] for entry in variants(job)) == sorted(CLOUD_STACKS)
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
    for job in workflow["jobs"].values():
        for secret in secrets_named(job):
            assert secret == "GITHUB_TOKEN" or secret.endswith("_READ_ONLY"), secret


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
    assert promote["run"] == 'pulumi config set --stack prod flightdeck:imageDigest "$IMAGE_REF"'
    assert promote["env"]["IMAGE_REF"] == "${{ needs.dev.outputs.image_ref }}"
    [up] = [s for s in prod["steps"] if s.get("with", {}).get("command") == "up"]
    assert prod["steps"].index(promote) < prod["steps"].index(up)
    assert up["with"]["stack-name"] == "prod"
    assert not any("docker" in s.get("run", "") or "build" in s.get("uses", "") for s in prod["steps"])


def config_keys_set(run: str) -> Iterator[str]:
    """The keys of `pulumi config set|rm|get` commands in a script, namespace included."""
    for line in run.splitlines():
        words = shlex.split(line, comments=True)
        for i in range(len(words) - 2):
            if words[i : i + 2] == ["pulumi", "config"] and words[i + 2] in {"set", "rm", "get"}:
                rest = words[i + 3 :]
                while rest and rest[0].startswith("-"):
                    option = rest.pop(0)
                    if option in {"--stack", "-s", "--config-file"} and rest:
                        rest.pop(0)
                if rest:
                    yield rest[0]


def test_workflows_set_only_config_keys_the_project_declares(workflow: dict[str, Any]) -> None:
    """A renamed key (protectDatabase is now protectData) must not linger in a workflow."""
    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    text = yaml.safe_dump(workflow)
    assert set(re.findall(r"\bflightdeck:(\w+)", text)) <= declared
    for _, step in steps(workflow):
        for key in config_keys_set(step.get("run", "")):
            namespace, _, name = key.rpartition(":")
            if namespace in {"", "flightdeck"}:
                assert name in declared, key


def test_prod_waits_for_reviewers_and_deploys_of_a_stack_never_overlap() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["prod"]["environment"]["name"] == "prod"
    assert jobs["dev"]["environment"]["name"] == "dev"
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
    assert sorted(entry["stack"] for entry in variants(job)) == sorted(CLOUD_STACKS)
    assert job["strategy"]["fail-fast"] is False
    [run] = [s["run"] for _, s in steps(drift) if "refresh" in s.get("run", "")]
    assert "--expect-no-changes" in run
    assert "stack $STACK drifted" in run


# --- who holds which credential ---------------------------------------------------------------------------


def test_no_workflow_runs_someone_elses_code_with_this_repositorys_secrets(workflow: dict[str, Any]) -> None:
    """pull_request_target & co. run with this repository's secrets and a write token on behalf of a PR."""
    assert not triggers(workflow) & DANGEROUS_TRIGGERS


def test_every_secret_is_an_environment_secret_released_only_to_the_events_it_is_for(
    workflow_name: str, workflow: dict[str, Any]
) -> None:
    """A job that names a secret (GITHUB_TOKEN aside) runs in an environment, so no credential has to be a
    repository secret, which any branch's edited workflow could read. Each environment is used only by the
    events its protection rules let in, for the stacks its identity can read."""
    for job_name, job in workflow["jobs"].items():
        named = secrets_named(job) - {"GITHUB_TOKEN"}
        for entry in variants(job):
            where = f"{workflow_name}: {job_name} {entry}"
            name = environment(job, entry)
            if named:
                assert name is not None, f"{where} names {named} outside an environment"
            if name is None:
                continue
            assert name in ENVIRONMENTS, f"{where}: unknown environment {name}"
            events, stacks = ENVIRONMENTS[name]
            assert triggers(workflow) <= events, f"{where}: {name} is not released to {triggers(workflow)}"
            assert stacks_touched(job, entry) <= stacks, f"{where}: {name} cannot read those stacks"


def test_pull_request_code_never_holds_a_credential_that_can_decrypt_prod(
    workflow_name: str, workflow: dict[str, Any]
) -> None:
    """A pull request's code (and its edited copy of the workflows) runs in every job of a workflow it
    triggers. Such a job: never names a deploy credential; reads prod only through `prod-preview`, which
    waits for a required reviewer; and runs only for the repository's own branches (a fork's PR gets no
    secrets, so its previews are skipped rather than failing)."""
    if "pull_request" not in triggers(workflow):
        return
    for job_name, job in workflow["jobs"].items():
        assert not secrets_named(job) & DEPLOY_SECRETS, f"{workflow_name}: {job_name}"
        for entry in variants(job):
            where = f"{workflow_name}: {job_name} {entry}"
            name = environment(job, entry)
            if "prod" in stacks_touched(job, entry):
                assert name in PROD_ENVIRONMENTS & REVIEWED, f"{where} reads prod without a reviewer"
            if name is not None:
                assert name in PULL_REQUEST_ENVIRONMENTS, f"{where}: {name} is not for pull requests"
                assert SAME_REPO in " ".join(str(job.get("if", "")).split()), f"{where} runs for forks"
                # Reviewers approve prod alone: a dev preview never waits for them.
                assert (name in PROD_ENVIRONMENTS) == ("prod" in stacks_touched(job, entry)), where


def test_the_environments_and_their_secrets_are_documented() -> None:
    section = ci_operations_section()
    named: set[str] = set()
    used: set[str] = set()
    for path in WORKFLOWS.glob("*.yml"):
        for job in load(path.name)["jobs"].values():
            named |= secrets_named(job) - {"GITHUB_TOKEN"}
            used |= {name for entry in variants(job) if (name := environment(job, entry))}
    assert used == set(ENVIRONMENTS)
    rows = set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))
    assert rows == used, "docs/operations.md, CI and secrets: one table row per environment"
    for secret in sorted(named):
        assert f"`{secret}`" in section, f"docs/operations.md, CI and secrets: {secret} is not described"


def test_checkout_leaves_no_token_behind_for_the_code_it_checks_out(workflow: dict[str, Any]) -> None:
    """By default actions/checkout writes the job's token into .git/config, where later steps can read it."""
    for job, step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, job


# --- permissions, scripts, limits -------------------------------------------------------------------------


def test_permissions_are_granted_per_job_and_only_what_the_job_needs(
    workflow_name: str, workflow: dict[str, Any]
) -> None:
    assert workflow.get("permissions") == {}, "nothing at the top: each job says what it needs"
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{workflow_name}: {job_name} has no permissions block"
        assert set(permissions) <= PERMISSION_SCOPES, permissions
        assert set(permissions.values()) <= {"read", "write", "none"}, permissions
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes == WRITES.get((workflow_name, job_name), set()), f"{workflow_name}: {job_name}"
        if any(s.get("uses", "").startswith("actions/checkout") for s in job.get("steps", [])):
            assert permissions.get("contents") == "read"


def test_no_env_block_holds_a_permission(workflow: dict[str, Any]) -> None:
    """`pull-requests: write` under env is a variable named pull-requests, not a permission."""
    for env in envs(workflow):
        assert not {str(key).lower() for key in env} & PERMISSION_SCOPES, env


def test_a_job_that_comments_on_the_pull_request_may_write_to_it(workflow: dict[str, Any]) -> None:
    for job_name, job in workflow["jobs"].items():
        if any(s.get("with", {}).get("comment-on-pr") for s in job.get("steps", [])):
            assert job["permissions"].get("pull-requests") == "write", job_name


def test_no_expression_is_expanded_inside_a_script(workflow: dict[str, Any]) -> None:
    """Values reach scripts through env only: no script injection, and secrets are masked, never echoed."""
    for job, step in steps(workflow):
        assert "${{" not in step.get("run", ""), f"{job}: {step.get('name')}"


def test_no_expression_is_expanded_inside_a_script_of_our_actions() -> None:
    for action, step in action_steps():
        assert "${{" not in step.get("run", ""), f"{action}: {step.get('name')}"


def test_secrets_come_only_from_github_secrets(workflow: dict[str, Any]) -> None:
    text = yaml.safe_dump(workflow)
    assert not re.search(r"(API_KEY|TOKEN|PASSWORD): ['\"]?[A-Za-z0-9_-]{8,}", text.replace("${{", ""))
    for env in envs(workflow):
        for name, value in env.items():
            if re.search(r"KEY|TOKEN|PASSWORD|SECRET", name):
                assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", str(value)), name


def test_every_job_has_a_timeout_and_runs_of_a_workflow_never_pile_up(workflow: dict[str, Any]) -> None:
    for job_name, job in workflow["jobs"].items():
        assert 0 < job.get("timeout-minutes", 0) <= 90, job_name
        assert "concurrency" in workflow or "concurrency" in job, job_name
