"""The release history kept in the swarm (providers/releases.py), against an in-memory stand-in for the SDK's
client: numbering, the records kept, what is not a record."""

from __future__ import annotations

import json
from datetime import datetime

from providers.releases import KEEP_RECORDS, LABEL, Release, forget, history, record, record_name
from tests.support.fake_docker import FakeClient

STACK = "flightdeck-local"
IMAGES = [f"127.0.0.1:5000/flightdeck-local/web@sha256:{n:02x}" + f"{n:02x}" * 31 for n in range(1, 80)]


def test_releases_are_numbered_from_one_and_only_go_up() -> None:
    client = FakeClient()
    first = record(client, STACK, IMAGES[0])
    second = record(client, STACK, IMAGES[1])
    again = record(client, STACK, IMAGES[0])  # a rollback is a new release of an older image
    assert [r.number for r in (first, second, again)] == [1, 2, 3]
    assert [r.image for r in history(client, STACK)] == [IMAGES[0], IMAGES[1], IMAGES[0]]
    assert again.digest == "sha256:" + "01" * 32


def test_a_record_is_a_labelled_config_named_by_its_number() -> None:
    client = FakeClient()
    release = record(client, STACK, IMAGES[0])
    [config] = client.configs.items
    assert config.name == record_name(STACK, 1) == "flightdeck-local_release_000001"
    labels = config.attrs["Spec"]["Labels"]
    assert labels == {
        LABEL: STACK,
        "flightdeck.number": "1",
        "flightdeck.image": IMAGES[0],
        "flightdeck.deployed_at": release.deployed_at,
    }
    assert json.loads(config.data) == release.to_props()
    assert datetime.fromisoformat(release.deployed_at).utcoffset() is not None  # a moment, with its zone


def test_history_is_oldest_first_and_ignores_what_this_program_did_not_write() -> None:
    client = FakeClient()
    for image in IMAGES[:3]:
        record(client, STACK, image)
    record(client, "other-stack", IMAGES[5])
    client.configs.create(
        "flightdeck-local_caddyfile_0123", b"x", labels={"com.docker.stack.namespace": STACK}
    )
    client.configs.create("hand-made", b"x", labels={LABEL: STACK, "flightdeck.number": "seven"})
    client.configs.create("hand-made-2", b"x", labels={LABEL: STACK})
    client.configs.items.reverse()  # the engine lists in no particular order
    assert [(r.number, r.image) for r in history(client, STACK)] == [
        (1, IMAGES[0]),
        (2, IMAGES[1]),
        (3, IMAGES[2]),
    ]
    assert [r.number for r in history(client, "other-stack")] == [1]


def test_only_the_last_records_are_kept_and_numbers_carry_on() -> None:
    client = FakeClient()
    for image in IMAGES[: KEEP_RECORDS + 3]:
        record(client, STACK, image)
    kept = history(client, STACK)
    assert len(kept) == KEEP_RECORDS
    assert [r.number for r in kept] == list(range(4, KEEP_RECORDS + 4))
    assert kept[-1].image == IMAGES[KEEP_RECORDS + 2]
    assert record(client, STACK, IMAGES[0]).number == KEEP_RECORDS + 4


def test_forget_removes_only_the_stacks_records() -> None:
    client = FakeClient()
    record(client, STACK, IMAGES[0])
    record(client, "other-stack", IMAGES[1])
    forget(client, STACK)
    assert history(client, STACK) == []
    assert [r.image for r in history(client, "other-stack")] == [IMAGES[1]]


def test_a_release_as_props() -> None:
    release = Release(number=7, image=IMAGES[6], deployed_at="2026-12-01T09:00:00+00:00")
    assert release.to_props() == {
        "number": 7,
        "image": IMAGES[6],
        "digest": "sha256:" + "07" * 32,
        "deployed_at": "2026-12-01T09:00:00+00:00",
    }
