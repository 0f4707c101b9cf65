from django.contrib import admin
from django.urls import include, path

from airline.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("flights.urls")),
]
