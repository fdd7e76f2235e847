"""Configuration files: TOML (stdlib) or YAML (extra ``yaml``) → store, breakers, order
checks, manager.

Every problem raises :class:`~haltgate.ConfigError` whose ``path`` is the dotted path of the
bad field (``breakers[1].max_drawdown_pct``, ``checks[2].per_symbol.SPY``; list indexes
count from 0) and whose message shows the bad value. The whole file is checked when it is
loaded: every breaker and every check is built once, so a file that loads is a file whose
breakers and checks can be made.
"""

from __future__ import annotations

import hashlib
import inspect
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .breakers import (
    BaseCircuitBreaker,
    CircuitBreakerType,
    ConnectionCircuitBreaker,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
    PositionConcentrationCircuitBreaker,
    VolatilityCircuitBreaker,
)
from .breakers.parameters import parameter_names, parameters_of
from .calendars import TradingCalendar, calendar_from_spec
from .checks import CHECK_TYPES, OrderCheck
from .clock import Clock
from .errors import ConfigError, HaltgateError, InvalidInputError, StoreUnavailableError
from .keys import check_key_hash
from .manager import CircuitBreakerManager
from .redact import redact_url
from .store import Store, open_store
from .values import to_flag, to_seconds

__all__ = [
    "BREAKER_CLASSES",
    "ENGINE_ON_TRIP",
    "ROLES",
    "BreakerSpec",
    "CheckSpec",
    "HaltgateConfig",
    "KillSwitchConfig",
    "OperatorConfig",
    "ServerConfig",
    "breaker_settings",
    "check_settings",
    "find_operator",
    "load_config",
    "parse_config",
    "store_settings",
]

BREAKER_CLASSES: dict[str, type[BaseCircuitBreaker]] = {
    CircuitBreakerType.DRAWDOWN.value: DrawdownCircuitBreaker,
    CircuitBreakerType.DAILY_LOSS.value: DailyLossCircuitBreaker,
    CircuitBreakerType.ORDER_RATE.value: OrderRateCircuitBreaker,
    CircuitBreakerType.ERROR_RATE.value: ErrorRateCircuitBreaker,
    CircuitBreakerType.MANUAL.value: ManualCircuitBreaker,
    CircuitBreakerType.POSITION_CONCENTRATION.value: PositionConcentrationCircuitBreaker,
    CircuitBreakerType.VOLATILITY.value: VolatilityCircuitBreaker,
    CircuitBreakerType.CONNECTION.value: ConnectionCircuitBreaker,
}
"""Breaker types a config file can build (``custom`` breakers are made in Python)."""

ENGINE_ON_TRIP = ("pause", "cancel_all", "reduce_only", "stop")
"""Accepted values of ``engine.on_trip``."""

ROLES = ("viewer", "operator")
"""Operator roles: a viewer reads status; an operator also halts and resets."""

# Constructor parameters a file may not set: objects, not values.
_TOP_LEVEL = frozenset(
    {"store", "calendar", "breakers", "checks", "engine", "server", "operators", "kill_switch"}
)
_DEFAULT_STORE_URL = "sqlite:///haltgate.db"


def _bad(path: str, value: Any, problem: str) -> ConfigError:
    return ConfigError(path, f"{value!r}: {problem}")


def _table(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(path, value, "must be a table")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, value, "must be a non-empty string")
    return value.strip()


