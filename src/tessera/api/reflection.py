"""gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl and similar tools need no protos.

The descriptors come from the generated code: every protobuf-py module exposes its file's
FileDescriptorProto, and the generated Connect applications say which services are mounted.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterable
from types import ModuleType
from typing import Any

from protobuf import DescFile, DescMessage, DescService, Oneof

from ..gen.grpc.reflection.v1 import reflection_pb as reflection_v1
from ..gen.grpc.reflection.v1alpha import reflection_pb as reflection_v1alpha

_NOT_FOUND = 5  # google.rpc.Code.NOT_FOUND
_UNIMPLEMENTED = 12


def service_descriptor(app: Any) -> DescService:
    """The descriptor of the service a generated ``…ASGIApplication`` serves.

    protoc-gen-connectrpc puts the service's Protocol class, which has ``desc()``, in the same
    module as the application, under the service's short name.
    """
    full_name = str(app.path).lstrip("/")
    module = sys.modules[type(app).__module__]
    protocol = getattr(module, full_name.rsplit(".", 1)[-1])
    desc: DescService = protocol.desc()
    return desc


class DescriptorIndex:
    """Files by name and the file that defines each fully qualified symbol."""

    def __init__(self, services: Iterable[DescService]) -> None:
        self.service_names: list[str] = []
        self.files: dict[str, DescFile] = {}
        self.by_symbol: dict[str, DescFile] = {}
        self.message_names: set[str] = set()
        for service in services:
            if service.type_name not in self.service_names:
                self.service_names.append(service.type_name)
            self._add_file(service.file)

    def _add_file(self, file: DescFile) -> None:
        if file.name in self.files:
            return
        self.files[file.name] = file
        for dependency in file.dependencies:
            self._add_file(dependency)
        for enum in file.enums:
            self.by_symbol[enum.type_name] = file
        for message in file.messages:
            self._add_message(message, file)
        for extension in file.extensions:
            self.by_symbol[extension.type_name] = file
        for service in file.services:
            self.by_symbol[service.type_name] = file
            for method in service.methods:
                self.by_symbol[f"{service.type_name}.{method.name}"] = file

    def _add_message(self, message: DescMessage, file: DescFile) -> None:
        self.by_symbol[message.type_name] = file
        self.message_names.add(message.type_name)
        for field in message.fields:
            self.by_symbol[f"{message.type_name}.{field.name}"] = file
        for nested in message.nested_messages:
            self._add_message(nested, file)
        for enum in message.nested_enums:
            self.by_symbol[enum.type_name] = file

    def with_dependencies(self, file: DescFile, already_sent: set[str]) -> list[bytes]:
        """The file itself (always), then its transitive imports not sent on this stream yet."""
        out: list[bytes] = []

        def visit(current: DescFile, first: bool) -> None:
            if current.name in already_sent and not first:
                return
            already_sent.add(current.name)
            out.append(current.proto.to_binary())
            for dependency in current.dependencies:
                visit(dependency, False)

        visit(file, True)
        return out


class ReflectionService:
    """ServerReflectionInfo for one version of the protocol (v1 and v1alpha share their shapes)."""

    def __init__(self, index: DescriptorIndex, messages: ModuleType) -> None:
        self._index = index
        self._pb = messages

    async def server_reflection_info(self, requests: AsyncIterator[Any], ctx: Any, /) -> AsyncIterator[Any]:
        sent: set[str] = set()
        async for request in requests:
            yield self.answer(request, sent)

    def answer(self, request: Any, sent: set[str]) -> Any:
        pb = self._pb
        kind, value = ("", None) if request.message_request is None else (
            request.message_request.field, request.message_request.value)
        response: Oneof[str, Any]
        if kind == "list_services":
            services = [pb.ServiceResponse(name=name) for name in self._index.service_names]
            response = Oneof("list_services_response", pb.ListServiceResponse(service=services))
        elif kind in ("file_by_filename", "file_containing_symbol"):
            table = self._index.files if kind == "file_by_filename" else self._index.by_symbol
            file = table.get(str(value))
            if file is None:
                what = "file" if kind == "file_by_filename" else "symbol"
                response = self._error(_NOT_FOUND, f"{what} not found: {value}")
            else:
                files = self._index.with_dependencies(file, sent)
                response = Oneof("file_descriptor_response", pb.FileDescriptorResponse(file_descriptor_proto=files))
        elif kind == "file_containing_extension":
            # Tessera's protos declare no extensions.
            response = self._error(_NOT_FOUND, f"extension not found: {getattr(value, 'containing_type', '')}")
        elif kind == "all_extension_numbers_of_type":
            if value in self._index.message_names:
                response = Oneof("all_extension_numbers_response", pb.ExtensionNumberResponse(base_type_name=value))
            else:
                response = self._error(_NOT_FOUND, f"type not found: {value}")
        else:
            response = self._error(_UNIMPLEMENTED, "unsupported reflection request")
        return pb.ServerReflectionResponse(valid_host=request.host, original_request=request,
                                           message_response=response)

    def _error(self, code: int, message: str) -> Oneof[str, Any]:
        return Oneof("error_response", self._pb.ErrorResponse(error_code=code, error_message=message))


def reflection_services(index: DescriptorIndex) -> tuple[ReflectionService, ReflectionService]:
    """Handlers for grpc.reflection.v1 and grpc.reflection.v1alpha over the same index."""
    return ReflectionService(index, reflection_v1), ReflectionService(index, reflection_v1alpha)
