"""The manager's check: may this process trade now? (the fast path and the full ask)."""

from __future__ import annotations

from typing import Any

from .state import NEVER
from .status import StatusReads

__all__ = ["TradingChecks"]


class TradingChecks(StatusReads):
    """``can_trade(**observations)`` from the breakers' contracts."""

    def can_trade(self, **observations: Any) -> bool:
        """Feed each breaker the observations its contract declares, then True only if no
        breaker is tripped, halted or full. Every breaker sees its observations even when
        another one already refuses. Without observations this is a pure state read
        (breakers whose ``can_trade`` is user code are still asked)."""
        if not observations and self._quiet:
            until = self._quiet_until
            if until is NEVER or self._monotonic() < until:
                return True
        return self._evaluate(observations)

    def _evaluate(self, observations: dict[str, Any]) -> bool:
        generation = self._generation
        others_generation = self._others_generation
        routed = self._router.route(observations) if observations else []
        ok = others_ok = True
        may_be_quiet = not self._asked
        if self._store_blocking() is not None:
            ok = others_ok = may_be_quiet = False
        judged: set[str] = set()
        for breaker, given in routed:
            if not given:
                continue
            contract = type(breaker).contract
            if not contract.requires <= given.keys():
                continue
            judged.add(breaker.name)
            if not breaker.can_trade(**given):
                ok = False
                if not contract.admits_orders:
                    others_ok = False
        for breaker in self._ordered:
            if breaker.name in judged:
                continue
            contract = type(breaker).contract
            if contract.asked and not contract.requires:
                allowed = breaker.can_trade()
            else:
                allowed = not breaker._blocks()
            if not allowed:
                ok = False
                if not contract.admits_orders:
                    others_ok = False
        if may_be_quiet and others_ok:
            until = NEVER
            for breaker in self._timed:
                deadline = breaker.next_deadline()
                if deadline is not None and deadline < until:
                    until = deadline
            with self._flag_lock:
                if self._others_generation == others_generation:
                    self._quiet_until = until
                    self._quiet_others = True
                    if ok and self._generation == generation:
                        self._quiet = True
        return ok

    def accepts_observation(self, name: str) -> bool:
        """True if some breaker declares the observation ``name`` (so
        ``can_trade(**{name: value})`` would not be refused as unknown)."""
        return self._router.accepts(name)
