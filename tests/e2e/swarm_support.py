"""The swarm stack on the local engine, driven exactly as SwarmStack drives it: the same pure renderer,
the same deploy script, the same environment and stdin. Shared by tests/e2e/test_swarm.py and
bench/bench_swarm.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from components.local_registry import start_script, stop_script
from components.settings import AppSettings, SwarmSettings
from components.swarm import DEPLOY_SCRIPT, Rendered, render_deploy
from tests.e2e.app_image import APP, build
from tests.support.docker import docker, free_port

STANDINS = {
    "postgres": "flightdeck/postgres-standin:trixie",
    "caddy": "flightdeck/caddy-standin:trixie",
    "redis": "flightdeck/redis-standin:trixie",
    "registry": "flightdeck/registry-standin:trixie",
}
ROLLBACK = Path(__file__).resolve().parents[2] / "scripts" / "rollback"


def ensure_swarm() -> None:
    """Make the engine a swarm manager if it is not one (never leaves a swarm others may use)."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state != "active":
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")


def standin_images() -> None:
    """Build the stand-ins of the official postgres, caddy, redis and registry images (cached)."""
    subprocess.run([Path(__file__).resolve().parents[2] / "scripts" / "standin-services"], check=True,
                   capture_output=True, timeout=1800)  # fmt: skip


@contextmanager
def local_registry(prefix: str) -> Iterator[str]:
    """A registry on 127.0.0.1:<free port>, started by the LocalRegistry component's own script."""
    port = free_port()
    container = f"{prefix}-registry"
    run = subprocess.run(["sh", "-c", start_script(container, STANDINS["registry"], port)],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"the registry did not start:\n{run.stderr}")
    address = f"127.0.0.1:{port}"
    try:
        yield address
    finally:
        subprocess.run(["sh", "-c", stop_script(container)], check=False, timeout=60)
        docker("volume", "rm", f"{container}-data", check=False)
        # The engine's copies of the images pushed there (by tag, and pulled by swarm by digest).
        listed = docker("image", "ls", "--digests", "--filter", f"reference={address}/*/*",
                        "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")  # fmt: skip
        refs = [
            ref
            for repository, tag, digest in (line.split() for line in listed.splitlines())
            for ref in (f"{repository}:{tag}", f"{repository}@{digest}")
            if "<none>" not in ref
        ]
        for _ in range(30):  # swarm removes the stack's stopped containers, which hold them, a little later
            refs = [ref for ref in refs if not _remove_image(ref)]
            if not refs:
                break
            time.sleep(1)


def _remove_image(ref: str) -> bool:
    removed = subprocess.run(["docker", "image", "rm", ref], capture_output=True, text=True, check=False)
    return removed.returncode == 0 or "No such image" in removed.stderr


def push(tag: str, repository: str) -> str:
    """Push a local image to repository; return its reference by digest."""
    docker("tag", tag, repository)
    docker("push", repository, timeout=300)
    digests = docker("image", "inspect", "--format", '{{join .RepoDigests "\\n"}}', repository).split()
    name = repository.rsplit(":", 1)[0]
    return next(d for d in digests if d.startswith(name + "@"))


@contextmanager
def app_variant(files: Mapping[str, str]) -> Iterator[Path]:
    """A temporary copy of app/ with some files replaced or added (the tree itself is never modified)."""
    with tempfile.TemporaryDirectory(prefix="flightdeck-app-") as tmp:
        context = Path(tmp) / "app"
        shutil.copytree(APP, context, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
        for name, text in files.items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            (context / name).write_text(text)
        yield context


def build_variant(tag: str, base: str, files: Mapping[str, str]) -> None:
    with app_variant(files) as context:
        build(tag, base=base, context=context)


def versioned(version: str) -> dict[str, str]:
    """A visible change: GET /version answers the version."""
    urls = (APP / "airline" / "urls.py").read_text()
    urls += (
        "\nfrom django.http import HttpResponse  # noqa: E402\n\n"
        f'urlpatterns.append(path("version", lambda request: HttpResponse({version!r})))\n'
    )
    return {"airline/urls.py": urls}


def broken_health() -> dict[str, str]:
    """An image whose web process starts but whose /healthz always answers 503."""
    health = (APP / "airline" / "health.py").read_text()
    health += (
        "\n\n@never_cache\n@require_safe\ndef healthz(request: HttpRequest) -> JsonResponse:  # noqa: F811\n"
        '    return JsonResponse({"status": "error", "database": "broken on purpose"}, status=503)\n'
    )
    return {"airline/health.py": health}


NEW_COLUMN = "timezone_note"
NEW_COLUMN_QUERY = (
    "SELECT is_nullable FROM information_schema.columns "
    "WHERE table_name = 'flights_airport' AND column_name = 'timezone_note'"
)


def with_new_column() -> dict[str, str]:
    """Airport gets a nullable column, with its migration: the new code reads it on every page."""
    models = (APP / "flights" / "models.py").read_text()
    field_line = "    city = models.CharField(max_length=64)\n"
    if field_line not in models:
        raise RuntimeError("flights/models.py changed: update with_new_column()")
    models = models.replace(
        field_line,
        field_line + f"    {NEW_COLUMN} = models.CharField(max_length=64, null=True, blank=True)\n",
    )
    migration = (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("flights", "0001_initial")]\n'
        "    operations = [\n"
        f'        migrations.AddField("airport", "{NEW_COLUMN}", '
        "models.CharField(max_length=64, null=True, blank=True)),\n"
        "    ]\n"
    )
    return {"flights/models.py": models, "flights/migrations/0002_airport_timezone_note.py": migration}


