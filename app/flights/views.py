from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from flights.forms import BookingForm
from flights.models import Flight
from flights.tasks import send_booking_confirmation


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    flights = Flight.objects.select_related("origin", "destination")
    return render(request, "flights/index.html", {"flights": flights})


@require_safe
def flight(request: HttpRequest, flight_id: int) -> HttpResponse:
    found = get_object_or_404(Flight.objects.select_related("origin", "destination"), pk=flight_id)
    return _flight_page(request, found, BookingForm(flight=found))


@require_POST
def book(request: HttpRequest, flight_id: int) -> HttpResponse:
    found = get_object_or_404(Flight.objects.select_related("origin", "destination"), pk=flight_id)
    form = BookingForm(request.POST, flight=found)
    if not form.is_valid():
        return _flight_page(request, found, form, status=400)
    # The queue lives in this database, so the confirmation's job is written in the booking's own
    # transaction: a worker sees it only once the booking is committed, a booking that fails leaves no job,
    # and no crash between the two can lose the e-mail of a committed booking (as transaction.on_commit
    # could: there the job is written after the commit).
    with transaction.atomic():
        passenger = form.save()
        send_booking_confirmation.defer(passenger_id=passenger.id, flight_id=found.id)
    messages.success(request, f"{passenger} is booked on flight {found.id}.")
    # Post/redirect/get: reloading the page does not repeat the booking.
    return redirect("flights:flight", flight_id=found.id)


def _flight_page(request: HttpRequest, found: Flight, form: BookingForm, status: int = 200) -> HttpResponse:
    context = {"flight": found, "passengers": found.passengers.all(), "form": form}
    return render(request, "flights/flight.html", context, status=status)
