"""The app's swarm stack (render/stack_file.py), rendered from settings: pure, no engine. The file is checked
against the compose spec and read back by the docker CLI's own loader (`docker stack config`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from render.caddyfile import render_caddyfile
from render.stack_file import (
    BACKUPS,
    BUCKET_CREDENTIALS,
    MAX_OBJECT_NAME,
    POSTGRES_PASSWORD,
    Process,
    StackExtension,
    StackPlan,
    StackSpec,
    backup_service,
    bundled_database_url,
    escape_interpolation,
    object_name,
    plan_stack,
    secret_keys,
    stack_url,
)
from settings import LocalSettings, ServersSettings, parse
from targets.processes import app_processes
from tests.support.compose import compose_spec_problems
from tests.support.docker_cli import docker_reads
from tests.support.stacks import stack_config

IMAGE = "127.0.0.1:5000/flightdeck-local/web@sha256:" + "ab" * 32
BACKUP_IMAGE = "127.0.0.1:5000/flightdeck-local/backup@sha256:" + "cd" * 32
SECRET_KEY = "k" * 64
PASSWORD = "p@ss/word:1"
CREDENTIALS = "[default]\naws_access_key_id = AKIA0\naws_secret_access_key = s3cr3t/key\n"
LONGEST_APP = "a" * 30  # settings allow 3-30 characters


def settings(stack: str = "local", secret_vars: dict[str, str] | None = None, **overrides: Any) -> Any:
    raw, keys = stack_config(stack, **overrides)
    if secret_vars:
        raw["flightdeck:secretConfigVars"] = json.dumps(secret_vars)
        keys.add("flightdeck:secretConfigVars")
    return parse(raw, keys)


def values(s: LocalSettings | ServersSettings, bundled: bool = True, **extra: str) -> dict[str, str]:
    out = {"SECRET_KEY": SECRET_KEY}
    if bundled:
        out.update(DATABASE_URL=bundled_database_url(PASSWORD), postgres_password=PASSWORD)
    out.update({name: secret.get_secret_value() for name, secret in s.app.secret_config_vars.items()})
    out.update(extra)
    return out


def spec(s: Any = None, **kwargs: Any) -> StackSpec:
    s = s or settings()
    kwargs.setdefault("bundled_database", True)
    kwargs.setdefault("values", values(s, bundled=kwargs["bundled_database"]))
    return StackSpec(
        stack=s.app.name, image=IMAGE, app=s.app, swarm=s.swarm, processes=app_processes(s), **kwargs
    )


def plan(s: Any = None, **kwargs: Any) -> StackPlan:
    return plan_stack(spec(s, **kwargs))


def document(p: StackPlan) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(p.stack_file)
    return loaded


def unescaped(value: Any) -> Any:
    """What compose interpolation makes of a value in which nothing is interpolated: `$$` -> `$`."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: unescaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescaped(v) for v in value]
    return value


def backup_extension() -> StackExtension:
    service = backup_service(
        BACKUP_IMAGE,
        app="flightdeck-local",
        schedule="17 3 * * *",
        bucket="airline-data",
        endpoint="https://eu-central-1.linodeobjects.com",
        region="eu-central-1",
    )
    return StackExtension(services={"backup": service}, secrets=(BUCKET_CREDENTIALS,))


def full_plan() -> StackPlan:
    """Everything the renderer can add: a domain, redis, a secret config var, a mounted file, the backups."""
    s = settings(accessories=["redis"], domain="air.example.com", secret_vars={"SENTRY_DSN": "https://k@s/1"})
    return plan(
        s,
        values=values(s, **{BUCKET_CREDENTIALS: CREDENTIALS, "database-ca.pem": "-----BEGIN CERT-----"}),
        extension=backup_extension(),
        app_files=("database-ca.pem",),
        public_hosts=["203.0.113.21"],
    )


# -- the file as a whole ------------------------------------------------------------------------------------


def test_the_file_is_valid_against_the_compose_spec(tmp_path: Path) -> None:
    for name, p in {"local": plan(), "full": full_plan()}.items():
        assert compose_spec_problems(p.stack_file, tmp_path, f"{name}.yml") == ""


