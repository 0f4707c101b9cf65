"""flightdeck's Pulumi program: `pulumi up --stack local|dev|prod|iaas`.

The stack's config is parsed once into validated settings (a bad value stops here, before any resource);
the target's components do the rest.
"""

import pulumi

from components.settings import load
from components.targets import deploy

for output, value in deploy(load()).items():
    pulumi.export(output, value)
