"""`manage.py load_sample_data`: a few airports, flights and passengers; running it again adds nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from flights.models import Airport, Flight, Passenger

AIRPORTS = {
    "JFK": "New York",
    "LHR": "London",
    "CDG": "Paris",
    "NRT": "Tokyo",
    "PEK": "Beijing",
    "SYD": "Sydney",
}

# (origin, destination, duration in minutes)
FLIGHTS = [
    ("JFK", "LHR", 415),
    ("LHR", "JFK", 480),
    ("CDG", "NRT", 740),
    ("PEK", "SYD", 720),
    ("JFK", "CDG", 445),
    ("NRT", "JFK", 770),
]

# (first, last, e-mail, the indexes in FLIGHTS of the flights they are booked on); example.com is reserved
# for examples (RFC 2606), so no confirmation sent to these addresses reaches anyone.
PASSENGERS = [
    ("Harry", "Potter", "harry.potter@example.com", [0, 1]),
    ("Ron", "Weasley", "ron.weasley@example.com", [0]),
    ("Hermione", "Granger", "hermione.granger@example.com", [2, 4]),
    ("Ginny", "Weasley", "ginny.weasley@example.com", [3]),
]


class Command(BaseCommand):
    help = "Load a sample set of airports, flights and passengers (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        created = {"airports": 0, "flights": 0, "passengers": 0, "bookings": 0}
        airports = {}
        for code, city in AIRPORTS.items():
            airports[code], new = Airport.objects.get_or_create(code=code, defaults={"city": city})
            created["airports"] += new
        flights = []
        for origin, destination, duration in FLIGHTS:
            flight, new = Flight.objects.get_or_create(
                origin=airports[origin], destination=airports[destination], duration=duration
            )
            flights.append(flight)
            created["flights"] += new
        for first, last, email, booked in PASSENGERS:
            passenger, new = Passenger.objects.get_or_create(
                first=first, last=last, defaults={"email": email}
            )
            created["passengers"] += new
            missing = {flights[i] for i in booked} - set(passenger.flights.all())
            passenger.flights.add(*missing)
            created["bookings"] += len(missing)
        summary = ", ".join(f"{count} {what}" for what, count in created.items())
        self.stdout.write(self.style.SUCCESS(f"Sample data loaded; created {summary}."))
