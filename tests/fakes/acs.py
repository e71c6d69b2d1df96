"""The tests' signed-API stand-ins are served by the local cloud's serving code (localcloud/acs.py), with these keys."""

from localcloud.acs import FakeAcsApi, StandIn, serve

__all__ = ["ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "FakeAcsApi", "StandIn", "serve"]

# Throwaway keys the SDK signs with in tests (fixture `acs_credentials`); the fakes check signatures with them.
ACCESS_KEY_ID = "LTAI-test-key-id"
ACCESS_KEY_SECRET = "test-secret-do-not-print"  # pragma: allowlist secret
