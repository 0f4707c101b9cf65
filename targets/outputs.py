"""The outputs every target exports, typed once: where the app answers, the image it releases (by digest),
what it costs a month, and the target's own extras."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi


@dataclass(frozen=True)
class TargetOutputs:
    url: pulumi.Output[str]
    image_ref: pulumi.Output[str]  # repository@sha256:…, the image that serves once `up` succeeded
    image_digest: pulumi.Output[str]
    monthly_cost: Mapping[str, Any]
    extras: Mapping[str, pulumi.Input[Any]] = field(default_factory=dict)

    def exports(self) -> dict[str, pulumi.Input[Any]]:
        """Stack output name -> value."""
        return {
            "url": self.url,
            "image_ref": self.image_ref,
            "image_digest": self.image_digest,
            "monthly_cost": dict(self.monthly_cost),
            **self.extras,
        }


def moved(parent: pulumi.Resource, old_name: str, **options: Any) -> pulumi.ResourceOptions:
    """Options of a child of a target that the older layout declared at the stack's root as old_name: the
    alias keeps its state (and its children's) so `pulumi up` on such a stack replaces nothing."""
    alias = pulumi.Alias(name=old_name, parent=pulumi.ROOT_STACK_RESOURCE)
    return pulumi.ResourceOptions(parent=parent, aliases=[alias], **options)
