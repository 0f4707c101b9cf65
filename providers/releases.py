"""The release history of a swarm stack, kept in the swarm itself: one small docker config per release,
`<stack>_release_<number>`, labelled with the stack and the image. Numbers only go up, so "release 7" means
the same image for as long as its record exists; `make rollback` reads these records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract import split_ref

LABEL = "flightdeck.release"
KEEP_RECORDS = 50


@dataclass(frozen=True)
class Release:
    number: int
    image: str  # repository@sha256:…
    deployed_at: str

    @property
    def digest(self) -> str:
        return split_ref(self.image).digest

    def to_props(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "image": self.image,
            "digest": self.digest,
            "deployed_at": self.deployed_at,
        }


def record_name(stack: str, number: int) -> str:
    return f"{stack}_release_{number:06d}"


def history(client: Any, stack: str) -> list[Release]:
    """The stack's releases, oldest first."""
    releases = []
    for config in client.configs.list(filters={"label": f"{LABEL}={stack}"}):
        labels = config.attrs["Spec"].get("Labels", {})
        try:
            releases.append(
                Release(
                    number=int(labels["flightdeck.number"]),
                    image=labels["flightdeck.image"],
                    deployed_at=labels.get("flightdeck.deployed_at", ""),
                )
            )
        except (KeyError, ValueError):
            continue  # not a record this program wrote
    return sorted(releases, key=lambda r: r.number)


def record(client: Any, stack: str, image: str) -> Release:
    """Append a release of image to the history and drop records beyond KEEP_RECORDS."""
    past = history(client, stack)
    release = Release(
        number=(past[-1].number + 1) if past else 1,
        image=image,
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    labels = {
        LABEL: stack,
        "flightdeck.number": str(release.number),
        "flightdeck.image": image,
        "flightdeck.deployed_at": release.deployed_at,
    }
    client.configs.create(
        name=record_name(stack, release.number), data=json.dumps(release.to_props()).encode(), labels=labels
    )
    for old in [*past, release][:-KEEP_RECORDS]:
        for config in client.configs.list(filters={"name": record_name(stack, old.number)}):
            config.remove()
    return release


def forget(client: Any, stack: str) -> None:
    """Remove every record of the stack (it is being removed)."""
    for config in client.configs.list(filters={"label": f"{LABEL}={stack}"}):
        config.remove()
