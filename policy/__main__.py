"""The flightdeck policy pack: `pulumi preview --policy-pack policy` (the rules live in rules.py)."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(name="flightdeck", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
