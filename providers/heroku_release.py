"""Release a Docker image on Heroku by digest, through the Platform API.

No resource of the Heroku provider releases a container image, so this is a Pulumi dynamic provider.
A release:
1. resolves the image ID Heroku wants (the image's *config* digest) from the registry's schema-2 manifest
   of `<repository>@<manifest digest>`;
2. PATCHes the app's formation so that both the `web` and the `release` process run that image;
3. polls the app's newest release until the release phase (database migrations) has succeeded or failed.
   A failed release phase fails the update with the phase's output; Heroku keeps the previous release
   serving.

The Platform API and the registry base URLs are constructor arguments so tests point them at local servers.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pulumi
import requests
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime.rpc import UNKNOWN

from contract import split_ref

API_URL = "https://api.heroku.com"
API_V3 = "application/vnd.heroku+json; version=3"
DOCKER_RELEASES = "application/vnd.heroku+json; version=3.docker-releases"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
# Heroku stops a release phase after one hour; waiting a little longer lets its verdict arrive.
DEFAULT_RELEASE_TIMEOUT = 3900.0
_OUTPUT_LIMIT = 4000  # characters of the release phase's output quoted in an error


class HerokuApiKeyError(Exception):
    """The API key was refused (401) or lacks access to the app (403)."""


class HerokuReleaseError(Exception):
    """The release did not succeed; the app keeps serving its previous release."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying 429 and 5xx answers and connection errors: attempts and total seconds."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_total: float = 180.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based): Retry-After if given, else doubling."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _bearer_challenge(header: str) -> dict[str, str] | None:
    """Parameters of a `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def _api_key_error(status: int, url: str) -> HerokuApiKeyError:
    problem = "was refused (401)" if status == 401 else "has no access to this app (403)"
    return HerokuApiKeyError(
        f"the Heroku API key {problem} at {url}. Set a valid key with "
        "`pulumi config set --secret heroku:apiKey <key>` or export HEROKU_API_KEY "
        "(create one with `heroku authorizations:create`)"
    )


class _Http:
    """requests with the retry policy: 429, 5xx, connection errors and timeouts are retried within bounds."""

    def __init__(self, retry: RetryPolicy, timeout: float = 30.0) -> None:
        self.retry = retry
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, method: str, url: str, *, allow: frozenset[int] = frozenset(), **kwargs: Any) -> Any:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as err:
                problem = f"{method} {url}: {err}"
            else:
                if response.status_code in allow or response.status_code < 400:
                    return response
                if response.status_code in (401, 403):
                    raise _api_key_error(response.status_code, url)
                if response.status_code != 429 and response.status_code < 500:
                    raise HerokuReleaseError(
                        f"{method} {url} answered {response.status_code}: {_message(response)}"
                    )
                problem = f"{method} {url} answered {response.status_code}: {_message(response)}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = self.retry.delay(attempt, retry_after)
            elapsed = time.monotonic() - started
            if attempt >= self.retry.attempts or elapsed + delay > self.retry.max_total:
                raise HerokuReleaseError(
                    f"gave up after {attempt} attempts in {elapsed:.1f}s (retry bounds: "
                    f"{self.retry.attempts} attempts, {self.retry.max_total:.0f}s): {problem}"
                )
            time.sleep(delay)


def _message(response: requests.Response) -> str:
    """Heroku's error JSON carries `message`; anything else is quoted, shortened."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)[:300]


