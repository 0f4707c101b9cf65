"""Container health probe: `python -m airline.probe` exits 0 when this container's /healthz answers 200.

Django validates the Host header of every request, /healthz included, so a probe that asks for
http://127.0.0.1:$PORT/healthz as is gets 400 unless 127.0.0.1 is an allowed host. This probe sends a host
the site really answers to (the first usable ALLOWED_HOSTS entry) instead of widening ALLOWED_HOSTS.
It imports nothing from Django: it runs every few seconds and must stay cheap.
"""

from __future__ import annotations

import http.client
import os
import sys
from collections.abc import Mapping

# What Django accepts when ALLOWED_HOSTS is empty and DEBUG is on.
FALLBACK_HOST = "localhost"


def probe_host(allowed_hosts: str) -> str:
    """The Host header to send: the first entry that names a host ('.example.com' matches example.com)."""
    for entry in allowed_hosts.split(","):
        host = entry.strip().lstrip(".")
        if host and host != "*":
            return host
    return FALLBACK_HOST


def check(environ: Mapping[str, str], timeout: float = 4.0) -> tuple[bool, str]:
    """Ask this container's /healthz over plain HTTP; return (healthy, what was seen)."""
    port = int(environ.get("PORT", "8000"))
    host = probe_host(environ.get("ALLOWED_HOSTS", ""))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(200).decode(errors="replace")
    except OSError as error:
        return False, f"no answer on port {port}: {error}"
    finally:
        connection.close()
    return response.status == 200, f"{response.status} {body}"


def main() -> int:
    healthy, seen = check(os.environ)
    print(seen)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
