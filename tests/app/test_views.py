from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import DatabaseError
from django.test import Client
from flights.models import Airport, Flight, Passenger
from flights.tasks import send_booking_confirmation
from procrastinate.contrib.django.models import ProcrastinateJob

from tests.app.conftest import HTTPS, ORIGIN

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def flight() -> Flight:
    jfk = Airport.objects.create(code="JFK", city="New York")
    lhr = Airport.objects.create(code="LHR", city="London")
    return Flight.objects.create(origin=jfk, destination=lhr, duration=415)


@pytest.fixture
def harry(flight: Flight) -> Passenger:
    passenger = Passenger.objects.create(first="Harry", last="Potter")
    passenger.flights.add(flight)
    return passenger


@pytest.fixture
def hermione() -> Passenger:
    return Passenger.objects.create(first="Hermione", last="Granger")


def csrf_token(browser: Client, flight: Flight) -> str:
    """The token a real visitor gets: from the form on the flight page (which also sets the cookie)."""
    page = browser.get(f"/{flight.id}/").content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def book(browser: Client, flight_id: int, token: str, **data: object) -> object:
    return browser.post(
        f"/{flight_id}/book/", {"csrfmiddlewaretoken": token, **data}, headers={"Origin": ORIGIN}
    )


def test_the_list_shows_every_flight(browser: Client, flight: Flight) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    assert f'href="/{flight.id}/"' in response.content.decode()
    assert "New York (JFK) to London (LHR)" in response.content.decode()


def test_the_list_says_when_there_are_no_flights(browser: Client) -> None:
    assert "No flights yet." in browser.get("/").content.decode()


def test_the_flight_page_lists_passengers_and_offers_only_the_others(
    browser: Client, flight: Flight, harry: Passenger, hermione: Passenger
) -> None:
    response = browser.get(f"/{flight.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    passengers = page.split('<ul class="passengers">')[1].split("</ul>")[0]
    assert "Harry Potter" in passengers
    assert "Hermione Granger" not in passengers
    choices = re.findall(r'<option value="(\d+)"', page)
    assert choices == [str(hermione.id)]


def test_an_unknown_flight_is_404(browser: Client) -> None:
    assert browser.get("/999999/").status_code == 404


def test_booking_with_a_real_token_books_and_redirects(
    browser: Client, flight: Flight, hermione: Passenger
) -> None:
    token = csrf_token(browser, flight)
    response = book(browser, flight.id, token, passenger=hermione.id)
    assert response.status_code == 302
    assert response["Location"] == f"/{flight.id}/"
    assert list(flight.passengers.all()) == [hermione]
    after = browser.get(response["Location"]).content.decode()
    assert "Hermione Granger is booked on flight" in after


def test_booking_without_a_token_is_refused(browser: Client, flight: Flight, hermione: Passenger) -> None:
    csrf_token(browser, flight)  # the cookie is there; the form field is not
    response = browser.post(f"/{flight.id}/book/", {"passenger": hermione.id}, headers={"Origin": ORIGIN})
    assert response.status_code == 403
    assert not flight.passengers.exists()


def test_booking_with_a_forged_token_is_refused(browser: Client, flight: Flight, hermione: Passenger) -> None:
    csrf_token(browser, flight)
    response = book(browser, flight.id, "x" * 64, passenger=hermione.id)
    assert response.status_code == 403
    assert not flight.passengers.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Choose a passenger to book."),
        ("not-a-number", "That passenger does not exist or is already booked on this flight."),
        ("999999", "That passenger does not exist or is already booked on this flight."),
    ],
)
def test_bad_booking_input_shows_the_form_error(
    browser: Client, flight: Flight, hermione: Passenger, value: str, message: str
) -> None:
    response = book(browser, flight.id, csrf_token(browser, flight), passenger=value)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not flight.passengers.exists()


