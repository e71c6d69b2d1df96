"""ha-webapp's building blocks: the stack settings and the four components every stack is made of."""

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
