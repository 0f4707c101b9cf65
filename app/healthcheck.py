"""The image's HEALTHCHECK: GET /healthz on the container's own $PORT; exit 0 only on a 200 answer.

Django validates the Host header of /healthz like any other request, so the probe sends a host that
ALLOWED_HOSTS accepts: its first concrete entry ("*" or no entry at all: localhost).
"""

from __future__ import annotations

import os
import sys
import urllib.request


def probe_host(allowed_hosts: str) -> str:
    for entry in allowed_hosts.split(","):
        # ".example.com" allows example.com and its subdomains.
        host = entry.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    request = urllib.request.Request(url, headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS", ""))})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 (a fixed loopback URL)
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
