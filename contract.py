"""What the program and the app image agree on, in one place: where the app lives, the port and paths the
image serves, the variables flightdeck sets itself, and the shapes of the names that cross between
settings, renderers and providers (environment variable names, image references by digest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
APP_DIR = ROOT / "app"
PROCFILE = APP_DIR / "Procfile"

DEFAULT_PYTHON_IMAGE = "python:3.13-slim"
APP_PORT = 8000  # the port the image's web process listens on ($PORT)
HEALTH_PATH = "/healthz"
# The image's entrypoint (secrets files to environment, drain on SIGTERM) and its process runner.
ENTRYPOINT = "/app/entrypoint"
START = "/app/start"
# The swarm targets' private registry listens here on each node (and the local target's on this machine).
REGISTRY_PORT = 5000

# Variables flightdeck sets for the app itself; a stack's configVars may not set them.
RESERVED_VARS = frozenset(
    {
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "DATABASE_URL",
        "DEBUG",
        "DRAIN_SECONDS",
        "DYNO",
        "PORT",
        "PROCESS_TYPE",
        "REDIS_URL",
        "SECRET_KEY",
        "SECURE_COOKIES",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
    }
)

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# The environment the deploying machine's docker CLI gets (providers/engine.py), besides DOCKER_HOST: compose
# fills an empty value in a stack file from these (settings refuses one).
CLI_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_CONFIG")
# A variable whose name says it holds a secret belongs in secretConfigVars.
SECRET_NAME = re.compile(
    r".*(?:SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|DSN|(?:\A|_)(?:KEY|PASS|PWD)\Z).*"
)

_DIGEST = r"sha256:[0-9a-f]{64}"
# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest], lower-case path.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
IMAGE_NAME = re.compile(rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH})")
IMAGE_REFERENCE = re.compile(
    rf"(?P<name>{IMAGE_NAME.pattern})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
DIGEST_REFERENCE = re.compile(rf"(?P<repository>{IMAGE_NAME.pattern})@(?P<digest>{_DIGEST})")


def is_image_reference(value: str) -> bool:
    """A reference the Docker CLI accepts; a name with a domain keeps that domain (a first component holding
    a dot or a colon, or `localhost`, is a registry)."""
    return IMAGE_REFERENCE.fullmatch(value) is not None and len(value) <= 255


@dataclass(frozen=True)
class DigestRef:
    """`<repository>@sha256:<hex>`: the only way flightdeck names an image it releases."""

    repository: str
    digest: str

    @property
    def host(self) -> str:
        return repository_host(self.repository)

    @property
    def path(self) -> str:
        """The repository without its registry."""
        return self.repository.removeprefix(f"{self.host}/")

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"


def repository_host(repository: str) -> str:
    """The registry's address: the repository's first component when it names one, else Docker Hub."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def split_ref(ref: str) -> DigestRef:
    """Parse `<repository>@sha256:<64 hex>`, or raise a ValueError that says what is expected."""
    match = DIGEST_REFERENCE.fullmatch(ref)
    if match is None:
        raise ValueError(
            f"{ref!r} is not an image reference by digest (<repository>@sha256:<64 hex digits>); "
            "flightdeck releases an exact image, never a tag"
        )
    return DigestRef(match["repository"], match["digest"])


_PROCFILE_LINE = re.compile(r"(?P<type>[a-z][a-z0-9_-]*):[ \t]*(?P<command>\S.*)")


def parse_procfile(text: str) -> dict[str, str]:
    """Process type -> command of a Procfile (Heroku's format: `<type>: <command>` per line; blank lines and
    `#` comments skipped). A malformed or repeated line is an error naming its number."""
    types: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCFILE_LINE.fullmatch(line.rstrip())
        if match is None:
            raise ValueError(f"Procfile line {number}: {line!r} is not `<type>: <command>`")
        if match["type"] in types:
            raise ValueError(f"Procfile line {number}: process type {match['type']} is declared twice")
        types[match["type"]] = match["command"]
    return types
