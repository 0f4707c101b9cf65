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
    bookings = sum(len(booked) for _, _, booked in PASSENGERS)
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
