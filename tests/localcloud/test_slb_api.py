"""The health gate's own SDK client reads the local cloud's SLB API, signed with the cloud's keys."""

from __future__ import annotations

import pytest

# Both from one import: the offline plan (other tests) re-imports the program, which would make two HealthGateErrors.
from infra.health_gate import HealthGateError, SlbHealthReader
from localcloud import LocalCloud, serve_slb
from localcloud.store import DEFAULT_ACCESS_KEY_ID
from tests.localcloud.conftest import BOOT_SECONDS, ZONE_A, add_server, build_network


def test_the_gates_sdk_client_reads_backend_health_from_the_local_cloud(cloud: LocalCloud, cloud_keys: None) -> None:
    net = build_network(cloud)
    with serve_slb(cloud) as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        reader = SlbHealthReader("cn-hangzhou", endpoint.removeprefix("http://"), "http")
        assert reader(net["slb"]["id"], 80) == {}  # warms the SDK up: its first call is slower than a boot here
        server = add_server(cloud, net, ZONE_A)
        assert reader(net["slb"]["id"], 80) == {server["id"]: "abnormal"}
        cloud.store.sleep(BOOT_SECONDS + 10)
        assert reader(net["slb"]["id"], 80) == {server["id"]: "normal"}
        assert reader(net["slb"]["id"], 443) == {}


def test_an_unknown_load_balancer_is_refused_like_the_api_does(cloud: LocalCloud, cloud_keys: None) -> None:
    with serve_slb(cloud) as endpoint:
        reader = SlbHealthReader("cn-hangzhou", endpoint.removeprefix("http://"), "http")
        with pytest.raises(HealthGateError, match=r"InvalidLoadBalancerId\.NotFound"):
            reader("lb-nope", 80)


def test_a_request_signed_with_other_keys_is_refused(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    from alibabacloud_credentials.utils import auth_util

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-clouds-secret")
    monkeypatch.setattr(auth_util, "environment_access_key_id", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", "not-the-clouds-secret")
    monkeypatch.setattr(auth_util, "environment_security_token", None)
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False)
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
    with serve_slb(cloud) as endpoint:
        reader = SlbHealthReader("cn-hangzhou", endpoint.removeprefix("http://"), "http")
        with pytest.raises(HealthGateError, match="SignatureDoesNotMatch"):
            reader("lb-nope", 80)
