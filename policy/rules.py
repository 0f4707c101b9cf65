"""flightdeck's CrossGuard rules as plain functions, so tests call them without the Pulumi CLI.

`__main__.py` serves them as a policy pack (`pulumi preview --policy-pack policy`). The pack is a second line
behind settings.py, which refuses the same mistakes in a stack's config: these rules see what the program
really declares, whatever changed in between.

World-open SSH on a Linode firewall is refused unless the policy's own config allows it
(`allowSshFromAnywhere: true` in a `--policy-pack-config` file). The stack's flightdeck:allowSshFromAnywhere
cannot reach a policy (a pack sees resources, not config), and it should not: whoever accepts that risk does
so twice, in the stack and in the pack's config, which CI may own.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

ADDON = "heroku:addon/addon:Addon"
APP = "heroku:app/app:App"
CONFIG_ASSOCIATION = "heroku:app/configAssociation:ConfigAssociation"
RELEASE = "pulumi-python:dynamic/heroku:ContainerRelease"
FIREWALL = "linode:index/firewall:Firewall"
BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
DATABASE = "linode:index/databasePostgresqlV2:DatabasePostgresqlV2"
# Its `image` names an operating system image (linode/debian12), not a container image.
INSTANCE = "linode:index/instance:Instance"
# Resource inputs that hold plain (non-secret) environment variables, by resource type.
PLAIN_ENV_PROPS = {APP: "configVars", CONFIG_ASSOCIATION: "vars"}

# contract.SECRET_NAME's pattern (a test keeps them equal): the pack runs as a program of its own, from its
# folder, and cannot import the project.
SECRET_NAME = re.compile(
    r".*(?:SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|DSN|(?:\A|_)(?:KEY|PASS|PWD)\Z).*"
)
KNOWN_TOKENS = re.compile(
    r"^(sk_live_|rk_live_|ghp_|gho_|github_pat_|xox[abprs]-|AKIA[0-9A-Z]{16}|AIza|glpat-|HRKU-)"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9+/=_-]{24,}$")
# Random keys run near log2 of their alphabet (base64: 6 bits); words, hostnames and hex digests stay lower.
ENTROPY_BITS = 4.2
SSH_PORT = 22
# SSH open to more addresses than this counts as open to the world (settings.py draws the same line).
MAX_SSH_ADDRESSES = {4: 2**24, 6: 2**96}  # a /8, a /32
ALLOW_SSH_FROM_ANYWHERE = "allowSshFromAnywhere"
PROTECT_HINT = "set flightdeck:protectData true (protect=True and retain_on_delete=True)"


def stack_of(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<type>::<name> -> <stack>."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def prod_like(urn: str) -> bool:
    return stack_of(urn).startswith("prod")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def secret_reason(name: str, value: Any) -> str | None:
    """Why name=value looks like a secret, or None."""
    if SECRET_NAME.fullmatch(name.upper()):
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


def is_data(resource_type: str, props: Mapping[str, Any]) -> bool:
    """What a destroy must not take: Heroku Postgres, the Linode bucket, the Linode managed database."""
    if resource_type == ADDON:
        return str(props.get("plan", "")).startswith("heroku-postgresql:")
    return resource_type in (BUCKET, DATABASE)


def prod_data_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """On a prod-like stack (its name starts with prod), the data is protected from deletion."""
    if is_data(args.resource_type, args.props) and prod_like(args.urn) and not args.opts.protect:
        report(f"{args.name}: production data must be protected: {PROTECT_HINT}", None)


def prod_postgres_plan(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A prod stack's Heroku Postgres is on a plan with rollback (Standard or better)."""
    plan = str(args.props.get("plan", ""))
    if args.resource_type == ADDON and plan.startswith("heroku-postgresql:essential") and prod_like(args.urn):
        report(
            f"{args.name}: {plan} has no rollback or high availability; use standard-0 or better for "
            "production (flightdeck:herokuPostgresPlan)",
            None,
        )


def covers_port(ports: Any, port: int) -> bool:
    """Whether a firewall rule's `ports` ("22", "20-30", "22,80", or none: every port) include port."""
    if ports in (None, ""):
        return True
    for part in str(ports).split(","):
        low, _, high = part.strip().partition("-")
        try:
            if int(low) <= port <= int(high or low):
                return True
        except ValueError:
            return True  # a form we cannot read: assume the worst
    return False


def world_open(cidrs: Iterable[Any]) -> bool:
    """Whether networks open to more addresses than MAX_SSH_ADDRESSES, IPv4 or IPv6."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            continue  # Linode refuses it anyway
    v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
    return (
        sum(n.num_addresses for n in v4) > MAX_SSH_ADDRESSES[4]
        or sum(n.num_addresses for n in v6) > MAX_SSH_ADDRESSES[6]
    )


def opens_ssh_to_the_world(rule: Any) -> bool:
    if not isinstance(rule, Mapping) or rule.get("action") != "ACCEPT":
        return False
    if str(rule.get("protocol", "")).upper() not in ("TCP", "ALL", "6"):
        return False
    return covers_port(rule.get("ports"), SSH_PORT) and world_open(
        [*(rule.get("ipv4s") or []), *(rule.get("ipv6s") or [])]
    )


def firewall_locked_down(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A Linode firewall drops inbound traffic by default and opens SSH to no more than a few networks."""
    if args.resource_type != FIREWALL:
        return
    if args.props.get("inboundPolicy") != "DROP":
        report(f"{args.name}: inboundPolicy must be DROP (given {args.props.get('inboundPolicy')!r})", None)
    if args.get_config().get(ALLOW_SSH_FROM_ANYWHERE) is True:
        return
    for rule in args.props.get("inbounds") or []:
        if opens_ssh_to_the_world(rule):
            report(
                f"{args.name}: rule {rule.get('label')!r} opens SSH (port {SSH_PORT}) to the world; list "
                "your own networks in flightdeck:sshAllowList, or accept the risk in both "
                f"flightdeck:allowSshFromAnywhere and this policy's config ({ALLOW_SSH_FROM_ANYWHERE}: true)",
                None,
            )


def bucket_versioned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The Linode bucket keeps overwritten and deleted objects (backups, registry blobs) for the retention."""
    if args.resource_type == BUCKET and args.props.get("versioning") is not True:
        report(
            f"{args.name}: versioning must be on, so an overwritten or deleted backup can be restored", None
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
    """Any other container image reference in a resource's inputs (`image`, `imageRef`): pinned by digest."""
    if args.resource_type in (RELEASE, INSTANCE):
        return
    for key in ("image", "imageRef", "image_ref"):
        ref = args.props.get(key)
        if isinstance(ref, str) and ref and "@sha256:" not in ref:
            report(f"{args.name}: {key} {ref!r} is a mutable tag; pin it as <image>@sha256:<digest>", None)


POLICIES = [
    ResourceValidationPolicy(
        name="prod-data-protected",
        description="Production data (Heroku Postgres, the Linode bucket and managed database) is protected.",
        validate=prod_data_protected,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="prod-postgres-plan",
        description="Production Heroku Postgres is not on an Essential plan.",
        validate=prod_postgres_plan,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="linode-firewall-locked-down",
        description="Linode firewalls drop inbound by default and never open SSH to the world.",
        validate=firewall_locked_down,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(
            properties={ALLOW_SSH_FROM_ANYWHERE: {"type": "boolean", "default": False}}
        ),
    ),
    ResourceValidationPolicy(
        name="linode-bucket-versioned",
        description="The Linode bucket is versioned.",
        validate=bucket_versioned,
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