@dataclass
class Stack:
    """One stack on the local engine: its settings, secrets and the deploys made so far."""

    name: str
    http_port: int
    https_port: int = field(default_factory=free_port)
    replicas: int = 2
    secret_key: str = field(default_factory=lambda: uuid.uuid4().hex * 2)
    db_password: str = field(default_factory=lambda: "pw/" + uuid.uuid4().hex)  # "/" must be URL-quoted
    config_vars: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 240

    @property
    def app(self) -> AppSettings:
        return AppSettings(name=self.name, web_instances=self.replicas, config_vars=dict(self.config_vars))

    @property
    def swarm(self) -> SwarmSettings:
        return SwarmSettings(
            postgres_image=STANDINS["postgres"],
            proxy_image=STANDINS["caddy"],
            redis_image=STANDINS["redis"],
            registry_image=STANDINS["registry"],
            http_port=self.http_port,
            https_port=self.https_port,
            web_memory="256M",
        )

    def render(self, image: str) -> Rendered:
        values = {
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": f"postgres://app:{self.db_password.replace('/', '%2F')}@db:5432/app",
            "postgres_password": self.db_password,
        }
        return render_deploy(stack=self.name, image=image, app=self.app, swarm=self.swarm, values=values,
                             timeout=self.timeout)  # fmt: skip

    def run_script(self, rendered: Rendered, *, action: str = "deploy") -> subprocess.CompletedProcess[str]:
        """Run components/swarm_deploy.sh as the Command resource does: environment, stack file on stdin."""
        env = {**os.environ, **rendered.environment, **rendered.secrets, "FLIGHTDECK_ACTION": action}
        return subprocess.run(
            ["sh", "-c", DEPLOY_SCRIPT.read_text()],
            input=rendered.stack_file,
            env=env,
            capture_output=True,
            text=True,
            timeout=self.timeout + 120,
            check=False,
        )

    def deploy(self, image: str) -> subprocess.CompletedProcess[str]:
        return self.run_script(self.render(image))

    def delete(self, image: str) -> subprocess.CompletedProcess[str]:
        return self.run_script(self.render(image), action="delete")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def web_image(self) -> str:
        return docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                      f"{self.name}_web").strip()  # fmt: skip

    def psql(self, query: str) -> str:
        """Run a query in the stack's database container."""
        container = docker("ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={self.name}_db")
        return docker("exec", container.split()[0], "psql", "-U", "app", "-d", "app", "-tAc", query).strip()


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": "localhost"})  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


@dataclass
class LoadResult:
    sent: int
    failed: int
    seconds: float
    statuses: dict[str, int]
    errors: list[str]


