"""flightdeck's CrossGuard rules as plain functions, so tests call them without the Pulumi CLI.

`__main__.py` serves them as a policy pack (`pulumi preview --policy-pack policy`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

ADDON = "heroku:addon/addon:Addon"
APP = "heroku:app/app:App"
CONFIG_ASSOCIATION = "heroku:app/configAssociation:ConfigAssociation"
RELEASE = "pulumi-python:dynamic/heroku:ContainerRelease"
# Resource inputs that hold plain (non-secret) environment variables, by resource type.
PLAIN_ENV_PROPS = {APP: "configVars", CONFIG_ASSOCIATION: "vars"}

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|_KEY$|DSN")
KNOWN_TOKENS = re.compile(
    r"^(sk_live_|rk_live_|ghp_|gho_|github_pat_|xox[abprs]-|AKIA[0-9A-Z]{16}|AIza|glpat-|HRKU-)"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9+/=_-]{24,}$")
# Random keys run near log2 of their alphabet (base64: 6 bits); words, hostnames and hex digests stay lower.
ENTROPY_BITS = 4.2


def stack_of(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<type>::<name> -> <stack>."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def secret_reason(name: str, value: Any) -> str | None:
    """Why name=value looks like a secret, or None."""
    if SECRET_NAME.search(name.upper()):
        return "its name says it is a secret"
    if not isinstance(value, str):
        return None
    if KNOWN_TOKENS.search(value):
        return "its value has the form of an API token or private key"
    if URL_PASSWORD.match(value):
        return "its value is a URL with a password in it"
    if (
        TOKEN_SHAPE.match(value)
        and re.search(r"\d", value)
        and re.search(r"[A-Za-z]", value)
        and entropy(value) >= ENTROPY_BITS
    ):
        return f"its value looks like a random key ({len(value)} characters, {entropy(value):.1f} bits each)"
    return None


def prod_postgres(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A prod stack's Heroku Postgres is protected and on a plan with rollback (Standard or better)."""
    plan = str(args.props.get("plan", ""))
    if args.resource_type != ADDON or not plan.startswith("heroku-postgresql:"):
        return
    if not stack_of(args.urn).startswith("prod"):
        return
    if not args.opts.protect:
        report(
            f"{args.name}: the production database must be protected (protect=True, and "
            "retain_on_delete=True): set flightdeck:protectDatabase true",
            None,
        )
    if plan.startswith("heroku-postgresql:essential"):
        report(
            f"{args.name}: {plan} has no rollback or high availability; use standard-0 or better for "
            "production (flightdeck:herokuPostgresPlan)",
            None,
        )


def no_plain_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No secret-looking variable among an app's plain config vars (they show in state and previews)."""
    prop = PLAIN_ENV_PROPS.get(args.resource_type)
    values = args.props.get(prop) if prop else None
    if not isinstance(values, Mapping):
        return
    for name, value in sorted(values.items()):
        reason = secret_reason(name, value)
        if reason:
            report(
                f"{args.name}: plain config var {name} looks like a secret ({reason}); set it with "
                f"`pulumi config set --secret --path 'secretConfigVars.{name}' <value>`",
                None,
            )


def release_by_digest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """What Heroku releases is an exact image: <repository>@sha256:<digest>, never a tag."""
    if args.resource_type != RELEASE:
        return
    ref = args.props.get("image_ref")
    if isinstance(ref, str) and "@sha256:" not in ref:
        report(f"{args.name}: image_ref {ref!r} is not pinned by digest (<repository>@sha256:...)", None)


def images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Any other image reference in a resource's inputs (`image`, `imageRef`): pinned by digest."""
    if args.resource_type == RELEASE:
        return
    for key in ("image", "imageRef", "image_ref"):
        ref = args.props.get(key)
        if isinstance(ref, str) and ref and "@sha256:" not in ref:
            report(f"{args.name}: {key} {ref!r} is a mutable tag; pin it as <image>@sha256:<digest>", None)


POLICIES = [
    ResourceValidationPolicy(
        name="prod-postgres-protected",
        description="Production Heroku Postgres is protected and not on an Essential plan.",
        validate=prod_postgres,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="no-secrets-in-plain-config-vars",
        description="Secret-looking names or values never sit in plain config vars.",
        validate=no_plain_secrets,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="release-image-by-digest",
        description="The Heroku release names its image by digest.",
        validate=release_by_digest,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="images-pinned-by-digest",
        description="Other images (e.g. third-party services) are pinned by digest.",
        validate=images_pinned,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
]
