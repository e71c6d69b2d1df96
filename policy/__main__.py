"""The ha-webapp policy pack: `pulumi preview --policy-pack policy` runs this (the rules live in policies.py)."""

import sys
from pathlib import Path

from pulumi_policy import PolicyPack

# The analyzer runs this file as a script; make its sibling module importable however it is started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from policies import ALL

PolicyPack(name="ha-webapp", policies=ALL)
