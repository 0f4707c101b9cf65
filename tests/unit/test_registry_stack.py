"""The registry's swarm stack: its file (pure, checked against the compose spec), RegistryStack under mocks,
and the deploy script run against a stand-in `docker` and `curl` that record what they are asked."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import registry_stack as rs
from components.registry import BUCKET_CREDENTIALS_SECRET, CONFIG_SECRET, HTPASSWD_SECRET
from components.swarm import SshTarget
from tests.support.compose import compose_spec_problems
from tests.support.pulumi_mocks import MOCKS, RecordingMocks, use_mocks
from tests.support.secrets import unwrap

FILES = {
    CONFIG_SECRET: '{"version": "0.1"}\n',
    HTPASSWD_SECRET: "flightdeck:$2a$04$" + "x" * 53 + "\n",
    BUCKET_CREDENTIALS_SECRET: "[default]\naws_access_key_id = A\naws_secret_access_key = S\n",
}
KEY = "registry-password-0123"
STACK = "airline-registry"
LONGEST_APP = "a" * 30  # settings allow 3-30 characters


def render(files: dict[str, str] = FILES) -> str:
    return rs.render_registry_stack(
        stack=STACK, image="registry:2", secrets=rs.secret_names(STACK, files, KEY)
    )


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(render())
    return loaded


def test_the_file_is_valid_against_the_compose_spec(tmp_path: Path) -> None:
    assert compose_spec_problems(render(), tmp_path) == ""


def test_one_registry_per_node_on_the_host_port_reading_the_bucket() -> None:
    doc = document()
    service = doc["services"]["registry"]
    assert service["image"] == "registry:2"
    assert service["deploy"]["mode"] == "global"
    assert "replicas" not in service["deploy"]
    assert service["ports"] == [{"target": 5000, "published": 5000, "protocol": "tcp", "mode": "host"}]
    assert service["networks"] == [rs.NETWORK]
    assert doc["networks"] == {rs.NETWORK: {"driver": "overlay"}}
    assert service["environment"] == {"AWS_SHARED_CREDENTIALS_FILE": "/run/secrets/bucket_credentials"}
    assert "volumes" not in service and "volumes" not in doc
    assert {s["source"] for s in service["secrets"]} == set(FILES)


def test_secrets_are_external_and_named_by_a_keyed_digest_of_their_content() -> None:
    names = rs.secret_names(STACK, FILES, KEY)
    assert document()["secrets"] == {key: {"external": True, "name": names[key]} for key in FILES}
    assert names[CONFIG_SECRET].startswith(f"{STACK}_config_")
    rendered = render()
    for content in FILES.values():
        assert content.strip() not in rendered
    # A new value is a new secret; the others keep their names.
    changed = rs.secret_names(STACK, {**FILES, HTPASSWD_SECRET: "flightdeck:other\n"}, KEY)
    assert changed[HTPASSWD_SECRET] != names[HTPASSWD_SECRET]
    assert {k: v for k, v in changed.items() if k != HTPASSWD_SECRET} == {
        k: v for k, v in names.items() if k != HTPASSWD_SECRET
    }
    # Keyed: the same content under another key gives other names.
    assert rs.secret_names(STACK, FILES, "another-key") != names


def test_names_fit_swarm_for_the_longest_app_name() -> None:
    names = rs.secret_names(rs.stack_name(LONGEST_APP), FILES, KEY)
    assert max(len(n) for n in names.values()) <= 64


def test_every_registry_secret_is_required() -> None:
    partial = {CONFIG_SECRET: "x", HTPASSWD_SECRET: "y"}
    with pytest.raises(ValueError, match="bucket_credentials"):
        rs.secret_names(STACK, partial, KEY)
    with pytest.raises(ValueError, match="bucket_credentials"):
        rs.render_registry_stack(stack=STACK, image="registry:2", secrets=partial)


def test_the_script_is_shellcheck_clean() -> None:
    check = subprocess.run(["shellcheck", str(rs.DEPLOY_SCRIPT)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout


# --- RegistryStack under mocks ---------------------------------------------------------------------------


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    yield use_mocks("iaas")


def test_registry_stack_deploys_over_ssh_with_the_secrets_in_the_environment(mocks: RecordingMocks) -> None:
    captured: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[None]:
        stack = rs.RegistryStack(
            "registry-stack",
            rs.RegistryStackArgs(
                app_name="airline",
                image="registry:2",
                config=pulumi.Output.secret(FILES[CONFIG_SECRET]),
                htpasswd=pulumi.Output.secret(FILES[HTPASSWD_SECRET]),
                bucket_credentials=pulumi.Output.secret(FILES[BUCKET_CREDENTIALS_SECRET]),
                username="flightdeck",
                password=pulumi.Output.secret(KEY),
                ssh=SshTarget(host="203.0.113.10", user="deploy"),
            ),
        )
        return pulumi.Output.all(stack.stack_file, stack.address).apply(
            lambda v: captured.update(stack_file=v[0], address=v[1])
        )

    program()
    assert [r.type for r in MOCKS.resources] == [
        "flightdeck:registry_stack:RegistryStack",
        "command:remote:Command",
    ]
    deploy = MOCKS.named("registry-stack-deploy")
    connection, _ = unwrap(deploy.inputs["connection"])  # the SDK always sends it as a secret
    assert connection["host"] == "203.0.113.10" and connection["user"] == "deploy"
    assert "privateKey" not in connection  # no key: the SSH agent of whoever runs `pulumi up`
    script = rs.DEPLOY_SCRIPT.read_text()
    assert deploy.inputs["create"] == deploy.inputs["update"] == script
    assert deploy.inputs["delete"] == "FLIGHTDECK_ACTION=delete\n" + script
    stdin, stdin_secret = unwrap(deploy.inputs["stdin"])
    assert not stdin_secret  # plain: its diff shows in `pulumi preview`
    assert stdin == captured["stack_file"] == render()
    environment, environment_secret = unwrap(deploy.inputs["environment"])
    assert environment_secret
    names = rs.secret_names(STACK, FILES, KEY)
    assert environment["FLIGHTDECK_SECRETS"] == "".join(
        f"{rs.SECRET_KEYS[s]} {names[s]}\n" for s in sorted(names)
    )
    assert {k: environment[f"FLIGHTDECK_SECRET_{rs.SECRET_KEYS[k]}"] for k in FILES} == FILES
    assert environment["FLIGHTDECK_STACK"] == STACK
    assert environment["FLIGHTDECK_REGISTRY_USER"] == "flightdeck"
    assert environment["FLIGHTDECK_REGISTRY_PASSWORD"] == KEY
    assert all(name.startswith("FLIGHTDECK_") for name in environment)  # sshd: AcceptEnv FLIGHTDECK_*
    assert captured["address"] == "127.0.0.1:5000"


# --- the deploy script against a stand-in docker -----------------------------------------------------------

FAKE_DOCKER = r"""#!/bin/sh
# Records each call in $FAKE/calls; secrets live as files in $FAKE/secrets.
echo "$*" >>"$FAKE/calls"
case "$1 $2" in
"secret inspect") [ -f "$FAKE/secrets/$3" ] ;;
"secret create") cat >"$FAKE/secrets/$5" ;; # secret create --label <label> <name> -
"secret ls") ls "$FAKE/secrets" ;;
"secret rm") rm "$FAKE/secrets/$3" ;;
"stack deploy") cp "$5" "$FAKE/deployed.yml" ;;
"stack rm") : ;;
"service ls") case "$3" in -q) : ;; *) echo "$FAKE_REPLICAS" ;; esac ;;
"service inspect") : ;;
"service ps") : ;;
"login --username") cat >"$FAKE/login" ;;
"logout 127.0.0.1:5000") : ;;
*) echo "unexpected: docker $*" >&2; exit 2 ;;
esac
"""


def run_script(tmp_path: Path, *, status: str = "401", replicas: str = "3/3", **env: str) -> Any:
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True, exist_ok=True)
    (fake / "secrets").mkdir(exist_ok=True)
    for name, text in {"docker": FAKE_DOCKER, "curl": f"#!/bin/sh\nprintf {status}\n"}.items():
        path = fake / "bin" / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    names = rs.secret_names(STACK, FILES, KEY)
    environment = {
        "PATH": f"{fake / 'bin'}:{os.environ['PATH']}",
        "FAKE": str(fake),
        "FAKE_REPLICAS": replicas,
        "FLIGHTDECK_STACK": STACK,
        "FLIGHTDECK_SECRETS": "".join(f"{rs.SECRET_KEYS[s]} {names[s]}\n" for s in sorted(names)),
        "FLIGHTDECK_REGISTRY_USER": "flightdeck",
        "FLIGHTDECK_REGISTRY_PASSWORD": KEY,
        "FLIGHTDECK_TIMEOUT": "3",
        **{f"FLIGHTDECK_SECRET_{rs.SECRET_KEYS[k]}": v for k, v in FILES.items()},
        **env,
    }
    result = subprocess.run(
        ["/bin/sh", "-c", rs.DEPLOY_SCRIPT.read_text()],
        input=render(), env=environment, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result, fake, names


def test_script_creates_missing_secrets_deploys_waits_for_auth_and_logs_in(tmp_path: Path) -> None:
    stale = tmp_path / "fake" / "secrets" / f"{STACK}_config_000000000000"
    stale.parent.mkdir(parents=True)
    stale.write_text("old config")
    result, fake, names = run_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "registry 127.0.0.1:5000\n"
    # Each secret created from its variable (never a command line); the unused one removed.
    assert {p.name: p.read_text() for p in (fake / "secrets").iterdir()} == {
        names[k]: v for k, v in FILES.items()
    }
    calls = (fake / "calls").read_text()
    assert KEY not in calls and all(v not in calls for v in FILES.values())
    deployed = yaml.safe_load((fake / "deployed.yml").read_text())
    assert deployed["services"]["registry"]["deploy"]["mode"] == "global"
    assert "stack deploy --prune --compose-file" in calls
    assert "login --username flightdeck --password-stdin 127.0.0.1:5000" in calls
    assert (fake / "login").read_text() == KEY

    # A second run finds the secrets and creates none.
    again, _, _ = run_script(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "created secret" not in again.stderr


def test_script_fails_when_the_registry_does_not_ask_for_credentials(tmp_path: Path) -> None:
    # 200: a registry without auth (or something else on the port) is not this one.
    result, fake, _ = run_script(tmp_path, status="200")
    assert result.returncode == 1
    assert "did not answer 401" in result.stderr
    assert not (fake / "login").exists()


def test_script_fails_when_a_node_has_no_registry(tmp_path: Path) -> None:
    result, _, _ = run_script(tmp_path, replicas="2/3")
    assert result.returncode == 1
    assert "did not run on every node" in result.stderr


def test_script_delete_removes_the_stack_and_its_secrets(tmp_path: Path) -> None:
    run_script(tmp_path)
    result, fake, _ = run_script(tmp_path, FLIGHTDECK_ACTION="delete")
    assert result.returncode == 0, result.stderr
    assert list((fake / "secrets").iterdir()) == []
    calls = (fake / "calls").read_text().splitlines()
    assert f"stack rm {STACK}" in calls and "logout 127.0.0.1:5000" in calls
