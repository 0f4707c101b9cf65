"""The image a stack releases: built once from app/, or an already-built one promoted by digest."""

from __future__ import annotations

import pulumi

from components.image import AppImage, AppImageArgs, RegistryLogin
from components.promotion import PromotedImage, PromotedImageArgs
from components.settings import Settings


def release_image(
    name: str,
    settings: Settings,
    repository: str,
    *,
    registry: RegistryLogin | None = None,
    insecure: bool = False,
    network_host: bool = False,
    builder: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> AppImage | PromotedImage:
    """The image a stack releases: built from app/ and pushed to repository, or, when flightdeck:imageDigest
    names one, that already-built image copied there under the same digest (no build)."""
    if settings.image.digest:
        return PromotedImage(
            name,
            PromotedImageArgs(
                source=settings.image.digest,
                repository=repository,
                registry_username=registry.username if registry else None,
                registry_password=registry.password if registry else None,
            ),
            opts=opts,
        )
    return AppImage(
        name,
        AppImageArgs(
            repository=repository,
            python_image=settings.image.python_image,
            registry=registry,
            insecure=insecure,
            network_host=network_host,
            builder=builder,
        ),
        opts=opts,
    )
