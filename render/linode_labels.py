"""Names of what the iaas target creates on Linode (pure): labels within Linode's limits, and the tags."""

from __future__ import annotations

# Linode's limit on firewall, NodeBalancer and database labels.
SHORT_LABEL = 32


def label(app_name: str, suffix: str, limit: int = SHORT_LABEL) -> str:
    """`<app>-<suffix>`, the app part shortened to fit the limit (never ending in `-` where it is cut)."""
    return f"{app_name[: limit - len(suffix) - 1].rstrip('-')}-{suffix}"


def tags(app_name: str) -> list[str]:
    """Every Linode resource of the stack carries these, so Cloud Manager lists them together."""
    return ["flightdeck", app_name]
