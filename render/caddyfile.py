"""The Caddyfile of the swarm stack's reverse proxy (a pure renderer).

Caddy reaches the web replicas by name: `tasks.web` resolves to one A record per healthy task (swarm adds a
task to service discovery only once its health check passes and removes it before the task is stopped), and
the `dynamic a` upstream source re-reads that name every second, so new replicas take traffic and departing
ones stop getting it without a reload.

Caddy (2.6 to 2.11) runs neither active nor passive health checks on dynamic upstreams: the health gate is
swarm's own service discovery. What makes a rolling update lose no request is retrying: a request whose
connection to a replica fails (the replica has just gone away) is tried again on another one for up to
`lb_try_duration`, and GET/HEAD requests whose round trip failed after connecting are retried too.
"""

from __future__ import annotations

import re

from contract import APP_PORT, HEALTH_PATH

UPSTREAM = "tasks.web"
# Host names the proxy answers plain-HTTP health probes for when a domain takes the main site to HTTPS;
# the app must allow them (ALLOWED_HOSTS).
LOCAL_HOSTS = ("localhost", "127.0.0.1")
# A Caddyfile token that needs no quoting: host names, service names, paths. Anything else is refused
# rather than quoted, since none of the values rendered here may carry spaces, braces or quotes.
_TOKEN = re.compile(r"[A-Za-z0-9._/:-]+")


def token(value: str) -> str:
    """value as one Caddyfile token, or a ValueError: a value that would split into tokens or open a block
    must never reach the file."""
    if _TOKEN.fullmatch(value) is None:
        raise ValueError(f"{value!r} cannot be written into a Caddyfile as one token")
    return value


def render_caddyfile(*, domain: str | None, upstream: str = UPSTREAM, port: int = APP_PORT) -> str:
    """The Caddyfile: the site on :80 (no domain) or on `domain` with automatic HTTPS (Caddy then redirects
    HTTP to HTTPS itself), proxied to every replica behind `upstream`."""
    options = ["\tadmin off"]
    if domain is None:
        # No name to get a certificate for: plain HTTP on every address.
        options.append("\tauto_https off")
    lines = ["{", *options, "}", "", "(web) {", *_reverse_proxy(token(upstream), port), "}", ""]
    if domain is None:
        lines += [":80 {", "\timport web", "}"]
    else:
        # The public site over HTTPS, and plain HTTP for health probes from the host itself (the deploy's
        # check runs before a certificate may exist), limited to the health path.
        lines += [f"{token(domain)} {{", "\timport web", "}", ""]
        lines += [
            ", ".join(f"http://{host}" for host in LOCAL_HOSTS) + " {",
            f"\thandle {HEALTH_PATH} {{",
            "\t\timport web",
            "\t}",
            "\trespond 404",
            "}",
        ]
    return "\n".join(lines) + "\n"


def _reverse_proxy(upstream: str, port: int) -> list[str]:
    return [
        "\treverse_proxy {",
        # Re-resolve the replicas every second; a name that does not resolve (no healthy replica yet)
        # keeps the request waiting within lb_try_duration rather than failing at once.
        f"\t\tdynamic a {upstream} {port} {{",
        "\t\t\trefresh 1s",
        "\t\t\tdial_timeout 2s",
        "\t\t}",
        "\t\tlb_policy round_robin",
        "\t\tlb_try_duration 15s",
        "\t\tlb_try_interval 250ms",
        "\t\tlb_retry_match {",
        "\t\t\tmethod GET HEAD",
        "\t\t}",
        "\t\ttransport http {",
        "\t\t\tdial_timeout 2s",
        "\t\t}",
        # Caddy sets X-Forwarded-For/-Proto/-Host itself and discards any a client sent (no trusted
        # proxies are configured); the app trusts X-Forwarded-Proto to know a request came over HTTPS.
        "\t\theader_up X-Forwarded-Proto {scheme}",
        "\t}",
    ]
