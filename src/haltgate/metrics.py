"""Prometheus metrics (extra ``metrics``): breaker state, trips, orders admitted/refused.

Everything lives on the :class:`prometheus_client.CollectorRegistry` you pass in, so an
application keeps its own registry (and tests stay isolated)::

    registry = CollectorRegistry()
    metrics = HaltgateMetrics(manager, registry)
    metrics.instrument_orders()        # count the orders the manager admits

Exposed series:

- ``haltgate_trading_allowed`` (1 when nothing blocks trading: no breaker tripped, halted
  or full, and the store reachable)
- ``haltgate_breaker_state{breaker,type,state}`` (1 for the breaker's current state)
- ``haltgate_breaker_tripped{breaker}`` (1 while tripped or halted)
- ``haltgate_breaker_trips_total{breaker,kind}`` (``kind`` = tripped | halted)
- ``haltgate_orders_total{outcome}`` (``outcome`` = admitted | refused)
- ``haltgate_order_refusals_total{code}`` (orders refused by the pre-trade checks, by deny
  code: every code of SPEC §10 is exported from the start, 0 until its first refusal; read
  at scrape time. In the trading process (``HaltgateMetrics(manager, registry)``) they are
  ``manager.get_refusal_counts()``, since the manager started. With ``processes=`` (what
  ``haltgate serve`` passes: the live-process registry of the store) they are the sum over
  the live processes' registry entries, each since it started: a process that exits takes
  its counts away, so the sum can go down, which Prometheus reads as a counter reset)
- ``haltgate_process_order_refusals_total{process,pid,host,code}`` (with ``processes=``
  only: each live process's own counts, the codes it has refused; ``process`` is its
  registry origin. Each series only grows while its process lives, so ``rate()`` over
  these is right across a process's exit; a scrape that cannot read the store fails
  (``haltgate serve`` answers 503) rather than report a 0)
- ``haltgate_token_checks_total{outcome}`` (the admin server's bearer-token checks:
  ``outcome`` = cached | verified | rejected | throttled_client | throttled_busy, see
  :data:`haltgate.server.auth.Outcome`)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from .checks import DENY_CODES
from .errors import ConfigError
from .events import BreakerEvent, EventKind
from .manager import CircuitBreakerManager
from .store.registry import ProcessEntry, live_refusals

__all__ = ["HaltgateMetrics", "render_latest"]

_STATES = ("NORMAL", "TRIPPED", "MANUALLY_HALTED", "RESETTING")
_TOKEN_OUTCOMES = ("cached", "verified", "rejected", "throttled_client", "throttled_busy")


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(
            "metrics", "metrics need the 'metrics' extra: pip install 'haltgate[metrics]'"
        ) from None
    return prometheus_client


class _StateCollector:
    """Reads the manager's state at scrape time (never stale, no background thread)."""

    def __init__(
        self,
        manager: CircuitBreakerManager,
        processes: Callable[[], list[ProcessEntry]] | None = None,
    ) -> None:
        self._manager = manager
        self._processes = processes

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        allowed = GaugeMetricFamily(
            "haltgate_trading_allowed", "1 when nothing blocks trading (trips, halts, store)"
        )
        state = GaugeMetricFamily(
            "haltgate_breaker_state",
            "1 for the breaker's current state",
            labels=["breaker", "type", "state"],
        )
        tripped = GaugeMetricFamily(
            "haltgate_breaker_tripped",
            "1 while the breaker is tripped or halted",
            labels=["breaker"],
        )
        for row in self._manager.get_details():
            current = row["state"]
            for name in _STATES:
                state.add_metric([row["name"], row["type"], name], 1.0 if name == current else 0.0)
            is_tripped = current in ("TRIPPED", "MANUALLY_HALTED")
            tripped.add_metric([row["name"]], 1.0 if is_tripped else 0.0)
        allowed.add_metric([], 0.0 if self._manager.get_blocking_reasons() else 1.0)
        yield allowed
        yield state
        yield tripped
        yield from self._refusals()

    def _refusals(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        # The manager counts (one place); the scrape only reads. Every deny code is there
        # from the start, so rate() and alerts work before the first refusal.
        family = CounterMetricFamily(
            "haltgate_order_refusals",
            "Orders refused by the pre-trade checks, by deny code",
            labels=["code"],
        )
        if self._processes is None:
            counts = self._manager.get_refusal_counts()
        else:
            # A store that cannot be read raises (the server answers 503), never a false 0.
            entries = [entry for entry in self._processes() if entry.live]
            counts = live_refusals(entries)
            each = CounterMetricFamily(
                "haltgate_process_order_refusals",
                "Orders refused by one live process's pre-trade checks, by deny code",
                labels=["process", "pid", "host", "code"],
            )
            for entry in entries:
                for code, count in sorted(entry.refusals.items()):
                    each.add_metric([entry.origin, str(entry.pid), entry.host, code], float(count))
            yield each
        for code in (*DENY_CODES, *sorted(set(counts) - set(DENY_CODES))):
            family.add_metric([code], float(counts.get(code, 0)))
        yield family

    def describe(self) -> Iterator[Any]:
        return iter(())


class HaltgateMetrics:
    """haltgate's metrics on ``registry`` for ``manager``. ``processes`` (a service over the
    store, in its own process: ``haltgate serve``) reads the live-process registry, and the
    refusal counts are then the live trading processes' instead of ``manager``'s."""

    def __init__(
        self,
        manager: CircuitBreakerManager,
        registry: Any,
        *,
        processes: Callable[[], list[ProcessEntry]] | None = None,
    ) -> None:
        prom = _prometheus()
        self.manager = manager
        self.registry = registry
        self.trips = prom.Counter(
            "haltgate_breaker_trips",
            "Trips and manual halts per breaker",
            ["breaker", "kind"],
            registry=registry,
        )
        self.orders = prom.Counter(
            "haltgate_orders",
            "Orders admitted or refused by the gate",
            ["outcome"],
            registry=registry,
        )
        # Both label values exist from the start, so rate() works before the first refusal.
        self.orders.labels(outcome="admitted")
        self.orders.labels(outcome="refused")
        self.token_checks = prom.Counter(
            "haltgate_token_checks",
            "Bearer-token checks of the admin server, by outcome",
            ["outcome"],
            registry=registry,
        )
        for outcome in _TOKEN_OUTCOMES:
            self.token_checks.labels(outcome=outcome)
        registry.register(_StateCollector(manager, processes))
        manager.add_listener(self._on_event)
        self._instrumented = False

    def _on_event(self, event: BreakerEvent) -> None:
        if event.kind is EventKind.TRIPPED or event.kind is EventKind.HALTED:
            self.trips.labels(breaker=event.breaker_name, kind=str(event.kind)).inc()
        elif event.kind is EventKind.ORDER_REFUSED and event.breaker_name == "manager":
            self.orders.labels(outcome="refused").inc()

    def observe_token_check(self, outcome: str) -> None:
        """Count one bearer-token check of the admin server (``outcome``: one of
        ``cached``, ``verified``, ``rejected``, ``throttled_client``, ``throttled_busy``)."""
        self.token_checks.labels(outcome=outcome).inc()

    def observe_admitted(self, count: int = 1) -> None:
        """Count orders admitted by a gate other than ``manager.record_order``."""
        self.orders.labels(outcome="admitted").inc(count)

    def instrument_orders(self) -> None:
        """Count every order the manager admits (``record_order``, ``try_record_order`` and
        the engine's gate all go through ``admit_order``); refusals are counted from the
        manager's ``order_refused`` events."""
        if self._instrumented:
            return
        original: Callable[..., list[str]] = self.manager.admit_order
        admitted = self.orders.labels(outcome="admitted")

        @functools.wraps(original)
        def admit_order(*args: Any, **kwargs: Any) -> list[str]:
            reasons = original(*args, **kwargs)
            if not reasons:
                admitted.inc()
            return reasons

        # An instance attribute shadows the method for this manager only.
        setattr(self.manager, "admit_order", admit_order)  # noqa: B010
        self._instrumented = True


def render_latest(registry: Any) -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    prom = _prometheus()
    return prom.generate_latest(registry), prom.CONTENT_TYPE_LATEST