def test_the_docker_cli_reads_the_file_as_rendered(tmp_path: Path) -> None:
    p = full_plan()
    read = docker_reads(p.stack_file, tmp_path)
    rendered = unescaped(document(p))
    assert set(read["services"]) == set(rendered["services"]) == {
        "web", "worker", "scheduler", "db", "redis", "proxy", "backup"
    }  # fmt: skip
    for name, service in rendered["services"].items():
        assert read["services"][name]["image"] == service["image"]
        assert read["services"][name].get("environment", {}) == service.get("environment", {}), name
    assert read["secrets"] == rendered["secrets"]


def test_the_file_says_it_is_generated() -> None:
    assert plan().stack_file.startswith("# Swarm stack flightdeck-local, rendered by flightdeck")


# -- the app's processes ------------------------------------------------------------------------------------


def test_web_rolls_out_start_first_and_rolls_back_on_failure() -> None:
    web = document(plan())["services"]["web"]
    assert web["image"] == IMAGE
    assert web["command"] == ["/app/start", "web"]
    deploy = web["deploy"]
    assert deploy["replicas"] == 2  # Pulumi.local.yaml's webInstances
    assert deploy["endpoint_mode"] == "dnsrr"  # no routing mesh (IPVS does not work here)
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
    assert deploy["resources"]["limits"] == {"cpus": "0.5", "memory": "384M"}  # webMemory of the local stack
    assert web["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]
    assert web["environment"]["PROCESS_TYPE"] == "web"
    # The drain (the proxy stops sending new requests), then gunicorn's graceful stop.
    assert web["environment"]["DRAIN_SECONDS"] == "5"
    assert web["stop_grace_period"] == "35s"


@pytest.mark.parametrize("kind", ["worker", "scheduler"])
def test_workers_stop_first_with_a_process_health_check(kind: str) -> None:
    service = document(plan())["services"][kind]
    assert service["image"] == IMAGE
    assert service["command"] == ["/app/start", kind]
    assert service["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py", kind]
    assert service["deploy"]["update_config"]["order"] == "stop-first"
    assert service["deploy"]["update_config"]["failure_action"] == "rollback"
    assert service["deploy"]["rollback_config"]["order"] == "stop-first"
    # A job in flight may finish before SIGKILL; an unfinished one goes back to the queue.
    assert service["stop_grace_period"] == "60s"
    assert service["environment"]["PROCESS_TYPE"] == kind
    assert "DRAIN_SECONDS" not in service["environment"]  # nothing to drain: it serves no traffic


def test_each_procfile_type_is_a_service_with_its_own_count_and_limits() -> None:
    s = settings(
        processes={"worker": {"instances": 3, "cpus": "1.5", "memory": "1G"}, "scheduler": {"instances": 0}}
    )
    services = document(plan(s))["services"]
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["worker"]["deploy"]["resources"]["limits"] == {"cpus": "1.5", "memory": "1G"}
    assert services["scheduler"]["deploy"]["replicas"] == 0  # paused, still declared
    assert services["scheduler"]["deploy"]["resources"]["limits"] == {"cpus": "0.5", "memory": "256M"}
    assert "release" not in services  # the release phase is a job, run before the deploy
    assert plan(s).app_services == ("web", "scheduler", "worker")


def test_a_procfile_without_workers_gives_a_stack_without_them() -> None:
    raw, keys = stack_config("local")
    s = parse(raw, keys, process_types=["web", "release"])
    p = plan(s)
    assert set(document(p)["services"]) == {"web", "db", "proxy"}
    assert p.app_services == ("web",)


def test_every_app_process_shares_the_environment_and_secrets_of_web() -> None:
    services = document(plan())["services"]
    web = services["web"]
    for kind in ("worker", "scheduler"):
        env = dict(services[kind]["environment"])
        assert env.pop("PROCESS_TYPE") == kind
        assert env == {
            k: v for k, v in web["environment"].items() if k not in ("PROCESS_TYPE", "DRAIN_SECONDS")
        }
        assert services[kind]["secrets"] == web["secrets"]
        assert services[kind]["networks"] == web["networks"] == ["app"]


# -- the database and the proxy -----------------------------------------------------------------------------


def test_the_bundled_database_keeps_its_data_on_the_manager() -> None:
    doc = document(plan())
    db = doc["services"]["db"]
    assert db["image"] == "postgres:16"
    assert db["volumes"] == ["db-data:/var/lib/postgresql/data"]
    assert "db-data" in doc["volumes"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in db["environment"]
    assert db["secrets"] == [{"source": "s_postgres_password", "target": "postgres_password"}]
    assert db["deploy"]["replicas"] == 1
    assert db["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert db["deploy"]["update_config"]["order"] == "stop-first"  # never two writers on one volume
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert plan().database is not None and plan().database.password_key == POSTGRES_PASSWORD


def test_a_managed_database_leaves_the_stack_without_one() -> None:
    url = "postgres://u:pw@lin-1.example:5432/db?sslmode=require"
    p = plan(bundled_database=False, values={"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    doc = document(p)
    assert "db" not in doc["services"] and "db-data" not in doc["volumes"]
    assert "s_postgres_password" not in doc["secrets"]
    assert url not in p.stack_file
    assert p.database is None


def test_the_proxy_runs_on_every_node_with_host_mode_ports() -> None:
    doc = document(plan())
    proxy = doc["services"]["proxy"]
    assert proxy["image"] == "caddy:2"
    assert proxy["ports"] == [
        {"target": 80, "published": 8080, "protocol": "tcp", "mode": "host"},
        {"target": 443, "published": 8443, "protocol": "tcp", "mode": "host"},
    ]
    assert proxy["deploy"]["mode"] == "global" and "replicas" not in proxy["deploy"]
    # A host port cannot be held by two tasks on one node.
    assert proxy["deploy"]["update_config"]["order"] == "stop-first"
    assert proxy["configs"] == [{"source": "caddyfile", "target": "/etc/caddy/Caddyfile"}]
    assert proxy["volumes"] == ["caddy-data:/data", "caddy-config:/config"]
    assert doc["networks"] == {"app": {"driver": "overlay", "attachable": True}}


def test_the_caddyfile_is_an_external_config_named_by_its_content() -> None:
    p = plan()
    assert p.configs == {"caddyfile": render_caddyfile(domain=None)}
    name = document(p)["configs"]["caddyfile"]
    assert name == {
        "external": True,
        "name": object_name("flightdeck-local", "caddyfile", p.configs["caddyfile"]),
    }
    with_domain = plan(settings(domain="air.example.com"))
    assert document(with_domain)["configs"]["caddyfile"]["name"] != name["name"]


def test_redis_is_a_service_when_it_is_an_accessory() -> None:
    doc = document(plan(settings(accessories=["redis"])))
    assert doc["services"]["redis"]["image"] == "redis:7"
    assert doc["services"]["web"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "redis" not in document(plan())["services"]
    assert "REDIS_URL" not in document(plan())["services"]["web"]["environment"]


# -- secrets -------------------------------------------------------------------------------------------------


def test_secrets_are_external_docker_secrets_named_by_a_keyed_digest() -> None:
    s = settings(secret_vars={"SENTRY_DSN": "https://key@sentry.example/1"})
    p = plan(s)
    doc = document(p)
    for value in (SECRET_KEY, PASSWORD, bundled_database_url(PASSWORD), "https://key@sentry.example/1"):
        assert value not in p.stack_file
        assert value not in json.dumps(p.release.environment)
    assert set(doc["secrets"]) == {"s_secret_key", "s_database_url", "s_postgres_password", "s_sentry_dsn"}
    for ref, secret in doc["secrets"].items():
        assert secret["external"] is True
        key = next(o.key for o in p.objects if o.name == secret["name"])
        assert ref == f"s_{key.lower()}"
        # The digest is an HMAC keyed with SECRET_KEY: a short value cannot be guessed from the name.
        digest = hmac.new(SECRET_KEY.encode(), values(s)[key].encode(), hashlib.sha256).hexdigest()
        assert secret["name"] == f"flightdeck-local_{key.lower()}_{digest[:12]}"
        assert hashlib.sha256(values(s)[key].encode()).hexdigest()[:12] not in secret["name"]


def test_the_app_gets_its_secrets_as_files_named_after_their_variables() -> None:
    s = settings(secret_vars={"SENTRY_DSN": "https://key@sentry.example/1"})
    web = document(plan(s))["services"]["web"]
    assert web["secrets"] == [
        {"source": "s_secret_key", "target": "SECRET_KEY"},
        {"source": "s_database_url", "target": "DATABASE_URL"},
        {"source": "s_sentry_dsn", "target": "SENTRY_DSN"},
    ]
    for name in ("SECRET_KEY", "DATABASE_URL", "SENTRY_DSN", "POSTGRES_PASSWORD"):
        assert name not in web["environment"]


def test_a_changed_value_changes_only_its_own_name() -> None:
    before = {o.key: o.name for o in plan().objects}
    s = settings()
    after = {o.key: o.name for o in plan(s, values=values(s, postgres_password="another-password")).objects}
    assert after["postgres_password"] != before["postgres_password"]
    assert {k: v for k, v in after.items() if k != "postgres_password"} == {
        k: v for k, v in before.items() if k != "postgres_password"
    }
    # A new SECRET_KEY is new key material: every secret gets a new name.
    rotated = {o.key: o.name for o in plan(s, values=values(s, SECRET_KEY="n" * 64)).objects}
    assert all(rotated[k] != before[k] for k in before if k != "caddyfile")
    assert rotated["caddyfile"] == before["caddyfile"]  # a config is named by its plain digest


def test_plan_refuses_values_that_do_not_match_the_stacks_secrets() -> None:
    s = settings()
    with pytest.raises(ValueError, match="the stack needs"):
        plan(s, values={"SECRET_KEY": SECRET_KEY})  # the database's are missing
    with pytest.raises(ValueError, match="the stack needs"):
        plan(s, values=values(s, EXTRA_TOKEN="x"))  # one no service mounts
    with pytest.raises(ValueError, match="the stack needs"):
        plan(s, bundled_database=False, values=values(s))  # postgres_password without a database


def test_secret_keys_list_what_each_kind_of_stack_needs() -> None:
    s = settings(secret_vars={"SENTRY_DSN": "x"})
    assert secret_keys(s.app, bundled_database=True, extension=StackExtension()) == [
        "SECRET_KEY",
        "DATABASE_URL",
        "postgres_password",
        "SENTRY_DSN",
    ]
    assert secret_keys(
        s.app, bundled_database=False, extension=backup_extension(), app_files=("database-ca.pem",)
    ) == ["SECRET_KEY", "DATABASE_URL", "SENTRY_DSN", BUCKET_CREDENTIALS, "database-ca.pem"]


def test_names_fit_swarm_for_the_longest_app_name() -> None:
    s = settings(appName=LONGEST_APP, secret_vars={"SENTRY_DSN": "x", "STRIPE_API_KEY": "y"})
    p = plan(s, values=values(s, **{BUCKET_CREDENTIALS: CREDENTIALS}), extension=backup_extension())
    names = [o.name for o in p.objects] + [secret["name"] for secret in document(p)["secrets"].values()]
    assert len(names) == 2 * (len(p.objects) - 1) + 1  # the config, and each secret in both lists
    assert max(len(n) for n in names) <= MAX_OBJECT_NAME
    assert all(n.startswith(f"{LONGEST_APP}_") for n in names)


def test_a_long_secret_variable_name_still_fits_swarm() -> None:
    # 20 characters are left for the key beside a 30-character stack name and the digest.
    s = settings(
        appName=LONGEST_APP, secret_vars={"AWS_SECRET_ACCESS_KEY": "x", "AWS_SECRET_ACCESS_KEY_2": "y"}
    )
    names = [o.name for o in plan(s).objects]
    assert max(len(n) for n in names) <= MAX_OBJECT_NAME
    assert len(set(names)) == len(names)


def test_object_names_are_refused_beyond_swarms_limit() -> None:
    assert len(object_name("s" * 47, "key", "v")) == MAX_OBJECT_NAME
    with pytest.raises(ValueError, match="longer than 64"):
        object_name("s" * 48, "key", "v")


# -- interpolation ------------------------------------------------------------------------------------------

TRICKY = ["$HOME", "${USER}", "$$", "a$", "100$ and ${C:-x}", "$(id)", "pa$$word", "€ $5 # not a comment"]


def test_every_string_is_escaped_for_compose_interpolation() -> None:
    escaped = escape_interpolation({"a": ["x$y", ("$$", 3)], "b": {"c": "${Z}"}, "n": None, "t": True})
    assert escaped == {"a": ["x$$y", ["$$$$", 3]], "b": {"c": "$${Z}"}, "n": None, "t": True}


def test_config_vars_with_dollars_reach_the_app_byte_for_byte(tmp_path: Path) -> None:
    config = {f"VAR_{i}": value for i, value in enumerate(TRICKY)}
    p = plan(settings(configVars=config))
    env = document(p)["services"]["web"]["environment"]
    assert {k: unescaped(env[k]) for k in config} == config
    # The docker CLI's own loader (with HOME, USER and C set) agrees: nothing was interpolated.
    read = docker_reads(p.stack_file, tmp_path)["services"]["web"]["environment"]
    assert {k: read[k] for k in config} == config
    # The release job is created through the API, where nothing is interpolated: it gets the plain values.
    assert {k: p.release.environment[k] for k in config} == config


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60))
def test_any_config_value_survives_yaml_and_unescaping(value: str) -> None:
    p = plan(settings(configVars={"ANY": value}))
    env = document(p)["services"]["web"]["environment"]
    assert unescaped(env["ANY"]) == value
    assert p.release.environment["ANY"] == value


def test_the_release_job_has_the_webs_environment_and_secrets() -> None:
    s = settings(configVars={"LOG_LEVEL": "WARNING", "PRICE": "$5"}, secret_vars={"SENTRY_DSN": "x"})
    p = plan(s)
    web = unescaped(document(p)["services"]["web"])
    release_env = dict(p.release.environment)
    assert release_env.pop("PROCESS_TYPE") == "release"
    assert release_env == {
        k: v for k, v in web["environment"].items() if k not in ("PROCESS_TYPE", "DRAIN_SECONDS")
    }
    assert p.release.command == ("/app/start", "release")
    assert p.release.secrets == {s_["target"]: s_["target"] for s_ in web["secrets"]}
    assert set(p.release.secrets) == {"SECRET_KEY", "DATABASE_URL", "SENTRY_DSN"}
    assert p.release.network == "flightdeck-local_app"  # the stack's network, as docker names it


# -- hosts and URLs -----------------------------------------------------------------------------------------


def test_without_a_domain_the_app_is_served_over_plain_http() -> None:
    env = document(plan())["services"]["web"]["environment"]
    assert env["ALLOWED_HOSTS"] == "localhost,127.0.0.1"
    assert env["CSRF_TRUSTED_ORIGINS"] == "http://localhost:8080,http://127.0.0.1:8080"
    assert env["SECURE_SSL_REDIRECT"] == env["SECURE_COOKIES"] == "false"
    assert env["SECURE_HSTS_SECONDS"] == "0"
    assert env["DEBUG"] == "false"
    assert env["PORT"] == "8000"
    s = settings()
    assert stack_url(s.app, s.swarm) == "http://localhost:8080"
    assert stack_url(s.app, s.swarm, "203.0.113.21") == "http://203.0.113.21:8080"


def test_with_a_domain_the_app_expects_https_from_the_proxy() -> None:
    s = settings(domain="air.example.com", httpsPort=443)
    env = document(plan(s, public_hosts=["203.0.113.7", "203.0.113.7"]))["services"]["web"]["environment"]
    # The domain first: the image's health probe sends the first entry.
    assert env["ALLOWED_HOSTS"] == "air.example.com,203.0.113.7,localhost,127.0.0.1"
    assert env["CSRF_TRUSTED_ORIGINS"] == "https://air.example.com"
    assert env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
    assert env["SECURE_SSL_REDIRECT"] == env["SECURE_COOKIES"] == "true"
    assert "SECURE_HSTS_SECONDS" not in env
    assert stack_url(s.app, s.swarm) == "https://air.example.com"
    other = settings(domain="air.example.com")
    assert stack_url(other.app, other.swarm) == "https://air.example.com:8443"


def test_the_bundled_database_url_quotes_the_password() -> None:
    assert bundled_database_url("p@ss/word:1") == "postgres://app:p%40ss%2Fword%3A1@db:5432/app"


# -- extensions and files -----------------------------------------------------------------------------------


def test_app_files_are_mounted_into_the_app_services_only() -> None:
    services = document(full_plan())["services"]
    for kind in ("web", "worker", "scheduler"):
        assert {"source": "s_database-ca.pem", "target": "database-ca.pem"} in services[kind]["secrets"]
    assert all(s["target"] != "database-ca.pem" for s in services["db"]["secrets"])
    # Neither the bucket's key nor the database password goes to the app.
    for kind in ("web", "worker", "scheduler"):
        targets = {s["target"] for s in services[kind]["secrets"]}
        assert not targets & {BUCKET_CREDENTIALS, POSTGRES_PASSWORD}


def test_extension_services_join_the_stack_and_cannot_replace_one_of_it() -> None:
    p = full_plan()
    doc = document(p)
    assert unescaped(doc["services"]["backup"]) == backup_extension().services["backup"]
    assert CREDENTIALS.strip() not in p.stack_file and "s3cr3t" not in p.stack_file
    assert doc["secrets"]["s_bucket_credentials"]["name"].startswith("flightdeck-local_bucket_credentials_")
    s = settings()
    with pytest.raises(ValueError, match="clashes"):
        plan(s, extension=StackExtension(services={"web": {"image": "x"}}))
    volumes = plan(s, extension=StackExtension(volumes=["scratch"])).stack_file
    assert "scratch" in yaml.safe_load(volumes)["volumes"]


def test_the_backup_service_reads_the_stacks_database_and_the_bucket() -> None:
    service = backup_extension().services["backup"]
    env = service["environment"]
    assert service["image"] == BACKUP_IMAGE and service["command"] == ["schedule"]
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == ("db", "5432", "app", "app")
    assert env["PGPASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/bucket_credentials"
    assert not {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    # Stacks sharing a bucket keep their backups apart, under the bucket's backups folder.
    assert (env["BACKUP_BUCKET"], env["BACKUP_PREFIX"]) == ("airline-data", f"{BACKUPS}/flightdeck-local/")
    assert env["BACKUP_S3_ENDPOINT"] == "https://eu-central-1.linodeobjects.com"
    assert (env["BACKUP_SCHEDULE"], env["BACKUP_S3_REGION"]) == ("17 3 * * *", "eu-central-1")
    assert {s["source"] for s in service["secrets"]} == {"s_postgres_password", "s_bucket_credentials"}
    assert service["networks"] == ["app"]
    assert service["deploy"]["replicas"] == 1


def test_a_process_serves_http_only_as_web() -> None:
    assert Process("web", 1, "0.5", "256M").serves_http
    assert not Process("worker", 1, "0.5", "256M").serves_http


def test_services_reference_only_what_the_file_declares() -> None:
    doc = document(full_plan())
    for name, service in doc["services"].items():
        assert {s["source"] for s in service.get("secrets", [])} <= set(doc["secrets"]), name
        assert {c["source"] for c in service.get("configs", [])} <= set(doc["configs"]), name
        assert set(service.get("networks", [])) <= set(doc["networks"]), name
        named = {v.split(":", 1)[0] for v in service.get("volumes", [])}
        assert named <= set(doc["volumes"]), name
    # and everything declared is used by some service
    used = {s["source"] for service in doc["services"].values() for s in service.get("secrets", [])}
    assert used == set(doc["secrets"])
