"""The program `pulumi up` runs: the stack settings (`config`, the only reader of `pulumi.Config`), the replacement
guard, the four components every stack is made of, the release health gate and the servers' user data.

Imports only the Pulumi and Alibaba Cloud SDKs; the offline plan (`plan/`) and the pipeline tools (`pipeline/`) may
import this package, never the other way round.
"""

from infra import guard
from infra.app_tier import AppTier, AppTierArgs, Placement
from infra.config import SLB_SOURCE_CIDR, Settings, SettingsError, load_settings
from infra.database import Database, DatabaseArgs
from infra.load_balancer import LISTENER_PORT, LoadBalancer, LoadBalancerArgs
from infra.network import Network, NetworkArgs, Subnet

__all__ = [
    "LISTENER_PORT",
    "SLB_SOURCE_CIDR",
    "AppTier",
    "AppTierArgs",
    "Database",
    "DatabaseArgs",
    "LoadBalancer",
    "LoadBalancerArgs",
    "Network",
    "NetworkArgs",
    "Placement",
    "Settings",
    "SettingsError",
    "Subnet",
    "guard",
    "load_settings",
]