def _unknown_keys(table: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise _bad(
                where, table[key], f"unknown key (expected one of {', '.join(sorted(allowed))})"
            )


@dataclass(frozen=True)
class BreakerSpec:
    """One ``[[breakers]]`` entry: a type, a name and the constructor's keyword arguments."""

    index: int
    type: str
    name: str
    kwargs: Mapping[str, Any]

    @property
    def path(self) -> str:
        """The dotted path of this entry (``breakers[0]``)."""
        return f"breakers[{self.index}]"

    def build(self, clock: Clock | None = None) -> BaseCircuitBreaker:
        """A new breaker from this entry (errors name the field)."""
        cls = BREAKER_CLASSES[self.type]
        kwargs = dict(self.kwargs)
        if "calendar" in kwargs:
            try:
                kwargs["calendar"] = calendar_from_spec(kwargs["calendar"])
            except HaltgateError as exc:
                raise _bad(
                    f"{self.path}.calendar", self.kwargs["calendar"], _problem(exc)
                ) from None
        try:
            return cls(name=self.name, clock=clock, **kwargs)
        except InvalidInputError as exc:
            param = exc.parameter if exc.parameter in self.kwargs else None
            if param is None:
                raise ConfigError(self.path, _problem(exc)) from None
            raise _bad(f"{self.path}.{param}", self.kwargs[param], exc.problem) from None
        except (HaltgateError, TypeError, ValueError) as exc:
            raise ConfigError(self.path, _problem(exc)) from None


def _problem(exc: BaseException) -> str:
    return getattr(exc, "problem", None) or getattr(exc, "message", None) or str(exc)


@dataclass(frozen=True)
class CheckSpec:
    """One ``[[checks]]`` entry: a check type (its deny code, SPEC §10) and the
    constructor's keyword arguments. A check's name is its type, so each type is given at
    most once."""

    index: int
    type: str
    kwargs: Mapping[str, Any]

    @property
    def path(self) -> str:
        """The dotted path of this entry (``checks[0]``)."""
        return f"checks[{self.index}]"

    def build(self) -> OrderCheck:
        """A new check from this entry (errors name the field)."""
        try:
            return CHECK_TYPES[self.type](**self.kwargs)
        except InvalidInputError as exc:
            param = _dotted(exc.parameter)
            if param.split(".", 1)[0] not in self.kwargs:
                raise ConfigError(self.path, _problem(exc)) from None
            raise _bad(f"{self.path}.{param}", exc.value, exc.problem) from None
        except (HaltgateError, TypeError, ValueError) as exc:
            raise ConfigError(self.path, _problem(exc)) from None


def _dotted(parameter: str) -> str:
    """A check's parameter name as a config path: ``per_symbol[SPY].max_quantity`` (how
    the checks name a per-symbol limit) becomes ``per_symbol.SPY.max_quantity``."""
    return re.sub(r"\[([^\]]*)\]", r".\1", parameter)


@dataclass(frozen=True)
class OperatorConfig:
    """One ``[[operators]]`` entry: who they are, their token's hash, their role."""

    name: str
    token_hash: str
    role: str = "operator"


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: where ``haltgate serve`` listens."""

    bind: str = "127.0.0.1"
    port: int = 8787
    #: Reading status needs a token too; defaults to True for a non-loopback bind.
    read_requires_token: bool | None = None
    #: Extra names the server answers to (its ``Host`` header), besides the bind address,
    #: ``localhost``, ``127.0.0.1`` and ``[::1]``: anything else is refused (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()

    @property
    def loopback(self) -> bool:
        """True when :attr:`bind` only accepts local connections."""
        return is_loopback(self.bind)

    @property
    def reads_need_token(self) -> bool:
        """Whether GET requests need a token."""
        if self.read_requires_token is None:
            return not self.loopback
        return self.read_requires_token


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class KillSwitchConfig:
    """``[kill_switch]``: resetting these breakers needs the key whose hash is given."""

    key_hash: str | None = None
    breakers: tuple[str, ...] = ("manual",)

    def to_store_value(self) -> dict[str, Any]:
        """What is kept in the store so that ``--store`` alone still asks for the key."""
        return {"key_hash": self.key_hash, "breakers": list(self.breakers)}


@dataclass(frozen=True)
class HaltgateConfig:
    """A validated configuration file."""

    source: str | None
    digest: str
    store_url: str
    store_options: Mapping[str, Any]
    calendar: str | None
    breakers: tuple[BreakerSpec, ...]
    engine: Mapping[str, Any]
    server: ServerConfig
    operators: tuple[OperatorConfig, ...]
    kill_switch: KillSwitchConfig
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    checks: tuple[CheckSpec, ...] = ()

    def build_breakers(self, clock: Clock | None = None) -> list[BaseCircuitBreaker]:
        """New breakers, in file order."""
        return [spec.build(clock) for spec in self.breakers]

    def build_checks(self) -> list[OrderCheck]:
        """New pre-trade order checks, in file order (the order they are asked in)."""
        return [spec.build() for spec in self.checks]

    def build_calendar(self) -> TradingCalendar:
        """The file's default calendar (``utc`` when none is given)."""
        return calendar_from_spec(self.calendar)

    def open_store(self) -> Store:
        """The configured store."""
        try:
            return open_store(self.store_url, **self.store_options)
        except (ConfigError, StoreUnavailableError):
            # An unreachable store is not a mistake in the file: it keeps its own type (and
            # the CLI's exit code 1), never becomes a config error.
            raise
        except (HaltgateError, TypeError, ValueError, OSError) as exc:
            raise _bad("store.url", redact_url(self.store_url), redact_url(_problem(exc))) from None

    def build_manager(
        self,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        audit: bool = True,
        audit_only_if_changed: bool = False,
    ) -> CircuitBreakerManager:
        """A manager with the configured breakers and order checks on ``store`` (default:
        the configured one): the one place a config file becomes a manager. With ``audit``
        the load is recorded in the store's audit log (with ``audit_only_if_changed``, only
        when the file changed since the last record)."""
        if store is None:
            store = self.open_store()
        if audit:
            record_config_load(store, self, only_if_changed=audit_only_if_changed)
        manager = CircuitBreakerManager(
            breakers=self.build_breakers(clock), store=store, clock=clock
        )
        for check in self.build_checks():
            # An execution throttle registers its latched breaker here, restored from the
            # store (a trip survives the restart).
            manager.add_check(check)
        return manager

    def operator_for_token(self, token: str) -> OperatorConfig | None:
        """The operator whose token hash matches ``token``, or ``None`` (one scrypt per
        operator: the admin server checks tokens through its bounded
        :class:`~haltgate.server.auth.TokenAuthenticator` instead)."""
        return find_operator(self.operators, token)


def find_operator(
    operators: Iterable[OperatorConfig],
    token: str,
    verify: Callable[[str, str], bool] | None = None,
) -> OperatorConfig | None:
    """The first of ``operators`` whose token hash matches ``token``, or ``None``.

    ``verify(token, token_hash)`` defaults to :func:`haltgate.keys.verify_key`. Every hash
    is checked, so the time taken does not tell which operator matched."""
    from .keys import verify_key

    check = verify if verify is not None else verify_key
    found = None
    for operator in operators:
        if check(token, operator.token_hash) and found is None:
            found = operator
    return found


def record_config_load(
    store: Store, config: HaltgateConfig, *, only_if_changed: bool = False
) -> None:
    """Audit a config load and key the config's kill-switch breakers in the store (a
    breaker the store already keys keeps its stored hash: see authority.claim_keys).

    With ``only_if_changed`` (read-only commands) nothing is written when the file is the
    same as the last one audited in this store."""
    if only_if_changed and store.get_value("config_digest") == config.digest:
        return
    store.set_value("config_digest", config.digest)
    store.append_audit(
        "config_loaded",
        payload={
            "source": config.source,
            "sha256": config.digest,
            "breakers": [spec.name for spec in config.breakers],
            "operators": [op.name for op in config.operators],
            "kill_switch_keyed": config.kill_switch.key_hash is not None,
        },
    )
    if config.kill_switch.key_hash is not None:
        from .authority import claim_keys

        claim_keys(
            store,
            {name: config.kill_switch.key_hash for name in config.kill_switch.breakers},
            source=config.source or "config",
        )


# --------------------------------------------------------------------------- parsing
def _placeholder(value: Any) -> bool:
    """A value left as the starter file's or the docs' ``...`` placeholder."""
    return isinstance(value, str) and ("..." in value or "\u2026" in value)


def _refuse_placeholder(value: Any, path: str, what: str) -> None:
    if _placeholder(value):
        raise _bad(path, value, f"a placeholder: replace it with {what}")


def _store_class(url: str) -> type[Store]:
    """The class ``open_store`` makes for ``url`` (its signature says what a file may set)."""
    if url.startswith("sqlite://"):
        from .store.sqlite import SQLiteStore

        return SQLiteStore
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .store.redis import RedisStore

        return RedisStore
    from .store import MemoryStore

    return MemoryStore


def _store_namespace(value: Any, path: str) -> str:
    from .store.redis import check_namespace

    _refuse_placeholder(value, path, "the key prefix of this system")
    return check_namespace(value)


# How each store option a file may set is checked (a store's other constructor parameters,
# such as audit_key, are objects or secrets, which never belong in a file).
_STORE_OPTIONS: dict[str, Any] = {
    "store_timeout": to_seconds,
    "poll_interval": to_seconds,
    "fail_open": to_flag,
    "namespace": _store_namespace,
    # Redis only: set up a namespace that holds nothing yet (an explicit act, never the
    # default: a namespace without its marker has otherwise lost its data).
    "create": to_flag,
}


def _parse_store(raw: Any) -> tuple[str, dict[str, Any]]:
    if raw is None:
        return _DEFAULT_STORE_URL, {}
    table = _table(raw, "store")
    url_value = table.get("url", _DEFAULT_STORE_URL)
    _refuse_placeholder(url_value, "store.url", "sqlite:///FILE or redis://HOST:PORT/DB")
    url = _string(url_value, "store.url")
    if not url.startswith(("memory", "sqlite://", "redis://", "rediss://", "unix://")):
        raise _bad(
            "store.url",
            redact_url(url),
            "unsupported store URL (use sqlite:///FILE or redis://HOST:PORT/DB)",
        )
    cls = _store_class(url)
    settable = sorted(
        {"url"} | (set(inspect.signature(cls.__init__).parameters) & set(_STORE_OPTIONS))
    )
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key == "url":
            continue
        path = f"store.{key}"
        if key not in settable:
            raise _bad(
                path,
                value,
                f"not an option of {cls.__name__} for {redact_url(url)!r} "
                f"(expected one of {', '.join(settable)})",
            )
        try:
            options[key] = _STORE_OPTIONS[key](value, path)
        except InvalidInputError as exc:
            raise _bad(path, value, exc.problem) from None
    return url, options


def store_settings(config: HaltgateConfig) -> dict[str, Any]:
    """The options the configured store runs with: the file's, else the store's defaults."""
    parameters = inspect.signature(_store_class(config.store_url).__init__).parameters
    settings = {
        name: parameters[name].default for name in sorted(_STORE_OPTIONS) if name in parameters
    }
    settings.update(config.store_options)
    return settings


def _parse_breaker(index: int, raw: Any, default_calendar: str | None) -> BreakerSpec:
    path = f"breakers[{index}]"
    table = _table(raw, path)
    if "type" not in table:
        raise ConfigError(f"{path}.type", f"missing (one of {', '.join(BREAKER_CLASSES)})")
    kind = table["type"]
    if not isinstance(kind, str) or kind.strip().lower() not in BREAKER_CLASSES:
        raise _bad(
            f"{path}.type", kind, f"unknown breaker type (one of {', '.join(BREAKER_CLASSES)})"
        )
    kind = kind.strip().lower()
    name = _string(table.get("name", kind), f"{path}.name")
    params = set(parameter_names(BREAKER_CLASSES[kind]))
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("type", "name"):
            continue
        if key not in params:
            expected = ", ".join(sorted(params)) or "none"
            raise _bad(f"{path}.{key}", value, f"not a parameter of {kind} (expected: {expected})")
        if isinstance(value, bool):
            raise _bad(f"{path}.{key}", value, "must be a number or a string, not a boolean")
        kwargs[key] = value
    if "calendar" in params and "calendar" not in kwargs and default_calendar is not None:
        kwargs["calendar"] = default_calendar
    spec = BreakerSpec(index, kind, name, kwargs)
    spec.build()  # validates every parameter now, with the field's path
    return spec


# How a ``[[checks]]`` parameter must be written (the checks then validate the value
# itself): money, quantities and fractions are strings or integers, never a float, so no
# float ever touches them; counts are integers; durations are numbers; the restricted list
# is a list of strings; per-symbol limits are a table.
_CHECK_COUNTS = frozenset({"max_open", "max_messages", "max_orders"})
_CHECK_SECONDS = frozenset({"window_seconds", "max_price_age_seconds"})


def _check_number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _bad(path, value, 'must be a string (money as strings: "0.05") or an integer')


def _check_value(key: str, value: Any, path: str, kind: str) -> None:
    """Refuse a ``[[checks]]`` value of the wrong type for ``key`` (naming ``path``)."""
    if key in _CHECK_COUNTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, value, "must be a whole number (an integer)")
    elif key in _CHECK_SECONDS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad(path, value, "must be a number of seconds")
    elif key == "symbols":
        if not isinstance(value, list):
            raise _bad(path, value, "must be a list of symbols")
        for i, symbol in enumerate(value):
            if not isinstance(symbol, str):
                raise _bad(f"{path}[{i}]", symbol, "must be a symbol (a string)")
    elif key == "per_symbol":
        table = _table(value, path)
        for symbol, limit in table.items():
            where = f"{path}.{symbol}"
            if kind == "max_position":
                limits = _table(limit, where)
                _unknown_keys(limits, frozenset({"max_quantity", "max_notional"}), where)
                for name, number in limits.items():
                    _check_number(number, f"{where}.{name}")
            else:
                _check_number(limit, where)
    else:
        _check_number(value, path)


