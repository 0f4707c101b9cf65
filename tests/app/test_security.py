"""Content-Security-Policy on every response, and login throttling on the admin (django-axes), as a browser
behind the deployment's one proxy meets them."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from flights.models import Airport, Flight, Passenger

from tests.app.conftest import HTTPS, ORIGIN

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
PASSWORD = "a-long-and-correct-password"


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks: inline scripts, <style> elements, style and on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if (tag == "script" and "src" not in names) or tag == "style":
            self.found.append(f"<{tag}> without src" if tag == "script" else "<style>")
        self.found += [f"{name}= on <{tag}>" for name in names if name == "style" or name.startswith("on")]


def policy(header: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: sources} (the order of directives means nothing)."""
    return dict(tuple(part.strip().split(" ", 1)) for part in header.split(";"))  # type: ignore[misc]


def inline_code(page: str) -> list[str]:
    parser = InlineCode()
    parser.feed(page)
    return parser.found


@pytest.fixture
def flight() -> Flight:
    jfk = Airport.objects.create(code="JFK", city="New York")
    lhr = Airport.objects.create(code="LHR", city="London")
    return Flight.objects.create(origin=jfk, destination=lhr, duration=415)


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_superuser("admin", "admin@airline.test", PASSWORD)


@pytest.mark.django_db
@pytest.mark.postgres
def test_every_kind_of_response_carries_the_policy(browser: Client, flight: Flight) -> None:
    page = browser.get("/")
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page.content.decode())
    assert stylesheet
    responses = {
        "page": page,
        "flight page": browser.get(f"/{flight.id}/"),
        "not found": browser.get("/999999/"),
        "static file": browser.get(stylesheet.group(1)),
        "admin login": browser.get("/admin/login/"),
        "plain HTTP redirect": Client().get("/"),
        "health check": Client().get("/healthz"),
    }
    for what, response in responses.items():
        assert policy(response["Content-Security-Policy"]) == POLICY, what


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_admin_needs_no_inline_script_or_style(flight: Flight, admin_user: User) -> None:
    passenger = Passenger.objects.create(first="Harry", last="Potter")
    admin = Client(headers=HTTPS)
    assert inline_code(admin.get("/admin/login/").content.decode()) == []
    admin.force_login(admin_user)
    pages = ["/admin/", "/admin/flights/passenger/", "/admin/flights/passenger/add/"]
    pages += [
        f"/admin/flights/passenger/{passenger.id}/change/",
        f"/admin/flights/flight/{flight.id}/change/",
    ]
    pages += ["/admin/procrastinate/procrastinatejob/", "/admin/axes/accessattempt/", "/admin/auth/user/"]
    pages += ["/", f"/{flight.id}/"]
    for path in pages:
        response = admin.get(path)
        assert response.status_code == 200, path
        assert policy(response["Content-Security-Policy"]) == POLICY, path
        assert inline_code(response.content.decode()) == [], path


def test_the_inline_code_finder_finds_what_the_policy_blocks() -> None:
    page = '<script>x()</script><script src="/a.js"></script><style>p{}</style><p style="x" onclick="y()">'
    assert sorted(inline_code(page)) == [
        "<script> without src",
        "<style>",
        "onclick= on <p>",
        "style= on <p>",
    ]


def log_in(browser: Client, username: str, password: str, client_ip: str, sent: str | None = None) -> int:
    """POST the admin's login form as a browser at client_ip behind the proxy; return the status.

    The proxy appends the address it was connected from to whatever X-Forwarded-For the client `sent`.
    """
    page = browser.get("/admin/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    forwarded = f"{sent}, {client_ip}" if sent else client_ip
    response = browser.post(
        "/admin/login/?next=/admin/",
        {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password},
        headers={"Origin": ORIGIN, "X-Forwarded-For": forwarded},
    )
    return response.status_code


def logged_in(browser: Client) -> bool:
    return browser.get("/admin/").status_code == 200


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_admin_logs_in_with_the_right_password(browser: Client, admin_user: User) -> None:
    assert not logged_in(browser)
    assert log_in(browser, "admin", PASSWORD, "203.0.113.7") == 302
    assert logged_in(browser)


@pytest.mark.django_db
@pytest.mark.postgres
def test_twelve_wrong_passwords_lock_the_username_out_after_five(browser: Client, admin_user: User) -> None:
    statuses = [log_in(browser, "admin", f"wrong-{i}", "203.0.113.7") for i in range(12)]
    # The form again (200) for the first four; the fifth failure locks, and from then on: 429.
    assert statuses == [200] * 4 + [429] * 8
    attempt = AccessAttempt.objects.get(username="admin")
    assert (attempt.ip_address, attempt.failures_since_start) == ("203.0.113.7", 12)  # every one counted

    # Locked out, the right password is refused too.
    assert log_in(browser, "admin", PASSWORD, "203.0.113.7") == 429
    assert not logged_in(browser)


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_lockout_touches_only_that_username_from_that_address(admin_user: User) -> None:
    User.objects.create_superuser("ops", "ops@airline.test", PASSWORD)
    attacker = Client(enforce_csrf_checks=True, headers=HTTPS)
    for i in range(5):
        log_in(attacker, "admin", f"wrong-{i}", "203.0.113.7")
    assert log_in(attacker, "admin", PASSWORD, "203.0.113.7") == 429

    other_user = Client(enforce_csrf_checks=True, headers=HTTPS)
    assert log_in(other_user, "ops", PASSWORD, "203.0.113.7") == 302
    assert logged_in(other_user)
    other_address = Client(enforce_csrf_checks=True, headers=HTTPS)
    assert log_in(other_address, "admin", PASSWORD, "198.51.100.20") == 302
    assert logged_in(other_address)


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(browser: Client, admin_user: User) -> None:
    # A new made-up address in front of every attempt: only the proxy's entry counts.
    statuses = [
        log_in(browser, "admin", f"wrong-{i}", "203.0.113.7", sent=f"198.51.100.{i}") for i in range(8)
    ]
    assert statuses == [200] * 4 + [429] * 4
    assert log_in(browser, "admin", PASSWORD, "203.0.113.7", sent="198.51.100.99") == 429
    assert log_in(browser, "admin", PASSWORD, "203.0.113.7", sent="garbage, 10.0.0.1") == 429
    assert not logged_in(browser)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_lockout_ends_after_the_cool_off(browser: Client, admin_user: User) -> None:
    for i in range(5):
        log_in(browser, "admin", f"wrong-{i}", "203.0.113.7")
    assert log_in(browser, "admin", PASSWORD, "203.0.113.7") == 429
    # Fifteen minutes pass.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(browser, "admin", PASSWORD, "203.0.113.7") == 302
    assert logged_in(browser)
