"""The local cloud's resource provider plugin: `pulumi-resource-alicloud` for a rehearsal workspace.

The engine loads it instead of the real alicloud provider (localcloud/bin comes first on PATH). It starts the REAL
provider (the binary named by LOCALCLOUD_REAL_PROVIDER) as its child and forwards everything to it — schema, config
checks, Configure, Check, Diff, previews of Create and Update — so that input validation and replacement decisions
stay the real provider's. Only what would call the cloud is answered here, from the local cloud's store
(LOCALCLOUD_DIR): Create, Read, Update and Delete.

Like every plugin, it prints the port it serves on as the first line of its stdout.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from localcloud.cloud import LocalCloud
from localcloud.resources import CloudError

ENV_REAL_PROVIDER = "LOCALCLOUD_REAL_PROVIDER"
_MESSAGE_LIMIT = 512 * 1024 * 1024  # the real provider's schema and mapping answers are tens of MB
_OPTIONS = [("grpc.max_receive_message_length", _MESSAGE_LIMIT), ("grpc.max_send_message_length", _MESSAGE_LIMIT)]
_SERVICE = provider_pb2.DESCRIPTOR.services_by_name["ResourceProvider"]
# What the local cloud answers itself; every other call goes to the real provider.
_OWN = {"Create", "Read", "Update", "Delete"}


def _to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    converted: dict[str, Any] = json_format.MessageToDict(struct, preserving_proto_field_name=True)
    return converted


def _to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def type_of(urn: str) -> str:
    """The resource type token of a URN (urn:pulumi:stack::project::parent$type::name)."""
    return urn.split("::")[2].split("$")[-1]


class RealProvider:
    """The real provider binary, started as this plugin's child with the same arguments (the engine's address)."""

    def __init__(self, binary: str, args: list[str]) -> None:
        env = dict(os.environ)
        # Without an account type the provider's Configure asks BssOpenApi (business.aliyuncs.com) for it, retrying for
        # 30 s; a rehearsal must reach nothing but 127.0.0.1, and the answer does not matter to a local cloud.
        env.setdefault("ALIBABA_CLOUD_ACCOUNT_TYPE", "Domestic")
        self.process = subprocess.Popen(
            [binary, *args], stdout=subprocess.PIPE, env=env, preexec_fn=_die_with_parent, close_fds=True
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().decode().strip()
        if not port.isdigit():
            raise RuntimeError(f"the real provider {binary} did not print a port (got {port!r})")
        # The rest of its stdout is logging; keep draining it so that the child never blocks on a full pipe.
        threading.Thread(target=_drain, args=(self.process.stdout,), daemon=True).start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait()


def _drain(stream: Any) -> None:
    for line in stream:
        sys.stderr.buffer.write(line)


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the engine kills plugins when it is done; the real provider must not outlive this one.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _forward(name: str) -> Any:
    def method(self: Provider, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return getattr(self.real.stub, name)(request)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or "")

    method.__name__ = name
    return method


class Provider(provider_pb2_grpc.ResourceProviderServicer):
    """Create, Read, Update and Delete against the local cloud; everything else by the real provider."""

    def __init__(self, real: RealProvider, cloud: LocalCloud) -> None:
        self.real = real
        self.cloud = cloud

    def Create(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (gRPC method name)
        if request.preview:  # a plan, not a change: the real provider computes it without calling the cloud
            return self.real.stub.Create(request)
        record = self._call(context, self.cloud.create, type_of(request.urn), _to_dict(request.properties), request.urn)
        return provider_pb2.CreateResponse(id=record["id"], properties=_to_struct(record["outputs"]))

    def Update(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if request.preview:
            return self.real.stub.Update(request)
        record = self._call(context, self.cloud.update, type_of(request.urn), request.id, _to_dict(request.news))
        return provider_pb2.UpdateResponse(properties=_to_struct(record["outputs"]))

    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        from google.protobuf import empty_pb2

        self._call(context, self.cloud.delete, type_of(request.urn), request.id)
        return empty_pb2.Empty()

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        record = self.cloud.read(type_of(request.urn), request.id)
        if record is None or record["state"] == "creating":
            return provider_pb2.ReadResponse()  # gone: the engine drops it from the state on refresh
        return provider_pb2.ReadResponse(
            id=record["id"], properties=_to_struct(record["outputs"]), inputs=_to_struct(record["inputs"])
        )

    def _call(self, context: grpc.ServicerContext, operation: Any, *args: Any) -> Any:
        try:
            return operation(*args)
        except CloudError as error:
            # Worded like the real provider's failures: the API's code and message, with the HTTP status.
            context.abort(
                grpc.StatusCode.UNKNOWN,
                f"[LocalCloud] {error.code}: {error.message} (HTTP {error.status}, local cloud {self.cloud.root})",
            )


for _method in _SERVICE.methods:
    if _method.name not in _OWN:
        setattr(Provider, _method.name, _forward(_method.name))


def main(argv: list[str]) -> None:
    binary = os.environ.get(ENV_REAL_PROVIDER)
    if not binary:
        sys.exit(f"{ENV_REAL_PROVIDER} must name the real pulumi-resource-alicloud binary")
    real = RealProvider(binary, argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=_OPTIONS)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(Provider(real, LocalCloud()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)

    def stop(*_: object) -> None:
        server.stop(grace=1)
        real.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()
    real.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