def test_booking_someone_already_on_board_is_an_error(
    browser: Client, flight: Flight, harry: Passenger
) -> None:
    response = book(browser, flight.id, csrf_token(browser, flight), passenger=harry.id)
    assert response.status_code == 400
    assert "already booked on this flight" in response.content.decode()
    assert list(flight.passengers.all()) == [harry]


def test_booking_onto_an_unknown_flight_is_404(browser: Client, flight: Flight, hermione: Passenger) -> None:
    response = book(browser, 999999, csrf_token(browser, flight), passenger=hermione.id)
    assert response.status_code == 404
    assert not hermione.flights.exists()


def test_booking_takes_post_only(browser: Client, flight: Flight) -> None:
    assert browser.get(f"/{flight.id}/book/").status_code == 405


def test_plain_http_pages_redirect_to_https(flight: Flight) -> None:
    response = Client().get(f"/{flight.id}/")
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver/{flight.id}/"


def test_https_pages_carry_the_security_headers(browser: Client) -> None:
    response = browser.get("/")
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_admin_manages_the_models(flight: Flight, harry: Passenger) -> None:
    admin = Client(headers=HTTPS)
    assert admin.get("/admin/").status_code == 302  # to the login page
    admin.force_login(User.objects.create_superuser("admin", "admin@airline.test", "unused-password"))
    for model in ("airport", "flight", "passenger"):
        assert admin.get(f"/admin/flights/{model}/").status_code == 200
    assert "Harry" in admin.get(f"/admin/flights/passenger/{harry.id}/change/").content.decode()


def test_static_files_are_hashed_and_cached_for_ever(browser: Client) -> None:
    page = browser.get("/").content.decode()
    match = re.search(r'href="(/static/flights/style\.[0-9a-f]{12}\.css)"', page)
    assert match, page
    response = browser.get(match.group(1))
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"


CONFIRMATION = "flights.tasks.send_booking_confirmation"


def test_a_booking_queues_exactly_one_confirmation(
    browser: Client, flight: Flight, hermione: Passenger
) -> None:
    response = book(browser, flight.id, csrf_token(browser, flight), passenger=hermione.id)
    assert response.status_code == 302
    jobs = list(ProcrastinateJob.objects.values_list("task_name", "queue_name", "status", "args"))
    assert jobs == [(CONFIRMATION, "default", "todo", {"passenger_id": hermione.id, "flight_id": flight.id})]
    assert not mail.outbox  # sent by a worker, not by the request


def test_a_refused_booking_queues_nothing(browser: Client, flight: Flight, harry: Passenger) -> None:
    assert book(browser, flight.id, csrf_token(browser, flight), passenger=harry.id).status_code == 400
    assert not ProcrastinateJob.objects.exists()


def test_a_booking_whose_job_cannot_be_written_is_not_saved(
    browser: Client, flight: Flight, hermione: Passenger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is written in the booking's transaction: either both are saved or neither is."""

    def fail(**kwargs: object) -> None:
        raise DatabaseError("the queue is unavailable")

    monkeypatch.setattr(send_booking_confirmation, "defer", fail)
    token = csrf_token(browser, flight)
    browser.raise_request_exception = False
    assert book(browser, flight.id, token, passenger=hermione.id).status_code == 500
    assert not flight.passengers.exists()


@pytest.mark.parametrize(("same_airport", "duration"), [(True, 60), (False, -5), (True, -5)])
def test_a_flight_that_is_not_valid_cannot_be_booked(
    browser: Client, hermione: Passenger, same_airport: bool, duration: int
) -> None:
    jfk = Airport.objects.create(code="JFK", city="New York")
    other = jfk if same_airport else Airport.objects.create(code="LHR", city="London")
    broken = Flight.objects.create(origin=jfk, destination=other, duration=duration)
    response = book(browser, broken.id, csrf_token(browser, broken), passenger=hermione.id)
    assert response.status_code == 400
    assert (
        f"Flight {broken.id} cannot be booked: its origin and destination must differ and its duration must "
        "not be negative." in response.content.decode()
    )
    assert not broken.passengers.exists()
    assert not ProcrastinateJob.objects.exists()
