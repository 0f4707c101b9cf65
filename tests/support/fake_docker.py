"""A small stand-in for the Docker SDK's client (docker.DockerClient): the collections the providers use,
kept in memory, with the engine's filter rules (a `name` filter of secrets, configs and services matches a
prefix; a `label` filter `k=v` matches exactly)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors

_IDS = itertools.count(1)


def _matches(attrs: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    for key, wanted in (filters or {}).items():
        spec = attrs["Spec"]
        if key == "name" and not str(spec["Name"]).startswith(str(wanted)):
            return False
        if key == "label":
            name, _, value = str(wanted).partition("=")
            labels = spec.get("Labels") or {}
            if name not in labels or (value and labels[name] != value):
                return False
    return True


@dataclass
class FakeObject:
    """A docker secret or config."""

    collection: FakeCollection
    attrs: dict[str, Any]
    data: bytes = b""
    in_use: bool = False  # a task still mounts it: the engine refuses to remove it

    @property
    def id(self) -> str:
        return str(self.attrs["ID"])

    @property
    def name(self) -> str:
        return str(self.attrs["Spec"]["Name"])

    def remove(self) -> bool:
        if self.in_use:
            raise docker.errors.APIError(f"rpc error: code = InvalidArgument desc = {self.name} is in use")
        self.collection.items.remove(self)
        return True


@dataclass
class FakeCollection:
    """client.secrets or client.configs."""

    kind: str
    items: list[FakeObject] = field(default_factory=list)

    def list(self, filters: Mapping[str, Any] | None = None) -> list[FakeObject]:
        return [o for o in self.items if _matches(o.attrs, filters)]

    def create(self, name: str, data: bytes, labels: Mapping[str, str] | None = None) -> FakeObject:
        if any(o.name == name for o in self.items):
            raise docker.errors.APIError(
                f"rpc error: code = AlreadyExists desc = {self.kind} {name} already exists"
            )
        attrs = {"ID": f"{self.kind}-{next(_IDS)}", "Spec": {"Name": name, "Labels": dict(labels or {})}}
        made = FakeObject(self, attrs, bytes(data))
        self.items.append(made)
        return made

    def get(self, name_or_id: str) -> FakeObject:
        for o in self.items:
            if name_or_id in (o.name, o.id):
                return o
        raise docker.errors.NotFound(f"{self.kind} {name_or_id} not found")


@dataclass
class FakeClient:
    secrets: FakeCollection = field(default_factory=lambda: FakeCollection("secret"))
    configs: FakeCollection = field(default_factory=lambda: FakeCollection("config"))
