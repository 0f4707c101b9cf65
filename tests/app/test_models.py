from __future__ import annotations

import pytest
from flights.models import Airport, Flight, Passenger

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def jfk() -> Airport:
    return Airport.objects.create(code="JFK", city="New York")


@pytest.fixture
def lhr() -> Airport:
    return Airport.objects.create(code="LHR", city="London")


@pytest.mark.parametrize(
    ("same_airport", "duration", "valid"),
    [
        (False, 415, True),
        (False, 0, True),
        (False, -1, False),
        (True, 415, False),
        (True, -100, False),
    ],
)
def test_is_valid_flight(jfk: Airport, lhr: Airport, same_airport: bool, duration: int, valid: bool) -> None:
    flight = Flight.objects.create(origin=jfk, destination=jfk if same_airport else lhr, duration=duration)
    assert flight.is_valid_flight() is valid


def test_a_flight_to_its_own_origin_can_be_stored(jfk: Airport) -> None:
    flight = Flight.objects.create(origin=jfk, destination=jfk, duration=60)
    stored = Flight.objects.get(pk=flight.pk)
    assert stored.origin == stored.destination == jfk
    assert not stored.is_valid_flight()


def test_related_names(jfk: Airport, lhr: Airport) -> None:
    out = Flight.objects.create(origin=jfk, destination=lhr, duration=415)
    back = Flight.objects.create(origin=lhr, destination=jfk, duration=480)
    harry = Passenger.objects.create(first="Harry", last="Potter")
    harry.flights.add(out)

    assert list(jfk.departures.all()) == [out]
    assert list(jfk.arrivals.all()) == [back]
    assert list(lhr.departures.all()) == [back]
    assert list(out.passengers.all()) == [harry]
    assert list(back.passengers.all()) == []


def test_names_read_well(jfk: Airport, lhr: Airport) -> None:
    flight = Flight.objects.create(origin=jfk, destination=lhr, duration=415)
    assert str(jfk) == "New York (JFK)"
    assert str(flight) == f"{flight.id}: New York (JFK) to London (LHR)"
    assert str(Passenger(first="Ron", last="Weasley")) == "Ron Weasley"
