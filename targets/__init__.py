"""The targets, side by side: one ComponentResource per target, each grouping everything it declares.

`deploy(settings)` declares the stack's target, named after it, and returns its outputs (targets/outputs.py).
Only the stack's own target is imported: the provider SDKs are large (pulumi_linode alone takes about a
second to import), and a `local` stack needs none of Heroku's or Linode's.
"""

from __future__ import annotations

import importlib

from settings import HerokuSettings, IaasSettings, LocalSettings, ServersSettings
from targets.outputs import TargetOutputs

# target -> (module, ComponentResource class) declaring it
TARGETS: dict[str, tuple[str, str]] = {
    "local": ("targets.local", "LocalTarget"),
    "heroku": ("targets.heroku", "HerokuTarget"),
    "servers": ("targets.servers", "ServersTarget"),
    "iaas": ("targets.iaas", "IaasTarget"),
}


def deploy(settings: LocalSettings | HerokuSettings | ServersSettings | IaasSettings) -> TargetOutputs:
    """Declare the stack's resources and return its outputs."""
    module, name = TARGETS[settings.target]
    target = getattr(importlib.import_module(module), name)(settings.target, settings)
    outputs: TargetOutputs = target.outputs
    return outputs
