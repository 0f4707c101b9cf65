"""flightdeck's Pulumi program: `pulumi up --stack local|dev|prod|servers|iaas`.

The stack's config is parsed once into validated settings (a bad value stops here, before any resource);
the target's component declares the rest.
"""

import pulumi

from settings import load
from targets import deploy

for output, value in deploy(load()).exports().items():
    pulumi.export(output, value)