class HerokuReleaseProvider(ResourceProvider):
    """Dynamic provider of HerokuContainerRelease. Pickled into the state (as a secret) by Pulumi."""

    def __init__(
        self,
        api_url: str = API_URL,
        registry_url: str | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.api_url = api_url.rstrip("/")
        # None: the registry named in the image reference, over HTTPS.
        self.registry_url = registry_url.rstrip("/") if registry_url else None
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval

    # -- registry ---------------------------------------------------------------------------------------
    def image_id(self, image_ref: str, api_key: str) -> str:
        """The config digest of the schema-2 manifest `image_ref` names: the ID Heroku releases."""
        ref = split_ref(image_ref)
        base = self.registry_url or f"https://{ref.host}"
        url = f"{base}/v2/{ref.path}/manifests/{ref.digest}"
        http = _Http(self.retry)
        headers = {"Accept": MANIFEST_V2}
        response = http.send("GET", url, headers=headers, auth=("_", api_key), allow=frozenset({401}))
        if response.status_code == 401:
            # Token auth (distribution's Bearer challenge): trade the basic credentials for a token.
            challenge = _bearer_challenge(response.headers.get("WWW-Authenticate", ""))
            if not challenge or "realm" not in challenge:
                raise _api_key_error(401, url)
            params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
            token = http.send("GET", challenge["realm"], params=params, auth=("_", api_key)).json()
            bearer = token.get("token") or token.get("access_token")
            headers["Authorization"] = f"Bearer {bearer}"
            response = http.send("GET", url, headers=headers)
        manifest = response.json()
        media_type = manifest.get("mediaType") or response.headers.get("Content-Type", "")
        if media_type != MANIFEST_V2 or "config" not in manifest:
            raise HerokuReleaseError(
                f"{image_ref} is a {media_type or 'manifest of unknown type'}, not a Docker v2 schema 2 "
                "image manifest: Heroku releases only those. Build with OCI media types off and without "
                "provenance/SBOM attestations (BUILDX_NO_DEFAULT_ATTESTATIONS=1)"
            )
        return str(manifest["config"]["digest"])

    # -- Platform API -----------------------------------------------------------------------------------
    def _api(self, http: _Http, method: str, path: str, api_key: str, **kwargs: Any) -> Any:
        headers = {"Accept": API_V3, "Authorization": f"Bearer {api_key}", **kwargs.pop("headers", {})}
        return http.send(method, f"{self.api_url}{path}", headers=headers, **kwargs)

    def _one_release(self, http: _Http, app: str, api_key: str, range_: str) -> dict[str, Any] | None:
        response = self._api(http, "GET", f"/apps/{app}/releases", api_key, headers={"Range": range_})
        releases = response.json()
        return releases[0] if releases else None

    def _release_output(self, http: _Http, app: str, release: dict[str, Any]) -> str:
        url = release.get("output_stream_url")
        text = str(http.send("GET", url).text).strip() if url else ""
        if not text:
            # Heroku streams a container release phase's output only from images that have curl.
            return f"(none streamed; see `heroku logs -a {app} --dyno release`)"
        return text if len(text) <= _OUTPUT_LIMIT else "...\n" + text[-_OUTPUT_LIMIT:]

    def release(
        self, app: str, image_ref: str, api_key: str, timeout: float, process_types: list[str]
    ) -> dict[str, Any]:
        """Release image_ref as every process type of app in one formation PATCH (one release, so no type
        runs another image), and wait for the release phase; the resource's outputs."""
        deadline = time.monotonic() + timeout
        http = _Http(self.retry)
        image_id = self.image_id(image_ref, api_key)
        before = self._one_release(http, app, api_key, "version ..; order=desc, max=1")
        previous = int(before["version"]) if before else 0
        updates = [{"type": kind, "docker_image": image_id} for kind in process_types]
        self._api(
            http,
            "PATCH",
            f"/apps/{app}/formation",
            api_key,
            headers={"Accept": DOCKER_RELEASES},
            json={"updates": updates},
        )
        # The PATCH creates the release at once: it is the first one after `previous`. (Not simply the newest:
        # an add-on finishing its provisioning meanwhile makes releases of its own.)
        first_after = f"version {previous + 1}..; order=asc, max=1"
        while True:
            latest = self._one_release(http, app, api_key, first_after)
            if latest and latest.get("status") != "pending":
                break
            if time.monotonic() + self.poll_interval > deadline:
                where = f"release v{latest['version']}" if latest else "the release"
                raise HerokuReleaseError(
                    f"{where} of {app} did not finish within {timeout:g}s; the release phase may still "
                    f"be running on Heroku (see `heroku releases -a {app}`). Raise the release timeout "
                    "if it needs longer"
                )
            time.sleep(self.poll_interval)
        if latest["status"] != "succeeded":
            output = self._release_output(http, app, latest)
            raise HerokuReleaseError(
                f"release v{latest['version']} of {app} ({image_ref}) {latest['status']}; the previous "
                f"release (v{previous}) keeps serving. Release phase output:\n{output}"
            )
        return {
            "app": app,
            "image_ref": image_ref,
            "image_id": image_id,
            "release_id": latest["id"],
            "version": int(latest["version"]),
            "status": latest["status"],
            "release_timeout": timeout,
            "process_types": list(process_types),
        }

    # -- dynamic provider -------------------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        ref = news.get("image_ref")
        if isinstance(ref, str) and ref != UNKNOWN:
            try:
                split_ref(ref)
            except ValueError as err:
                failures.append(CheckFailure("image_ref", str(err)))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Re-release only when the image or the app changes; a new API key or timeout alone is no release."""
        # States of the older layout have no process_types: they released web and release.
        olds = {"process_types": ["web", "release"], **olds}
        changed = [key for key in ("app", "image_ref", "process_types") if olds.get(key) != news.get(key)]
        return DiffResult(
            changes=bool(changed),
            replaces=["app"] if "app" in changed else [],
            delete_before_replace=False,
        )

    def _outs(self, props: dict[str, Any]) -> dict[str, Any]:
        return self.release(
            props["app"],
            props["image_ref"],
            props["api_key"],
            float(props["release_timeout"]),
            # States of the older layout released web and release only.
            list(props.get("process_types") or ["web", "release"]),
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._outs(props)
        return CreateResult(outs["app"], outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._outs(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: Heroku has no "unrelease", and scaling the app to nothing here would be an outage
        the user did not ask for. The app (and its current release) goes away only with the HerokuApp."""


@dataclass
class HerokuContainerReleaseArgs:
    app: pulumi.Input[str]  # the app's name
    image_ref: pulumi.Input[str]  # <registry>/<app>/web@sha256:<manifest digest>
    api_key: pulumi.Input[str]  # kept secret
    # Every process type of app/Procfile, release included: all run the same image after one PATCH.
    process_types: tuple[str, ...] = ("web", "release")
    release_timeout: pulumi.Input[float] = DEFAULT_RELEASE_TIMEOUT


class HerokuContainerRelease(pulumi.dynamic.Resource, module="heroku", name="ContainerRelease"):
    """The app's current container release: every process type on one image, by digest."""

    app: pulumi.Output[str]
    image_ref: pulumi.Output[str]
    image_id: pulumi.Output[str]
    release_id: pulumi.Output[str]
    version: pulumi.Output[int]
    status: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: HerokuContainerReleaseArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: HerokuReleaseProvider | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "app": args.app,
            "image_ref": args.image_ref,
            "api_key": pulumi.Output.secret(args.api_key),
            "release_timeout": args.release_timeout,
            "process_types": list(args.process_types),
            "image_id": None,
            "release_id": None,
            "version": None,
            "status": None,
        }
        super().__init__(provider or HerokuReleaseProvider(), name, props, opts)
