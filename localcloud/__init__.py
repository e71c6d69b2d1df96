"""A local Alibaba Cloud for rehearsing `pulumi up` of this program with the real engine and provider.

Python API: `LocalCloud` (create/update/delete/read, inventory, timeline, health, controls), `serve_slb` (the SLB API
the health gate polls), `serve_ecs` (the ECS API the schema migration runs its command through), `bin_dir` (the
provider plugin to put first on PATH). The command line: `python -m localcloud`.
"""

from localcloud.cloud import LocalCloud, bin_dir
from localcloud.ecs_api import serve_ecs
from localcloud.health import healthy_backends_over_time
from localcloud.resources import KINDS, CloudError
from localcloud.slb_api import serve_slb

__all__ = ["KINDS", "CloudError", "LocalCloud", "bin_dir", "healthy_backends_over_time", "serve_ecs", "serve_slb"]
