"""moto's S3 server in the test process, standing in for Linode Object Storage: one fresh bucket per use,
on a free port of the address asked for (loopback, or the Docker bridge's gateway for containers that run in
their own network namespace)."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.support.docker import docker

ACCESS_KEY = "e2e-access"
SECRET_KEY = "e2e-secret"  # moto accepts any key
REGION = "us-east-1"


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_s3(prefix: str, address: str = "127.0.0.1") -> Iterator[S3]:
    """moto's S3 API on a free port of address, with one fresh bucket named after prefix."""
    port = _free_port(address)
    server = ThreadedMotoServer(ip_address=address, port=port, verbose=False)
    server.start()
    try:
        s3 = S3(endpoint=f"http://{address}:{port}", bucket=f"{prefix}-{uuid.uuid4().hex[:8]}")
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.stop()


def bridge_gateway() -> str:
    """The host's address on the engine's default bridge: what a container on that bridge reaches the host
    at (and nothing outside this machine does)."""
    device = docker(
        "network", "inspect", "bridge", "--format", '{{index .Options "com.docker.network.bridge.name"}}'
    ).strip()
    shown = subprocess.run(
        ["ip", "-json", "-4", "addr", "show", "dev", device or "docker0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    [address] = [a["local"] for link in json.loads(shown) for a in link["addr_info"]]
    return str(address)
