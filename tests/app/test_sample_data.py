from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from flights.management.commands.load_sample_data import AIRPORTS, FLIGHTS, PASSENGERS
from flights.models import Airport, Flight, Passenger

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def load() -> str:
    out = StringIO()
    call_command("load_sample_data", stdout=out)
    return out.getvalue()


def counts() -> tuple[int, int, int, int]:
    return (
        Airport.objects.count(),
        Flight.objects.count(),
        Passenger.objects.count(),
        Passenger.flights.through.objects.count(),
    )


def test_loads_the_sample_set() -> None:
    output = load()
    bookings = sum(len(booked) for *_, booked in PASSENGERS)
    assert counts() == (len(AIRPORTS), len(FLIGHTS), len(PASSENGERS), bookings)
    assert f"created {len(AIRPORTS)} airports" in output
    assert all(flight.is_valid_flight() for flight in Flight.objects.all())
    assert Flight.objects.get(origin__code="JFK", destination__code="LHR").passengers.count() == 2


def test_loading_again_adds_nothing() -> None:
    load()
    before = counts()
    output = load()
    assert counts() == before
    assert "created 0 airports, 0 flights, 0 passengers, 0 bookings" in output


def test_completes_a_partial_load() -> None:
    Airport.objects.create(code="JFK", city="New York")
    load()
    assert Airport.objects.filter(code="JFK").count() == 1
    assert counts()[0] == len(AIRPORTS)


@pytest.mark.django_db(transaction=True)
def test_the_release_phase_migrates_and_loads_the_sample_data_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOAD_SAMPLE_DATA", raising=False)
    call_command("release", verbosity=0)
    assert not Airport.objects.exists()
    monkeypatch.setenv("LOAD_SAMPLE_DATA", "true")
    call_command("release", verbosity=0)
    call_command("release", verbosity=0)  # a second release adds nothing
    assert Airport.objects.filter(code="JFK").count() == 1
