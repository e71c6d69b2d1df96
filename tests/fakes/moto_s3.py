"""moto's server (`python -m moto.server`), S3 only in effect, with one routing bug worked around.

moto 5.2.5 picks a request's service from its Authorization header as if it were SigV4 (`Credential=KEY/date/region/
service/...`). Our OSS client signs with SigV2 (pipeline/oss.py: OSS refuses boto3's SigV4 uploads), whose header is
`AWS KEY:SIGNATURE`; when the base64 signature happens to hold exactly four `/`, moto reads a random "service" out of
it and answers HTTP 500 ("Unable to find appropriate backend for k25owgyyao.AAwz.amazonaws.com"): a test failure that
depends on the bytes signed. A SigV2 request here is always S3, so it goes to moto's default service, S3.
"""

from __future__ import annotations

from typing import Any

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_infer = DomainDispatcherApplication.infer_service_region_host


def _infer_sigv2_as_s3(self: DomainDispatcherApplication, environ: dict[str, Any], path: str) -> str | None:
    if str(environ.get("HTTP_AUTHORIZATION", "")).startswith("AWS "):
        return None  # moto's default service and region: S3 in us-east-1 (the bucket keeps its own region)
    return _infer(self, environ, path)


DomainDispatcherApplication.infer_service_region_host = _infer_sigv2_as_s3  # type: ignore[method-assign]

if __name__ == "__main__":
    server.main()
