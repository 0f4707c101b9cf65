"""Airports, the flights between them and the passengers booked on them."""

from __future__ import annotations

from django.db import models


class Airport(models.Model):
    code = models.CharField(max_length=3, unique=True, help_text="IATA code, e.g. JFK")
    city = models.CharField(max_length=64)

    class Meta:
        ordering = ("code",)

    def __str__(self) -> str:
        return f"{self.city} ({self.code})"


class Flight(models.Model):
    # No constraint ties origin to destination or bounds duration: such rows can be stored (e.g. by the
    # admin), and is_valid_flight() is how callers tell them apart.
    origin = models.ForeignKey(Airport, on_delete=models.CASCADE, related_name="departures")
    destination = models.ForeignKey(Airport, on_delete=models.CASCADE, related_name="arrivals")
    duration = models.IntegerField(help_text="minutes")

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.id}: {self.origin} to {self.destination}"

    def is_valid_flight(self) -> bool:
        return self.origin_id != self.destination_id and self.duration >= 0


class Passenger(models.Model):
    first = models.CharField(max_length=64)
    last = models.CharField(max_length=64)
    # Where booking confirmations go; a passenger without one is booked all the same, with no e-mail.
    email = models.EmailField(blank=True)
    flights = models.ManyToManyField(Flight, blank=True, related_name="passengers")

    class Meta:
        ordering = ("last", "first")

    def __str__(self) -> str:
        return f"{self.first} {self.last}"
