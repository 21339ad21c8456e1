#!/usr/bin/env python3
"""Call orders.v1.OrderService with a JSON message, as grpcurl would.

    scripts/grpc-call.sh [--addr HOST:PORT] [--token TOKEN] [-H 'key: value'] METHOD [JSON]

METHOD is an rpc of adapters/proto/orders/v1/orders.proto (CreateOrder, GetOrder, ...);
JSON is its request message in protobuf's JSON mapping (camelCase or proto field
names). The answer is printed as JSON; a failed call prints its status code and
message on stderr and exits 1. The token defaults to $TOKEN, the address to $GRPC_ADDR
or 127.0.0.1:50051. Run it through scripts/grpc-call.sh, which provides grpcio.
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "adapters" / "proto"))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

protos, services = grpc.protos_and_services("orders/v1/orders.proto")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", help="rpc name, e.g. CreateOrder")
    parser.add_argument("message", nargs="?", default="{}", help="request as JSON")
    parser.add_argument("--addr", default=os.environ.get("GRPC_ADDR", "127.0.0.1:50051"))
    parser.add_argument("--token", default=os.environ.get("TOKEN"), help="bearer token")
    parser.add_argument("-H", "--header", action="append", default=[], help="'key: value' metadata")
    args = parser.parse_args()

    service = protos.DESCRIPTOR.services_by_name["OrderService"]
    method = service.methods_by_name.get(args.method)
    if method is None:
        names = ", ".join(sorted(service.methods_by_name))
        print(f"no rpc {args.method!r}; OrderService has {names}", file=sys.stderr)
        return 2
    try:
        request = json_format.Parse(args.message, getattr(protos, method.input_type.name)())
    except json_format.ParseError as error:
        print(f"the message is not a {method.input_type.name}: {error}", file=sys.stderr)
        return 2
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    for header in args.header:
        key, _, value = header.partition(":")
        metadata.append((key.strip().lower(), value.strip()))

    with grpc.insecure_channel(args.addr) as channel:
        call = getattr(services.OrderServiceStub(channel), args.method)
        try:
            response = call(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(response))
    return 0


if __name__ == "__main__":
    sys.exit(main())
