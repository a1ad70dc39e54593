"""What the service's parts need of the server link, as a protocol.

The service, the outbox's sender and the downloads call the server through this; the
composition root gives them `glosmsd.daemon.link.Link`, which none of them imports.
"""

from __future__ import annotations

from typing import Any, Protocol

from glosmsd.core.protocol import LinkStatus


class ServerLink(Protocol):
    """What the service needs of the link (`glosmsd.daemon.link.Link`)."""

    @property
    def status(self) -> LinkStatus: ...

    def describe(self) -> str: ...

    async def call(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any: ...  # noqa: ASYNC109
