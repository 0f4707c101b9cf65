from django.contrib import admin

from flights.models import Airport, Flight, Passenger


@admin.register(Airport)
class AirportAdmin(admin.ModelAdmin):
    list_display = ("code", "city")
    search_fields = ("code", "city")


@admin.register(Flight)
class FlightAdmin(admin.ModelAdmin):
    list_display = ("id", "origin", "destination", "duration")
    list_select_related = ("origin", "destination")


@admin.register(Passenger)
class PassengerAdmin(admin.ModelAdmin):
    list_display = ("first", "last", "email")
    search_fields = ("first", "last", "email")
    filter_horizontal = ("flights",)
