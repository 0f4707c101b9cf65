"""The stack file and the deploy script's inputs, rendered from settings (pure; no engine)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from components.settings import Settings, parse
from components.swarm import (
    DEPLOY_ENV_KEYS,
    DEPLOY_SCRIPT,
    WEB_ENTRYPOINT,
    StackExtension,
    bundled_database_url,
    manifest,
    object_name,
    render_deploy,
    secret_keys,
    stack_url,
)
from tests.support.compose import compose_spec_problems
from tests.support.stacks import stack_config

IMAGE = "127.0.0.1:5000/flightdeck-local/web@sha256:" + "ab" * 32
SECRET_KEY = "k" * 50
PASSWORD = "p@ss/word:1"


def settings(stack: str = "local", **overrides: Any) -> Settings:
    return parse(*stack_config(stack, **overrides))


def values(s: Settings, **extra: str) -> dict[str, str]:
    out = {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": bundled_database_url(PASSWORD),
        "postgres_password": PASSWORD,
    }
    out.update({name: secret.get_secret_value() for name, secret in s.app.secret_config_vars.items()})
    out.update(extra)
    return out


def rendered(s: Settings | None = None, **kwargs: Any) -> Any:
    s = s or settings()
    assert s.swarm is not None
    kwargs.setdefault("values", values(s))
    return render_deploy(stack=s.app.name, image=IMAGE, app=s.app, swarm=s.swarm, **kwargs)


def document(r: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(r.stack_file)
    return loaded


def test_the_file_is_valid_against_the_compose_spec(tmp_path: Path) -> None:
    s = settings(accessories=["redis"], domain="air.example.com")
    for name, r in {"local": rendered(), "full": rendered(s, values=values(s))}.items():
        assert compose_spec_problems(r.stack_file, tmp_path, f"{name}.yml") == ""


def test_web_rolls_out_start_first_and_rolls_back_on_failure() -> None:
    web = document(rendered())["services"]["web"]
    assert web["image"] == IMAGE
    deploy = web["deploy"]
    assert deploy["replicas"] == 2  # Pulumi.local.yaml's webInstances
    assert deploy["endpoint_mode"] == "dnsrr"
    assert deploy["update_config"] == {
        "parallelism": 1,
        "order": "start-first",
        "failure_action": "rollback",
        "monitor": "10s",
        "max_failure_ratio": 0,
        "delay": "2s",
    }
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["restart_policy"]["condition"] == "any"
    assert deploy["resources"]["limits"] == {"cpus": "0.5", "memory": "384M"}
    assert web["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]
    assert web["command"] == ["/app/start-web"]
    assert web["stop_grace_period"] == "35s"  # the drain, then gunicorn's graceful timeout


def test_secrets_are_external_docker_secrets_named_by_a_keyed_digest() -> None:
    r = rendered()
    doc = document(r)
    for value in (SECRET_KEY, PASSWORD, bundled_database_url(PASSWORD)):
        assert value not in r.stack_file
        assert value not in "".join(r.environment.values())
    web = doc["services"]["web"]
    assert web["secrets"] == [
        {"source": "env_database_url", "target": "DATABASE_URL"},
        {"source": "env_secret_key", "target": "SECRET_KEY"},
    ]
    assert doc["secrets"]["env_secret_key"] == {
        "external": True,
        "name": object_name("flightdeck-local", "SECRET_KEY", SECRET_KEY, key_material=SECRET_KEY),
    }
    assert "SECRET_KEY" not in web["environment"]
    assert "DATABASE_URL" not in web["environment"]
    assert r.secrets == {
        "FLIGHTDECK_SECRET_SECRET_KEY": SECRET_KEY,
        "FLIGHTDECK_SECRET_DATABASE_URL": "postgres://app:p%40ss%2Fword%3A1@db:5432/app",
        "FLIGHTDECK_SECRET_postgres_password": PASSWORD,
    }


def test_a_changed_value_makes_a_new_object_name() -> None:
    before = object_name("s", "SECRET_KEY", "one", key_material="k")
    assert object_name("s", "SECRET_KEY", "one", key_material="k") == before
    assert object_name("s", "SECRET_KEY", "two", key_material="k") != before
    # Keyed: the name says nothing about the value to whoever lacks the key.
    assert object_name("s", "SECRET_KEY", "one", key_material="other") != before
    assert object_name("s", "caddyfile", "x").startswith("s_caddyfile_")
    plain = document(rendered())["configs"]["caddyfile"]["name"]
    with_domain = document(rendered(settings(domain="air.example.com")))["configs"]["caddyfile"]["name"]
    assert plain != with_domain


def test_the_app_secrets_become_files_named_after_their_variables() -> None:
    s = settings()
    app = s.app.model_copy(update={"secret_config_vars": {"SENTRY_DSN": SecretStr("https://x@sentry/1")}})
    s = s.model_copy(update={"app": app})
    r = rendered(s, values=values(s))
    targets = [item["target"] for item in document(r)["services"]["web"]["secrets"]]
    assert targets == ["DATABASE_URL", "SECRET_KEY", "SENTRY_DSN"]
    assert "https://x@sentry/1" not in r.stack_file
    assert r.secrets["FLIGHTDECK_SECRET_SENTRY_DSN"] == "https://x@sentry/1"


def test_the_values_must_be_exactly_the_stack_secrets() -> None:
    s = settings()
    with pytest.raises(ValueError, match="the stack needs"):
        rendered(s, values={"SECRET_KEY": SECRET_KEY})
    assert secret_keys(s.app, bundled_database=False, extension=StackExtension()) == [
        "SECRET_KEY",
        "DATABASE_URL",
    ]


def test_the_bundled_database_keeps_its_data_on_the_manager() -> None:
    db = document(rendered())["services"]["db"]
    assert db["image"] == "postgres:16"
    assert db["volumes"] == ["db-data:/var/lib/postgresql/data"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert db["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "db-data" in document(rendered())["volumes"]


def test_a_managed_database_leaves_the_stack_without_one() -> None:
    s = settings()
    url = "postgres://u:pw@lin-1.example:5432/db?sslmode=require"
    r = rendered(s, values={"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    doc = document(r)
    assert "db" not in doc["services"]
    assert "postgres_password" not in doc["secrets"]
    assert url not in r.stack_file
    assert r.secrets["FLIGHTDECK_SECRET_DATABASE_URL"] == url


def test_the_proxy_publishes_host_mode_ports_on_every_node() -> None:
    doc = document(rendered())
    proxy = doc["services"]["proxy"]
    assert proxy["ports"] == [
        {"target": 80, "published": 8080, "protocol": "tcp", "mode": "host"},
        {"target": 443, "published": 8443, "protocol": "tcp", "mode": "host"},
    ]
    assert proxy["deploy"]["mode"] == "global"
    assert proxy["deploy"]["update_config"]["order"] == "stop-first"
    assert proxy["configs"] == [{"source": "caddyfile", "target": "/etc/caddy/Caddyfile"}]
    assert proxy["volumes"] == ["caddy-data:/data", "caddy-config:/config"]
    assert doc["networks"] == {"app": {"driver": "overlay", "attachable": True}}


def test_without_a_domain_the_app_is_served_over_plain_http() -> None:
    env = document(rendered())["services"]["web"]["environment"]
    assert env["ALLOWED_HOSTS"] == "localhost,127.0.0.1"
    assert env["CSRF_TRUSTED_ORIGINS"] == "http://localhost:8080,http://127.0.0.1:8080"
    assert env["SECURE_SSL_REDIRECT"] == env["SECURE_COOKIES"] == "false"
    assert env["SECURE_HSTS_SECONDS"] == "0"
    assert env["DEBUG"] == "false"
    assert stack_url(settings().app, settings().swarm or pytest.fail()) == "http://localhost:8080"


def test_with_a_domain_the_app_expects_https_from_the_proxy() -> None:
    s = settings(domain="air.example.com", httpsPort=443)
    env = document(rendered(s, values=values(s), public_hosts=["203.0.113.7"]))["services"]["web"][
        "environment"
    ]
    assert env["ALLOWED_HOSTS"] == "air.example.com,203.0.113.7,localhost,127.0.0.1"
    assert env["CSRF_TRUSTED_ORIGINS"] == "https://air.example.com"
    assert env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
    assert env["SECURE_SSL_REDIRECT"] == "true"
    assert "SECURE_HSTS_SECONDS" not in env
    assert stack_url(s.app, s.swarm or pytest.fail()) == "https://air.example.com"


def test_accessories_and_config_vars() -> None:
    s = settings(accessories=["redis"], configVars={"LOG_LEVEL": "WARNING"})
    doc = document(rendered(s, values=values(s)))
    assert doc["services"]["redis"]["image"] == "redis:7"
    env = doc["services"]["web"]["environment"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["LOG_LEVEL"] == "WARNING"


def test_extension_services_join_the_stack() -> None:
    backup = {"image": "postgres:16", "secrets": ["backup_key"], "volumes": ["backups:/backups"]}
    extension = StackExtension(services={"backup": backup}, volumes=["backups"], secrets={"backup_key": ""})
    s = settings()
    r = rendered(s, values=values(s, backup_key="s3-secret"), extension=extension)
    doc = document(r)
    assert doc["services"]["backup"] == backup
    assert "backups" in doc["volumes"]
    assert doc["secrets"]["backup_key"]["name"].startswith("flightdeck-local_backup_key_")
    assert "s3-secret" not in r.stack_file
    assert "secret backup_key flightdeck-local_backup_key_" in r.environment["FLIGHTDECK_OBJECTS"]
    with pytest.raises(ValueError, match="clashes"):
        rendered(s, values=values(s), extension=StackExtension(services={"web": {}}))


def test_the_deploy_environment() -> None:
    r = rendered()
    assert set(r.environment) == {*DEPLOY_ENV_KEYS, "FLIGHTDECK_CONFIG_CADDYFILE"}
    assert r.environment["FLIGHTDECK_STACK"] == "flightdeck-local"
    assert r.environment["FLIGHTDECK_IMAGE"] == IMAGE
    assert r.environment["FLIGHTDECK_RELEASE_COMMAND"] == "python manage.py migrate --noinput"
    assert r.environment["FLIGHTDECK_HEALTH_URL"] == "http://127.0.0.1:8080/healthz"
    assert "ALLOWED_HOSTS=localhost,127.0.0.1\n" in r.environment["FLIGHTDECK_RELEASE_ENV"]
    objects = r.environment["FLIGHTDECK_OBJECTS"].splitlines()
    assert [line.split()[:2] for line in objects] == [
        ["config", "CADDYFILE"],
        ["secret", "SECRET_KEY"],
        ["secret", "DATABASE_URL"],
        ["secret", "postgres_password"],
    ]
    with pytest.raises(ValueError):
        manifest([("volume", "X", "name")])


def test_compose_interpolation_is_escaped_in_the_web_entrypoint() -> None:
    entrypoint = document(rendered())["services"]["web"]["entrypoint"]
    script = entrypoint[2]
    assert entrypoint[:2] == ["/bin/sh", "-c"]
    # Every shell `$` is doubled, or `docker stack deploy` would substitute it from its own environment.
    assert script.replace("$$", "").count("$") == 0


def test_the_scripts_are_shellcheck_clean() -> None:
    for script in (DEPLOY_SCRIPT, Path(__file__).resolve().parents[2] / "scripts" / "rollback"):
        check = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout


def _entrypoint() -> str:
    return WEB_ENTRYPOINT.replace("$$", "$")  # as `docker stack deploy` hands it to the task


def test_the_web_entrypoint_is_clean_sh_and_passes_the_exit_status_through() -> None:
    check = subprocess.run(
        ["shellcheck", "-s", "sh", "-"], input=_entrypoint(), capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    ran = subprocess.run(
        ["sh", "-c", _entrypoint(), "web", "sh", "-c", "exit 3"], capture_output=True, check=False
    )
    assert ran.returncode == 3


def test_the_web_entrypoint_keeps_serving_for_the_drain_time_after_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    child = f"trap 'date +%s.%N > {marker}; exit 0' TERM; while :; do sleep 0.1; done"
    wrapper = subprocess.Popen(
        ["sh", "-c", _entrypoint(), "web", "sh", "-c", child],
        env={"PATH": "/usr/bin:/bin", "DRAIN_SECONDS": "1"},
    )
    time.sleep(0.5)
    signalled = time.time()
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=10) == 0  # the child's own status after its graceful stop
    assert float(marker.read_text()) - signalled >= 1.0  # the child got TERM only after the drain
