"""Trip and warning callbacks in both forms, ``cb(event)`` and the original component's
``cb(breaker_name, reason)``, sync or async; a callback fitting neither is refused when it
is registered, not when the alert is due (SPEC §5)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from trading_fakes import run

from haltgate import BreakerEvent, HaltgateError, InvalidTypeError


def _scenario(breakers: Any, portfolio: Any) -> None:
    """A daily-loss warning (-1.6 %), then a daily-loss trip (-2.5 %), draining the loop so
    async callbacks have run."""

    async def go() -> None:
        for pct in ("-1.6", "-2.5"):
            portfolio.pnl_pct = Decimal(pct)
            await breakers.check_once()
        for _ in range(5):
            await asyncio.sleep(0)

    run(go())


def _register(breakers: Any, which: str, callback: Callable[..., Any]) -> None:
    getattr(breakers, f"register_{which}_callback")(callback)


@pytest.mark.parametrize("which", ["trip", "warning"])
def test_name_reason_callbacks_fire_with_the_breaker_name_and_reason(make, sync_portfolio, which):
    breakers = make(sync_portfolio)
    seen: list[tuple[str, str, str | None]] = []

    def hook(name, reason):
        seen.append(("sync", name, reason))

    async def async_hook(breaker_name, reason):
        seen.append(("async", breaker_name, reason))

    events: list[BreakerEvent] = []
    _register(breakers, which, hook)
    _register(breakers, which, async_hook)
    # The README's original form: a lambda of two arguments.
    _register(breakers, which, lambda name, reason: seen.append(("lambda", name, reason)))
    _register(breakers, which, events.append)
    _scenario(breakers, sync_portfolio)

    assert len(events) == 1
    event = events[0]
    assert event.breaker_name == "daily_loss"
    assert event.kind == ("tripped" if which == "trip" else "warning")
    assert event.reason
    assert sorted(seen) == [
        ("async", "daily_loss", event.reason),
        ("lambda", "daily_loss", event.reason),
        ("sync", "daily_loss", event.reason),
    ]


@pytest.mark.parametrize("which", ["trip", "warning"])
def test_event_callbacks_fire_with_the_event_sync_and_async(make, sync_portfolio, which):
    breakers = make(sync_portfolio)
    seen: list[tuple[str, BreakerEvent]] = []

    async def async_hook(event):
        seen.append(("async", event))

    def with_default(event, note="x"):
        seen.append(("default", event))

    def star_args(*args):
        seen.append(("star", args[0]))

    _register(breakers, which, lambda event: seen.append(("sync", event)))
    _register(breakers, which, async_hook)
    _register(breakers, which, with_default)
    _register(breakers, which, star_args)
    _scenario(breakers, sync_portfolio)

    kind = "tripped" if which == "trip" else "warning"
    assert sorted(form for form, _ in seen) == ["async", "default", "star", "sync"]
    for _, event in seen:
        assert isinstance(event, BreakerEvent)
        assert (event.kind, event.breaker_name) == (kind, "daily_loss")


def test_a_name_reason_callback_registered_twice_fires_once(make, sync_portfolio):
    breakers = make(sync_portfolio)
    seen: list[str] = []

    def hook(name, reason):
        seen.append(name)

    breakers.register_trip_callback(hook)
    breakers.register_trip_callback(hook)
    _scenario(breakers, sync_portfolio)
    assert seen == ["daily_loss"]


def _three(a, b, c):
    return None


def _keyword_only(event, *, channel):
    return None


@pytest.mark.parametrize("which", ["trip", "warning"])
@pytest.mark.parametrize(
    "callback",
    [
        pytest.param(lambda: None, id="no-argument"),
        pytest.param(_three, id="three-required"),
        pytest.param(_keyword_only, id="required-keyword-only"),
        pytest.param("page_ops", id="not-callable"),
        pytest.param(None, id="none"),
        pytest.param(max, id="uninspectable-builtin"),
    ],
)
def test_a_callback_fitting_neither_form_is_refused_at_registration(
    make, sync_portfolio, which, callback
):
    breakers = make(sync_portfolio)
    with pytest.raises(InvalidTypeError) as caught:
        _register(breakers, which, callback)
    error = caught.value
    assert isinstance(error, TypeError)
    assert isinstance(error, HaltgateError)
    assert error.parameter == "callback"
    assert error.value is callback
    assert "(breaker_name, reason)" in str(error)
    # Nothing was registered: the scenario runs and no refused callback is called.
    _scenario(breakers, sync_portfolio)
    assert not breakers.can_trade()
