"""The `heroku` target (stacks dev and prod): a container-stack app, its add-ons and config vars, the image on
Heroku's registry, released by digest through the Platform API with the release phase migrating first.

Prod builds nothing: its imageDigest names the image dev built, copied into prod's repository under the same
digest and released as it is.
"""

from __future__ import annotations

import pulumi

from components.heroku_app import REGISTRY, HerokuApp, HerokuAppArgs
from components.image import RegistryLogin, release_image
from reports.costs import monthly_cost
from settings import HerokuSettings
from targets.outputs import TargetOutputs, moved


class HerokuTarget(pulumi.ComponentResource):
    outputs: TargetOutputs

    def __init__(
        self, name: str, settings: HerokuSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:targets:Heroku", name, None, opts)
        login = RegistryLogin(
            address=REGISTRY, username="_", password=settings.heroku.api_key.get_secret_value()
        )
        digests: list[pulumi.Output[str]] = []

        def image(repository: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
            made = release_image(
                f"{name}-image",
                digest=settings.image.digest,
                python_image=settings.image.python_image,
                repository=repository,
                registry=login,
                opts=pulumi.ResourceOptions.merge(moved(self, "image"), opts),
            )
            digests.append(made.digest)
            return made.ref

        app = HerokuApp(
            f"{name}-app",
            HerokuAppArgs(
                app=settings.app, heroku=settings.heroku, image=image, protect_data=settings.protect_data
            ),
            opts=moved(self, "heroku"),
        )
        extras: dict[str, pulumi.Input[object]] = {
            "app_name": app.app_name,
            "image_id": app.image_id,
            "release_version": app.release_version,
            "database_plan": app.database_plan,
        }
        if app.domain_target is not None:
            extras["dns_target"] = app.domain_target  # point the custom domain's CNAME/ALIAS here
        self.outputs = TargetOutputs(
            url=app.url,
            image_ref=app.image_ref,
            image_digest=digests[0],
            monthly_cost=monthly_cost(settings).as_output(),
            extras=extras,
        )
        self.register_outputs(self.outputs.exports())
