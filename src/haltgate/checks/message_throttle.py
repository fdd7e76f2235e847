"""MessageThrottle: submits + modifies + cancels per window (SPEC §10)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..orders import Order
from ..values import Number
from .base import OrderCheck, window_spec
from .context import OrderDecision

__all__ = ["MESSAGE_KINDS", "MessageThrottle"]

MESSAGE_KINDS = frozenset({"modify", "cancel"})
"""What ``manager.record_message(kind)`` counts (submits are counted by the admission)."""


class MessageThrottle(OrderCheck):
    """Refuses an order (a submit) when the messages already sent in the last
    ``window_seconds`` (admitted submits, plus modifies and cancels counted with
    ``manager.record_message``) leave no room for one more under ``max_messages``: the
    ``max_messages``-th message passes, the next is refused. Modifies and cancels are
    counted, never refused (a cancel must always reach the broker). Deny code
    ``message_throttle``."""

    name = "message_throttle"
    needs_order = False
    counts_messages = True

    def __init__(self, max_messages: int, window_seconds: Number) -> None:
        self.window = window_spec(self.name, max_messages, "max_messages", window_seconds)
        self.max_messages = self.window.limit
        self.window_seconds = self.window.window_seconds

    def window_key(self, order: Order | None) -> Hashable:
        return 0  # one window for every message

    def window_refusal(self, order: Order | None, count: int) -> OrderDecision:
        return self.refuse(
            f"{count + 1} > {self.max_messages} messages in {self.window_seconds:g}s"
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_messages": self.max_messages,
            "window_seconds": self.window_seconds,
        }
