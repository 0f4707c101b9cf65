"""The flights app's background work, done by the worker process (procrastinate's default queue)."""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.template.loader import render_to_string
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from flights.models import Flight, Passenger

logger = logging.getLogger(__name__)

# Mail servers and networks fail for a while and come back: such errors (OSError covers smtplib's and the
# socket's) are retried after 5 s, 25 s, 125 s and 625 s; after the fifth failed attempt the job stays
# `failed` in the admin's list of jobs. Any other error (the booking is gone) fails the job at once.
MAIL_RETRY = RetryStrategy(max_attempts=4, exponential_wait=5, retry_exceptions={OSError})


@app.task(retry=MAIL_RETRY)
def send_booking_confirmation(*, passenger_id: int, flight_id: int) -> None:
    """E-mail a passenger that they are booked on a flight."""
    passenger = Passenger.objects.get(pk=passenger_id)
    flight = Flight.objects.select_related("origin", "destination").get(pk=flight_id)
    if not passenger.email:
        logger.info("booking confirmation: %s has no e-mail address; flight %s", passenger, flight.id)
        return
    context = {"passenger": passenger, "flight": flight}
    send_mail(
        subject=f"You are booked on flight {flight.id}: {flight.origin.code} to {flight.destination.code}",
        message=render_to_string("flights/mail/booking_confirmation.txt", context),
        from_email=None,  # DEFAULT_FROM_EMAIL
        recipient_list=[passenger.email],
    )
