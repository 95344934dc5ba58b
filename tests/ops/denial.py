"""Make chosen AWS operations fail as IAM refuses them (above botocore, as the caller sees it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError


@contextmanager
def denied(*operations: str) -> Iterator[list[str]]:
    """Every call of ``operations`` (e.g. "GetAccount") raises AccessDenied; yields the refused names."""
    refused: list[str] = []
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        if operation_name in operations:
            refused.append(operation_name)
            prefix = self.meta.service_model.signing_name
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDeniedException",
                        "Message": "User: arn:aws:sts::123456789012:assumed-role/opsbot/fn is not authorized "
                        f"to perform: {prefix}:{operation_name} on resource: *",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                operation_name,
            )
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield refused
