"""Each target, from validated settings to components: what `pulumi up` builds for local, heroku and iaas.

Every target makes or promotes one image and releases it by digest; each returns the stack outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_random as random

from components.costs import monthly_cost
from components.heroku import REGISTRY, HerokuApp, HerokuAppArgs
from components.iaas import iaas
from components.image import RegistryLogin
from components.local_registry import LocalRegistry, LocalRegistryArgs
from components.release_image import release_image
from components.settings import Settings, Target
from components.swarm import SwarmStack, SwarmStackArgs

Outputs = Mapping[str, Any]


def local(settings: Settings) -> Outputs:
    """The swarm stack on this machine's Docker engine, pulling the app image from a registry on loopback."""
    assert settings.swarm is not None  # parse() gives the local target its swarm section
    app = settings.app
    registry_args = LocalRegistryArgs(image=settings.swarm.registry_image, prefix=app.name)
    registry = LocalRegistry("registry", registry_args)
    # The registry's address is fixed; depending on it makes the push wait until the registry answers.
    image = release_image(
        "image",
        settings,
        f"127.0.0.1:{registry_args.port}/{app.name}/web",
        insecure=True,
        network_host=True,
        opts=pulumi.ResourceOptions(depends_on=[registry]),
    )
    secret_key = random.RandomPassword("secret-key", length=64, special=False)
    database_password = random.RandomPassword("database-password", length=32, special=False)
    stack = SwarmStack(
        "swarm",
        SwarmStackArgs(
            app=app,
            swarm=settings.swarm,
            image=image.ref,
            secret_key=secret_key.result,
            database_password=database_password.result,
        ),
    )
    return {"url": stack.url, "image_ref": stack.image, "image_digest": image.digest}


def heroku(settings: Settings) -> Outputs:
    """A container app on Heroku: the image goes to the app's repository on Heroku's registry and is
    released by digest through the Platform API, the release phase migrating first."""
    assert settings.heroku is not None  # parse() gives the heroku target its heroku section
    login = RegistryLogin(address=REGISTRY, username="_", password=settings.heroku.api_key.get_secret_value())

    def image(repository: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        return release_image("image", settings, repository, registry=login, opts=opts).ref

    app = HerokuApp("heroku", HerokuAppArgs(app=settings.app, heroku=settings.heroku, image=image))
    return {
        "url": app.url,
        "image_ref": app.image_ref,
        "image_id": app.image_id,
        "release_version": app.release_version,
        "database_plan": app.database_plan,
    }


TARGETS: dict[Target, Callable[[Settings], Outputs]] = {
    Target.LOCAL: local,
    Target.HEROKU: heroku,
    Target.IAAS: iaas,
}


def deploy(settings: Settings) -> Outputs:
    """Declare the stack's resources and return its outputs, the estimated monthly cost among them."""
    outputs = dict(TARGETS[settings.target](settings))
    outputs["monthly_cost"] = monthly_cost(settings).as_output()
    return outputs
