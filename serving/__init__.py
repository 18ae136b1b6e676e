"""toolcast.serving: the hosted prediction endpoint (`toolcast serve`) and its HTTP client.

`Client` needs only httpx, so an agent process can use the service in place of the embedded predictor
without FastAPI; `create_app` loads FastAPI on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolcast.serving.client import Client, ServingError
from toolcast.serving.settings import ServeSettings

if TYPE_CHECKING:
    from toolcast.serving.app import create_app

__all__ = ["Client", "ServeSettings", "ServingError", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from toolcast.serving.app import create_app

        return create_app
    raise AttributeError(f"module 'toolcast.serving' has no attribute {name!r}")