def _parse_check(index: int, raw: Any) -> CheckSpec:
    path = f"checks[{index}]"
    table = _table(raw, path)
    if "type" not in table:
        raise ConfigError(f"{path}.type", f"missing (one of {', '.join(CHECK_TYPES)})")
    kind = table["type"]
    if not isinstance(kind, str) or kind.strip().lower() not in CHECK_TYPES:
        raise _bad(f"{path}.type", kind, f"unknown check type (one of {', '.join(CHECK_TYPES)})")
    kind = kind.strip().lower()
    params = set(parameter_names(CHECK_TYPES[kind]))
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key == "type":
            continue
        if key not in params:
            expected = ", ".join(sorted(params)) or "none"
            raise _bad(f"{path}.{key}", value, f"not a parameter of {kind} (expected: {expected})")
        _check_value(key, value, f"{path}.{key}", kind)
        kwargs[key] = value
    spec = CheckSpec(index, kind, kwargs)
    spec.build()  # validates every parameter now, with the field's path
    return spec


def _parse_checks(raw: Any, breakers: Iterable[BreakerSpec]) -> tuple[CheckSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("checks", raw, "must be a list of [[checks]] tables")
    breaker_names = {spec.name for spec in breakers}
    specs: list[CheckSpec] = []
    for index, entry in enumerate(raw):
        spec = _parse_check(index, entry)
        if any(other.type == spec.type for other in specs):
            raise _bad(f"checks[{index}].type", spec.type, "this check is already configured")
        companion = spec.build().companion_breaker()
        if companion is not None and companion.name in breaker_names:
            raise _bad(
                f"checks[{index}].type",
                spec.type,
                f"registers the breaker {companion.name!r}, and [[breakers]] has one of that name",
            )
        specs.append(spec)
    return tuple(specs)


def check_settings(check: OrderCheck) -> dict[str, Any]:
    """What ``check`` runs with, in the spelling of a ``[[checks]]`` entry: each parameter
    read back from the check (``describe()``), unset (``None``) and empty ones left out,
    numbers as the check holds them."""
    return {
        key: value
        for key, value in check.describe().items()
        if key not in ("name", "type") and value is not None and value != {} and value != []
    }


def breaker_settings(breaker: BaseCircuitBreaker) -> dict[str, Any]:
    """What ``breaker`` runs with, in the spelling of a ``[[breakers]]`` entry: each
    parameter a file may set for its class, read back from the breaker itself, so what is
    shown is what is in effect, whether it came from a file or from code (the one rule is
    :func:`haltgate.breakers.parameters.parameters_of`; unset options are left out, a
    calendar is given by its config spelling, a ``Decimal`` as its exact text)."""
    return parameters_of(breaker)


def _parse_engine(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"on_trip": "pause"}
    table = _table(raw, "engine")
    _unknown_keys(table, frozenset({"on_trip"}), "engine")
    on_trip = table.get("on_trip", "pause")
    if on_trip not in ENGINE_ON_TRIP:
        raise _bad("engine.on_trip", on_trip, f"must be one of {', '.join(ENGINE_ON_TRIP)}")
    return {"on_trip": on_trip}


def _parse_server(raw: Any) -> ServerConfig:
    if raw is None:
        return ServerConfig()
    table = _table(raw, "server")
    _unknown_keys(
        table, frozenset({"bind", "port", "read_requires_token", "allowed_hosts"}), "server"
    )
    bind = _string(table.get("bind", "127.0.0.1"), "server.bind")
    port = table.get("port", 8787)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise _bad("server.port", port, "must be a port number 1-65535")
    reads = table.get("read_requires_token")
    if reads is not None and not isinstance(reads, bool):
        raise _bad("server.read_requires_token", reads, "must be true or false")
    return ServerConfig(
        bind=bind,
        port=port,
        read_requires_token=reads,
        allowed_hosts=_parse_allowed_hosts(table.get("allowed_hosts", [])),
    )


# A DNS name (labels of letters, digits and inner hyphens), an IPv4 address, or an IPv6
# address in brackets, as a Host header carries them; never a port or a wildcard.
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _parse_allowed_hosts(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise _bad("server.allowed_hosts", raw, "must be a list of host names")
    names = []
    for index, value in enumerate(raw):
        path = f"server.allowed_hosts[{index}]"
        name = _string(value, path).lower()
        bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            if not _HOST_NAME.fullmatch(name):
                raise _bad(
                    path, value, "must be a host name or an IP address, without port or wildcard"
                ) from None
        # Kept bare (no brackets): the server compares the Host header's host without them.
        names.append(bare)
    return tuple(names)


def _check_hash(value: Any, path: str) -> str:
    _refuse_placeholder(value, path, "the output of `haltgate hash-key`")
    text = _string(value, path)
    try:
        return check_key_hash(text, path)
    except InvalidInputError as exc:
        raise ConfigError(path, f"{exc.value}: {exc.problem}") from None


def _parse_operators(raw: Any) -> tuple[OperatorConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("operators", raw, "must be a list of [[operators]] tables")
    seen: set[str] = set()
    result = []
    for index, entry in enumerate(raw):
        path = f"operators[{index}]"
        table = _table(entry, path)
        _unknown_keys(table, frozenset({"name", "token_hash", "role"}), path)
        name = _string(table.get("name"), f"{path}.name")
        if name in seen:
            raise _bad(f"{path}.name", name, "duplicate operator name")
        seen.add(name)
        token_hash = _check_hash(table.get("token_hash"), f"{path}.token_hash")
        role = table.get("role", "operator")
        if role not in ROLES:
            raise _bad(f"{path}.role", role, f"must be one of {', '.join(ROLES)}")
        result.append(OperatorConfig(name, token_hash, role))
    return tuple(result)


def _parse_kill_switch(raw: Any) -> KillSwitchConfig:
    if raw is None:
        return KillSwitchConfig()
    table = _table(raw, "kill_switch")
    _unknown_keys(table, frozenset({"key_hash", "breakers"}), "kill_switch")
    key_hash = None
    if "key_hash" in table:
        key_hash = _check_hash(table["key_hash"], "kill_switch.key_hash")
    names = table.get("breakers", ["manual"])
    if not isinstance(names, list) or not names:
        raise _bad("kill_switch.breakers", names, "must be a non-empty list of breaker names")
    checked = tuple(_string(n, f"kill_switch.breakers[{i}]") for i, n in enumerate(names))
    return KillSwitchConfig(key_hash, checked)


def parse_config(data: Any, *, source: str | None = None, digest: str = "") -> HaltgateConfig:
    """Validate an already-parsed config document (a dict, as TOML or YAML gives it)."""
    if data is None:
        data = {}
    root = _table(data, "")
    _unknown_keys(root, _TOP_LEVEL, "")
    store_url, store_options = _parse_store(root.get("store"))
    calendar = root.get("calendar")
    if calendar is not None:
        try:
            calendar_from_spec(calendar)
        except HaltgateError as exc:
            raise _bad("calendar", calendar, _problem(exc)) from None
    raw_breakers = root.get("breakers", [])
    if not isinstance(raw_breakers, list):
        raise _bad("breakers", raw_breakers, "must be a list of [[breakers]] tables")
    specs: list[BreakerSpec] = []
    names: set[str] = set()
    for index, entry in enumerate(raw_breakers):
        spec = _parse_breaker(index, entry, calendar)
        if spec.name in names:
            raise _bad(f"breakers[{index}].name", spec.name, "duplicate breaker name")
        names.add(spec.name)
        specs.append(spec)
    checks = _parse_checks(root.get("checks"), specs)
    operators = _parse_operators(root.get("operators"))
    server = _parse_server(root.get("server"))
    if not server.loopback and not operators:
        raise _bad(
            "server.bind",
            server.bind,
            "a non-loopback bind needs at least one [[operators]] entry with a token_hash",
        )
    return HaltgateConfig(
        source=source,
        digest=digest,
        store_url=store_url,
        store_options=store_options,
        calendar=calendar,
        breakers=tuple(specs),
        engine=_parse_engine(root.get("engine")),
        server=server,
        operators=operators,
        kill_switch=_parse_kill_switch(root.get("kill_switch")),
        raw=root,
        checks=checks,
    )


def load_config(path: str | Path) -> HaltgateConfig:
    """Read and validate a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file."""
    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    digest = hashlib.sha256(content).hexdigest()
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                "", "YAML config files need the 'yaml' extra: pip install 'haltgate[yaml]'"
            ) from None
        try:
            data = yaml.safe_load(content.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError("", f"{file}: invalid YAML: {exc}") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(content.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("", f"{file}: invalid TOML: {exc}") from None
    config = parse_config(data, source=str(file), digest=digest)
    return _anchor_store(config, file)


def _anchor_store(config: HaltgateConfig, file: Path) -> HaltgateConfig:
    """A relative SQLite path in a config file is relative to the file, not to wherever the
    command runs: an operator in another directory must reach the same store."""
    from dataclasses import replace

    prefix = "sqlite:///"
    url = config.store_url
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return config
    path, _, query = url[len(prefix) :].partition("?")
    anchored = (file.resolve().parent / path).as_posix()
    return replace(config, store_url=prefix + anchored + (f"?{query}" if query else ""))


STARTER_CONFIG = """\
# haltgate configuration (TOML). Check it with:  haltgate --config {name} check-config
# Money and fractions are strings so that no float ever touches them.

# Default trading-session calendar for daily-loss breakers:
# "utc" (midnight UTC, crypto), an exchange code such as "XNYS" (extra 'calendars'),
# or a daily roll such as "roll:17:00@America/New_York" (FX).
# It stays above the first [table]: below a table header TOML reads it as part of it.
calendar = "utc"

[store]
# Where breaker state and the audit log live. Every trading process and every operator
# command must point at the same store. sqlite:///FILE or redis://HOST:6379/0
# (a new Redis namespace is set up once, by: haltgate store init URL --operator NAME)
url = "sqlite:///haltgate.db"

# The guide's recommended minimum setup.
[[breakers]]
type = "drawdown"              # latches until an operator resets it
max_drawdown_pct = "0.10"      # trips when the drawdown from the peak is above 10 %
lookback_days = 30

[[breakers]]
type = "daily_loss"            # clears by itself at the next session
max_daily_loss = "5000"        # or: max_daily_loss_pct = "0.02"

[[breakers]]
type = "order_rate"            # refuses orders beyond the limit; clears as orders age out
max_orders_per_minute = 10
window_seconds = 60

[[breakers]]
type = "manual"                # the kill switch: `haltgate halt` halts it
name = "manual"

# Pre-trade order checks: each order is judged before the broker sees it. The type is the
# deny code a refused order carries. Set the limits to your own account and symbols.
# An order that only reduces a position is never refused by the size, value, collar,
# position, exposure or open-order checks, so a position can always be closed.
[[checks]]
type = "max_order_quantity"    # fat-finger size limit per order
max_quantity = "10000"
per_symbol = {{ "BRK.A" = "5" }}   # a symbol's own limit

[[checks]]
type = "max_order_notional"    # fat-finger value limit: quantity x (limit, else last) price
max_notional = "1000000"

[[checks]]
type = "price_collar"          # a limit more than 5 % through the last price is refused
max_deviation = "0.05"
max_price_age_seconds = 5      # and any order when the last price is older (or missing):
                               # keep it above your bar interval if prices come from bars

[[checks]]
type = "max_position"          # the position after the order and the working orders
max_quantity = "50000"

[[checks]]
type = "max_open_orders"       # working orders at once
max_open = 100

[[checks]]
type = "duplicate_order"       # same symbol, side, quantity and price again within 1 s
window_seconds = 1

[[checks]]
type = "message_throttle"      # submits + modifies + cancels per window
max_messages = 100
window_seconds = 1

[[checks]]
type = "execution_throttle"    # more than 50 orders for one symbol and side in 60 s trips
max_orders = 50                # the latched breaker "execution_throttle": an operator
window_seconds = 60            # must reset it (haltgate reset execution_throttle ...)

# [[checks]]
# type = "max_gross_exposure"  # gross exposure + this order's value
# max_exposure = "2000000"
# max_fraction_of_equity = "2" # and/or at most 2 x equity (the lower applies)

# [[checks]]
# type = "restricted_symbol"   # never trade these
# symbols = ["XYZ"]

[engine]
on_trip = "pause"              # pause | cancel_all | reduce_only | stop

[server]
bind = "127.0.0.1"             # a non-loopback bind is refused unless operators are set
port = 8787

# Operators of `haltgate serve`. Only the hash of each token is stored here. Make one with:
#   python -c "import haltgate; t = haltgate.new_token(); print(t); print(haltgate.hash_key(t))"
# Give the token to the operator; paste the hash below.
# [[operators]]
# name = "alice"
# role = "operator"            # operator (halt and reset) | viewer (read only)
# token_hash = "scrypt$16384$8$1$..."

# Require a key to reset the kill switch (haltgate reset manual --key ...):
# [kill_switch]
# key_hash = "scrypt$16384$8$1$..."
# breakers = ["manual"]
"""


def starter_config(name: str = "haltgate.toml") -> str:
    """The commented starter file written by ``haltgate init``."""
    return STARTER_CONFIG.format(name=name)
