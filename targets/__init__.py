"""The targets, side by side: one ComponentResource per target, each grouping everything it declares.

`deploy(settings)` declares the stack's target, named after it, and returns its outputs (targets/outputs.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from settings import HerokuSettings, IaasSettings, LocalSettings, ServersSettings
from targets.heroku import HerokuTarget
from targets.iaas import IaasTarget
from targets.local import LocalTarget
from targets.outputs import TargetOutputs
from targets.servers import ServersTarget

TARGETS: dict[str, Callable[[str, Any], LocalTarget | HerokuTarget | ServersTarget | IaasTarget]] = {
    "local": LocalTarget,
    "heroku": HerokuTarget,
    "servers": ServersTarget,
    "iaas": IaasTarget,
}


def deploy(settings: LocalSettings | HerokuSettings | ServersSettings | IaasSettings) -> TargetOutputs:
    """Declare the stack's resources and return its outputs."""
    return TARGETS[settings.target](settings.target, settings).outputs