class Load:
    """A bounded load on 127.0.0.1: a few threads sending GETs until stopped or the caps are reached."""

    def __init__(self, urls: list[str], *, threads: int = 4, max_requests: int = 20000,
                 max_seconds: float = 300) -> None:  # fmt: skip
        self.urls = urls
        self.threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._failed = 0
        self._statuses: dict[str, int] = {}
        self._errors: list[str] = []
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def _work(self, offset: int) -> None:
        deadline = self._started + self.max_seconds
        i = offset
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self._sent >= self.max_requests:
                    return
                self._sent += 1
            url = self.urls[i % len(self.urls)]
            i += 1
            try:
                status, _ = get(url)
                outcome = str(status)
                failed = status != 200
            except (OSError, urllib.error.URLError) as err:
                outcome, failed = type(err).__name__, True
            with self._lock:
                self._statuses[outcome] = self._statuses.get(outcome, 0) + 1
                if failed:
                    self._failed += 1
                    if len(self._errors) < 20:
                        self._errors.append(f"{url}: {outcome}")
            time.sleep(0.01)

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        self._workers = [
            threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def result(self) -> LoadResult:
        with self._lock:
            return LoadResult(self._sent, self._failed, time.monotonic() - self._started,
                              dict(self._statuses), list(self._errors))  # fmt: skip


def remove_stack_leftovers(name: str) -> None:
    """Named volumes the stack kept (the database's, Caddy's) and its release records."""
    volumes = docker(
        "volume", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={name}"
    ).split()
    for _ in range(30):
        if not volumes or subprocess.run(["docker", "volume", "rm", *volumes], capture_output=True,
                                         check=False).returncode == 0:  # fmt: skip
            break
        time.sleep(1)  # the stack's containers are still being removed


@dataclass(frozen=True)
class Images:
    """The app images of the swarm scenarios, pushed to the local registry, by digest."""

    v1: str
    v2: str  # a visible change: /version answers "v2"
    broken: str  # /healthz answers 503
    migration: str  # a new nullable column with its migration; /version answers "v4"


def build_images(registry: str, prefix: str, base: str) -> Images:
    repository = f"{registry}/{prefix}/web"
    variants = {
        "v1": {},
        "v2": versioned("v2"),
        "broken": {**versioned("v3"), **broken_health()},
        "migration": {**versioned("v4"), **with_new_column()},
    }
    refs: dict[str, str] = {}
    for variant, files in variants.items():
        tag = f"{prefix}/web:{variant}"
        build_variant(tag, base, files)
        refs[variant] = push(tag, f"{repository}:{variant}")
        docker("image", "rm", tag, check=False)
    return Images(**refs)


def release_env_args(stack: Stack, image: str) -> tuple[list[str], dict[str, str]]:
    """`docker run` options and environment for a one-off container of the stack's app, as the release
    command gets them (secrets from the environment, never on the command line)."""
    rendered = stack.render(image)
    env = {
        "SECRET_KEY": rendered.secrets["FLIGHTDECK_SECRET_SECRET_KEY"],
        "DATABASE_URL": rendered.secrets["FLIGHTDECK_SECRET_DATABASE_URL"],
    }
    options = ["--rm", "--network", f"{stack.name}_app", "--env", "SECRET_KEY", "--env", "DATABASE_URL"]
    return options, env


@contextmanager
def running_stack(prefix: str, image: str, *, replicas: int = 2) -> Iterator[Stack]:
    """A stack deployed with image and the sample data loaded; removed (with its volumes) afterwards."""
    stack = Stack(name=prefix, http_port=free_port(), replicas=replicas)
    try:
        deployed = stack.deploy(image)
        if deployed.returncode != 0:
            raise RuntimeError(f"the first deploy failed:\n{deployed.stderr[-4000:]}")
        options, env = release_env_args(stack, image)
        subprocess.run(["docker", "run", *options, image, "python", "manage.py", "load_sample_data"],
                       env={**os.environ, **env}, check=True, capture_output=True, timeout=300)  # fmt: skip
        yield stack
    finally:
        stack.delete(image)
        remove_stack_leftovers(stack.name)


@dataclass
class Update:
    returncode: int
    seconds: float  # the deploy script's run: release, rollout, health
    load: LoadResult
    stderr: str

    @property
    def converge_seconds(self) -> int | None:
        """What the deploy script reports: seconds from its start until every task ran the image."""
        found = re.search(r"converged in (\d+)s", self.stderr)
        return int(found.group(1)) if found else None


def update_under_load(stack: Stack, image: str, *, threads: int = 4) -> Update:
    """Deploy image while a bounded load of GETs runs against the proxy (pages that read the database)."""
    with Load([f"{stack.url}/", f"{stack.url}/healthz"], threads=threads) as load:
        time.sleep(1)
        started = time.monotonic()
        result = stack.deploy(image)
        seconds = time.monotonic() - started
        time.sleep(2)  # the last replaced tasks drain while requests continue
    return Update(result.returncode, seconds, load.result(), result.stderr)


def rollback(stack: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROLLBACK), stack, *args], capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip
