"""A local stand-in for the two ECS API calls the schema migration makes (Cloud Assistant's RunCommand and
DescribeInvocationResults), on 127.0.0.1.

Built on localcloud/acs.py (signature check, serving). Each RunCommand starts the next scripted invocation; each poll
of it answers its script's next state (the last one repeating), with Output base64-encoded as the API answers it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import ClassVar

from tests.fakes.acs import FakeAcsApi, serve

__all__ = ["FakeEcs", "State", "serve"]


@dataclass(frozen=True)
class State:
    """One poll's answer for an invocation on its instance."""

    status: str
    exit_code: int | None = None
    output: str = ""
    error_code: str = ""
    error_info: str = ""


@dataclass
class FakeEcs(FakeAcsApi):
    actions: ClassVar[frozenset[str]] = frozenset({"RunCommand", "DescribeInvocationResults"})

    instance_id: str = "i-new-a1"
    # One script per RunCommand, in order: the states successive polls of that invocation answer.
    invocations: list[list[State]] = field(default_factory=list)
    # (HTTP status, error code, message) answered instead, per action, on successive requests
    errors: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    # What each action was asked, in order.
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)
    _started: int = 0

    def answer_action(self, action: str, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        number = len(self.calls)
        self.calls.append((action, query))
        if self.errors.get(action):
            status, code, message = self.errors[action].pop(0)
            body: dict[str, object] = {"RequestId": f"req-{number}", "Message": message}
            return status, ({**body, "Code": code} if code else body)
        if action == "RunCommand":
            if query.get("InstanceId.1") != self.instance_id:
                return 404, {
                    "RequestId": f"req-{number}",
                    "Code": "InvalidInstanceId.NotFound",
                    "Message": f"The specified instance {query.get('InstanceId.1')} does not exist.",
                }
            self._started += 1
            started = self._started
            return 200, {"RequestId": f"req-{number}", "CommandId": f"c-{started}", "InvokeId": f"t-{started}"}
        invoke_id = query.get("InvokeId", "")
        script = self.invocations[int(invoke_id.removeprefix("t-")) - 1]
        poll = self._polls.get(invoke_id, 0)
        self._polls[invoke_id] = poll + 1
        state = script[min(poll, len(script) - 1)]
        result = {
            "InstanceId": self.instance_id,
            "InvokeId": invoke_id,
            "InvocationStatus": state.status,
            "ExitCode": state.exit_code,
            "Output": base64.b64encode(state.output.encode()).decode(),
            "ErrorCode": state.error_code,
            "ErrorInfo": state.error_info,
            "Dropped": 0,
        }
        return 200, {"RequestId": f"req-{number}", "Invocation": {"InvocationResults": {"InvocationResult": [result]}}}

    def scripts_sent(self) -> list[str]:
        return [q.get("CommandContent", "") for a, q in self.calls if a == "RunCommand"]

    def started(self) -> int:
        """How many invocations RunCommand started (refused calls not counted)."""
        return self._started
