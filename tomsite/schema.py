"""OpenAPI schema post-processing: document what every paginated list may answer."""

from __future__ import annotations

from typing import Any


def document_pagination_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add a 400 response to each operation that takes ``limit``/``offset`` (strict pagination refuses bad ones)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            names = {p.get("name") for p in operation.get("parameters", [])}
            if names & {"limit", "offset"}:
                operation.setdefault("responses", {}).setdefault(
                    "400", {"description": "malformed limit or offset"}
                )
    return result
