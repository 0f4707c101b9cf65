from __future__ import annotations

from typing import Any

from django import forms

from flights.models import Flight, Passenger


class BookingForm(forms.Form):
    """Book one passenger onto a flight; only passengers not already on it are valid choices, and only a
    flight that is_valid_flight() can be booked at all."""

    passenger = forms.ModelChoiceField(
        queryset=Passenger.objects.none(),
        empty_label="Choose a passenger",
        error_messages={
            "required": "Choose a passenger to book.",
            "invalid_choice": "That passenger does not exist or is already booked on this flight.",
        },
    )

    def __init__(self, *args: Any, flight: Flight, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flight = flight
        self.fields["passenger"].queryset = Passenger.objects.exclude(flights=flight)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Such flights can be stored (e.g. through the admin) but nobody can fly them.
        if not self.flight.is_valid_flight():
            raise forms.ValidationError(
                f"Flight {self.flight.id} cannot be booked: its origin and destination must differ and its "
                "duration must not be negative.",
                code="invalid_flight",
            )
        return cleaned

    def save(self) -> Passenger:
        passenger: Passenger = self.cleaned_data["passenger"]
        passenger.flights.add(self.flight)
        return passenger
