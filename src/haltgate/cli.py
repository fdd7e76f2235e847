"""The ``haltgate`` command line: see and act on the breakers without writing Python.

Exit codes: 0 ok, 1 refused or failed check (a reset refused, a tampered audit log, a halt
the store did not record), 2 usage or configuration error. Errors print one line, never a
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from .errors import (
    AuditModeError,
    AuthorizationError,
    ConfigError,
    HaltgateError,
    InvalidInputError,
    StoreUnavailableError,
)
from .exits import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError
from .redact import redact_url

__all__ = ["CommandError", "main"]


# --------------------------------------------------------------------------- context
class Context:
    """What a command runs against: the parsed options, the config, the store."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._config: Any = None
        self._config_loaded = False

    @property
    def config(self) -> Any:
        """The loaded config (``None`` when no ``--config`` was given)."""
        if not self._config_loaded:
            from .config import load_config

            path = self.args.config or os.environ.get("HALTGATE_CONFIG")
            self._config = load_config(path) if path else None
            self._config_loaded = True
        return self._config

    def store_url(self) -> str:
        """``--store``, else the config's store, else ``$HALTGATE_STORE``."""
        url = self.args.store or (self.config.store_url if self.config is not None else None)
        url = url or os.environ.get("HALTGATE_STORE")
        if not url:
            raise CommandError(
                "no store: give --store URL (e.g. sqlite:///haltgate.db) or --config FILE",
                EXIT_USAGE,
            )
        return str(url)

    def open_store(self, *, must_exist: bool) -> Any:
        """Open the store; with ``must_exist`` an SQLite file that is not there is an error
        (a fresh empty store would wrongly say trading is allowed)."""
        from .store import open_store

        url = self.store_url()
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///") :].split("?", 1)[0])
            if not path.exists():
                if must_exist:
                    raise CommandError(
                        f"no store at {str(path.resolve())!r}: is this the store your trading "
                        "processes use?",
                        EXIT_USAGE,
                    )
                print(
                    f"haltgate: warning: creating a new store at {str(path.resolve())!r}; "
                    "make sure your trading processes use this file",
                    file=sys.stderr,
                )
        if self.config is not None and not self.args.store:
            return self.config.open_store()
        return open_store(url)

    def manager(self, *, mutating: bool) -> Any:
        """An operator's manager over the store (see :mod:`haltgate.operator`)."""
        from .operator import operator_manager

        store = self.open_store(must_exist=not mutating)
        try:
            if mutating:
                # A writer of the wrong audit mode would break the chain: refuse up front.
                store.check_audit_writer()
            return operator_manager(
                store,
                self.config,
                # A store that lost its data takes no write (the config load's entry).
                audit_config=store.lost_data_reason() is None,
                audit_only_if_changed=not mutating,
            )
        except BaseException:
            store.close()
            raise


# --------------------------------------------------------------------------- output
def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-" if value is None else str(value)


def _table(rows: list[list[str]], out: IO[str]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        out.write("  ".join(cells).rstrip() + "\n")


# --------------------------------------------------------------------------- commands
def cmd_status(ctx: Context) -> int:
    """Print every breaker's state and whether trading is allowed."""
    from .store import redact_url

    manager = ctx.manager(mutating=False)
    try:
        from .operator import held_by_live_processes, status_rows
        from .store.registry import live_breakers, live_refusals, read_registry

        rows = status_rows(manager)
        # Blocking reasons include an unreachable store (fail-closed), not only trips.
        blocking = manager.get_blocking_reasons()
        recorded = set(manager.store.load_all_snapshots())
        processes = read_registry(manager.store)
        # A live process that still refuses trading on a breaker the record has NORMAL.
        for name, entry, reported in held_by_live_processes(rows, processes):
            blocking.append(
                f"{name}: {reported.get('state')} in pid {entry.pid} on {entry.host} "
                f"({reported.get('reason') or 'no reason given'}); the store's record is "
                f"NORMAL: `haltgate reset {name}` clears it"
            )
        allowed = not blocking
        # A store that lost its data is a failed check, not a state to read (exit 1).
        lost = manager.store.lost_data_reason() if manager.store is not None else None
        code = EXIT_OK if lost is None else EXIT_REFUSED
        if ctx.args.json:
            payload = {
                "trading_allowed": allowed,
                "store": redact_url(ctx.store_url()),
                "store_lost_data": lost is not None,
                "blocking": blocking,
                "breakers": [
                    {
                        **row,
                        "since": row["since"].isoformat() if row["since"] else None,
                        # False: known only because a live process has it (no record yet).
                        "stored": row["name"] in recorded,
                    }
                    for row in rows
                ],
                "processes": [entry.to_dict() for entry in processes],
                # Orders refused by the pre-trade checks, by deny code, summed over the live
                # processes (each counts since it started; one that exits takes its away).
                "refusals": live_refusals(processes),
            }
            print(json.dumps(payload, indent=2))
            return code
        out = sys.stdout
        if allowed:
            out.write("TRADING ALLOWED - no breaker is tripped or halted\n")
        else:
            out.write(f"TRADING HALTED - {len(blocking)} reason(s):\n")
            for line in blocking:
                out.write(f"  * {line}\n")
        out.write("\n")
        if not rows:
            out.write(
                f"No breakers are known in {redact_url(ctx.store_url())}: is this the store "
                "your trading processes use?\n"
            )
        else:
            known_live = live_breakers(processes)
            table = [["BREAKER", "TYPE", "STATE", "SINCE", "BY", "REASON"]]
            for row in rows:
                reason = row["reason"] or "-"
                if row["name"] in known_live and row["name"] not in recorded:
                    reason = "(no stored record yet; a live process has it)"
                table.append(
                    [
                        row["name"],
                        row["type"],
                        row["state"],
                        _when(row["since"]),
                        row["operator"] or "-",
                        reason,
                    ]
                )
            _table(table, out)
        out.write("\n")
        _write_processes(processes, out)
        _write_refusals(live_refusals(processes), out)
        return code
    finally:
        manager.close()


def _stamp(seconds: float | None) -> str:
    from datetime import UTC

    return "-" if seconds is None else _when(datetime.fromtimestamp(seconds, UTC))


def _spelled_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} {count}" for code, count in sorted(counts.items()))


def _write_refusals(total: dict[str, int], out: IO[str]) -> None:
    """The pre-trade checks' refusals by deny code, summed over the live processes."""
    if total:
        out.write(
            f"\nREFUSED ORDERS (live processes, since each started) - {_spelled_counts(total)}\n"
        )
    else:
        out.write("\nREFUSED ORDERS - none by the live processes' pre-trade checks\n")


def _write_processes(processes: list[Any], out: IO[str]) -> None:
    """The live-process registry: each process, whether it is live, its breakers."""
    live = sum(1 for entry in processes if entry.live)
    if not processes:
        out.write(
            "PROCESSES - none registered: no trading process with breakers or checks uses this "
            "store now (a process registers while it runs)\n"
        )
        return
    out.write(
        f"PROCESSES - {live} live, {len(processes) - live} not live (live: its last heartbeat "
        "is within its TTL; not live: killed, hung or cut off from the store)\n"
    )
    for entry in processes:
        ttl = "-" if entry.ttl is None else f"{entry.ttl:g}s"
        out.write(
            f"  pid {entry.pid} on {entry.host}: {'live' if entry.live else 'NOT LIVE'}, "
            f"last seen {_stamp(entry.last_seen)} ({entry.age:.1f}s ago; TTL {ttl}), "
            f"started {_stamp(entry.started)}\n"
        )
        if entry.refusals:
            out.write(f"    refused orders: {_spelled_counts(entry.refusals)}\n")
        table = []
        for breaker in entry.breakers:
            parameters = breaker.get("parameters")
            spelled = (
                " ".join(f"{k}={v}" for k, v in sorted(parameters.items()))
                if isinstance(parameters, dict)
                else ""
            )
            table.append(
                [
                    f"    {breaker.get('name')}",
                    str(breaker.get("type")),
                    str(breaker.get("state")),
                    spelled or "-",
                ]
            )
        if table:
            _table(table, out)


def _holders(store: Any, name: str) -> list[Any]:
    """The registered processes that have a breaker called ``name``."""
    from .store.registry import read_registry

    return [entry for entry in read_registry(store) if name in entry.breaker_names()]


def _print_holders(store: Any, name: str) -> None:
    live = [entry for entry in _holders(store, name) if entry.live]
    if live:
        where = ", ".join(f"pid {entry.pid} on {entry.host}" for entry in live)
        print(f"live processes with {name!r}: {where} (each adopts the change from the store)")


def _verify_durable(manager: Any, name: str, state: str) -> None:
    snapshot = manager.store.load_snapshot(name)
    if snapshot is None or snapshot.get("state") != state:
        lost = manager.store.lost_data_reason()
        raise CommandError(
            f"the store did not confirm {name!r} as {state}: do not assume the change is in "
            "effect for other processes; check with `haltgate status` and try again"
            + (f" ({lost})" if lost else "")
        )


def cmd_halt(ctx: Context) -> int:
    """Halt one breaker, or everything (the kill switch)."""
    manager = ctx.manager(mutating=True)
    try:
        args = ctx.args
        if args.name is None:
            breaker = manager.halt_all(reason=args.reason, operator=args.operator)
        else:
            breaker = manager.get_breaker(args.name)
            if breaker is None:
                raise _unknown_breaker(manager, args.name)
            breaker.trigger_halt(reason=args.reason, operator=args.operator)
        _verify_durable(manager, breaker.name, "MANUALLY_HALTED")
        what = "ALL TRADING" if args.name is None else f"breaker {breaker.name!r}"
        print(f"HALTED {what} (breaker {breaker.name!r}) by {args.operator}: {args.reason}")
        print(f"store: {_describe(manager.store, ctx.store_url())}")
        if args.name is not None:
            _print_holders(manager.store, breaker.name)
        return EXIT_OK
    finally:
        manager.close()


def _describe(store: Any, url: str) -> str:
    from .store import redact_url

    describe = getattr(store, "describe", None)
    return redact_url(str(describe()) if callable(describe) else url)


def _unknown_breaker(manager: Any, name: str) -> CommandError:
    known = ", ".join(b.name for b in manager.get_all_breakers()) or "none"
    message = f"no breaker named {name!r} (known: {known})"
    # A process that had it but is no longer live (killed, hung, cut off) is worth naming.
    gone = _holders(manager.store, name)
    if gone:
        message += "; " + ", ".join(
            f"pid {entry.pid} on {entry.host} had one but is NOT LIVE (last seen "
            f"{entry.age:.0f}s ago)"
            for entry in gone
        )
    return CommandError(message, EXIT_USAGE)


def cmd_reset(ctx: Context) -> int:
    """Reset one breaker (a keyed kill switch needs --key)."""
    from .operator import check_kill_switch_key, order_reset

    manager = ctx.manager(mutating=True)
    try:
        args = ctx.args
        breaker = manager.get_breaker(args.name)
        if breaker is None:
            raise _unknown_breaker(manager, args.name)
        before = breaker.state.value
        held = []
        if before == "NORMAL":
            from .operator import held_by_live_processes, status_rows
            from .store.registry import read_registry

            rows = [row for row in status_rows(manager) if row["name"] == args.name]
            held = held_by_live_processes(rows, read_registry(manager.store))
            if not held:
                print(f"breaker {args.name!r} is already NORMAL; nothing to reset")
                return EXIT_OK
        check_kill_switch_key(
            manager.store, args.name, _kill_switch_key(args.key), args.operator, ctx.config
        )
        if held:
            # The record is NORMAL but a live process still holds a trip: an explicit
            # reset order, which every process adopts.
            order_reset(breaker, operator=args.operator, reason=args.reason)
            before = "/".join(sorted({str(reported.get("state")) for _, _, reported in held}))
        else:
            breaker.reset(operator=args.operator, reason=args.reason)
        _verify_durable(manager, args.name, "NORMAL")
        print(f"RESET {args.name!r} ({before} -> NORMAL) by {args.operator}")
        _print_holders(manager.store, args.name)
        still = manager.get_blocking_reasons()
        if still:
            print("TRADING STILL HALTED by: " + "; ".join(still))
        else:
            print("TRADING ALLOWED - no breaker is tripped or halted")
        return EXIT_OK
    finally:
        manager.close()


KEY_ENV = "HALTGATE_KILL_SWITCH_KEY"


def _kill_switch_key(given: str | None) -> str | None:
    """The kill-switch key: ``--key -`` reads it from stdin, otherwise the environment
    variable HALTGATE_KILL_SWITCH_KEY, otherwise a prompt when stdin is a terminal.
    ``--key VALUE`` still works but shows the key in ``ps`` and the shell history."""
    if given == "-":
        line = sys.stdin.readline()
        return line.rstrip("\r\n") or None
    if given is not None:
        print(
            f"warning: --key VALUE is visible to other users (ps) and in shell history; "
            f"use --key - (stdin), {KEY_ENV} or the prompt",
            file=sys.stderr,
        )
        return given
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass("kill-switch key: ") or None
    return None


def _audit_columns(seq: str, time: str, event: str, breaker: str, operator: str, extra: str) -> str:
    # One layout for the header and the entries, so the columns line up.
    return f"{seq:>6}  {time:<32}  {event:<28} {breaker:<14} {operator:<10} {extra}".rstrip()


AUDIT_HEADER = _audit_columns("SEQ", "TIME (UTC)", "EVENT", "BREAKER", "OPERATOR", "REASON/DETAILS")


def _entry_line(entry: Any) -> str:
    payload = json.loads(entry.payload)
    reason = payload.get("reason") if isinstance(payload, dict) else None
    extra = reason if reason else entry.payload
    if len(extra) > 120:
        extra = extra[:117] + "..."
    return _audit_columns(
        str(entry.seq), entry.time, entry.event, entry.breaker or "-", entry.operator or "-", extra
    )


def cmd_audit(ctx: Context) -> int:
    """Tail, verify or export the audit log."""
    store = ctx.open_store(must_exist=True)
    try:
        if ctx.config is not None and store.lost_data_reason() is None:
            from .config import record_config_load

            record_config_load(store, ctx.config, only_if_changed=True)
        action = ctx.args.audit_action
        if action == "tail":
            entries = store.tail_audit(ctx.args.n)
            if ctx.args.json:
                for entry in entries:
                    print(json.dumps(entry.to_dict()))
            else:
                if not entries:
                    print("the audit log is empty")
                else:
                    print(AUDIT_HEADER)
                for entry in entries:
                    print(_entry_line(entry))
            return EXIT_OK
        if action == "head":
            head = store.load_audit_head()
            if head is None or head[0] == 0:
                raise CommandError("the audit log has no head yet (no entry written)", EXIT_REFUSED)
            print(f"{head[0]}:{head[1]}")
            return EXIT_OK
        if action == "verify":
            result = store.verify_audit(expect_head=_expected_head(ctx.args.expect_head))
            if result.ok:
                print(f"audit log OK: {result.checked} entries verified ({result.method})")
                for note in result.notes:
                    print(f"  note: {note}")
                return EXIT_OK
            if result.records:
                print(
                    f"AUDIT CHECK FAILED: {len(result.records)} breaker record(s) disagree "
                    f"with the audit log (its {result.checked} entries verified; "
                    f"{result.method}):"
                )
                for line in result.records:
                    print(f"  * {line}")
                return EXIT_REFUSED
            if result.first_bad_seq is None:
                print(f"AUDIT LOG NOT VERIFIED: {result.problem}")
                return EXIT_REFUSED
            print(
                f"AUDIT LOG FAILED VERIFICATION at entry {result.first_bad_seq}: "
                f"{result.problem} ({result.checked} entries before it are intact; "
                f"{result.method})"
            )
            return EXIT_REFUSED
        if not ctx.args.jsonl:
            raise CommandError("audit export needs --jsonl (the only format)", EXIT_USAGE)
        target = ctx.args.file
        if target in (None, "-"):
            store.export_audit_jsonl(sys.stdout)
        else:
            with open(target, "w", encoding="utf-8") as out:
                count = store.export_audit_jsonl(out)
            print(f"exported {count} audit entries to {target}", file=sys.stderr)
        return EXIT_OK
    finally:
        store.close()


def cmd_store(ctx: Context) -> int:
    """``store init``: set the store up (again): a new epoch marker, audited."""
    if ctx.args.url:
        ctx.args.store = ctx.args.url
    store = ctx.open_store(must_exist=False)
    try:
        initialise = getattr(store, "initialise", None)
        if initialise is None:
            raise CommandError(f"{type(store).__name__} keeps no epoch marker", EXIT_USAGE)
        store.check_audit_writer()
        lost = store.lost_data_reason()
        marker, written = initialise(ctx.args.operator, new_epoch_anyway=ctx.args.new_epoch)
        where = _describe(store, ctx.store_url())
        if not written:
            print(
                f"{where} is already initialised (epoch {marker['id']}, {marker.get('how')} "
                f"at {marker.get('created')}); nothing changed. If trading processes report "
                "'store lost its data', run again with --new-epoch."
            )
            return EXIT_OK
        if lost is not None:
            print(f"the store had lost its data: {lost}")
        previous = marker.get("previous") or "none"
        print(
            f"INITIALISED {where}: new epoch {marker['id']} (was {previous}) "
            f"by {ctx.args.operator}; trading processes adopt it at their next poll and write "
            "back the trips and halts they hold"
        )
        return EXIT_OK
    finally:
        store.close()


def _expected_head(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq_text, sep, digest = text.partition(":")
    if not sep or not seq_text.isdigit() or not digest:
        raise CommandError(f"--expect-head must be SEQ:HASH (got {text!r})", EXIT_USAGE)
    return int(seq_text), digest


def cmd_check_config(ctx: Context) -> int:
    """Validate the config file (it is fully checked when loaded)."""
    if ctx.args.file is not None:
        given = getattr(ctx.args, "config", None)
        if given and Path(given) != Path(ctx.args.file):
            raise CommandError(
                f"check-config was given two files: --config {given!r} and {ctx.args.file!r}",
                EXIT_USAGE,
            )
        ctx.args.config = ctx.args.file
    if ctx.config is None:
        raise CommandError(
            "check-config needs a file: check-config FILE or --config FILE", EXIT_USAGE
        )
    from .config import check_settings, store_settings
    from .store import redact_url

    config = ctx.config
    names = ", ".join(f"{s.name} ({s.type})" for s in config.breakers) or "none"
    settings = ", ".join(
        f"{key}={json.dumps(value)}" for key, value in store_settings(config).items()
    )
    print(f"config OK: {config.source}")
    print(f"  store:     {redact_url(config.store_url)}" + (f" ({settings})" if settings else ""))
    print(f"  breakers:  {names}")
    checks = [spec.build() for spec in config.checks]
    print(f"  checks:    {len(checks) or 'none'}")
    for check in checks:
        settings = " ".join(f"{k}={_setting(v)}" for k, v in check_settings(check).items())
        print(f"    {check.name}: {settings}")
    print(f"  operators: {len(config.operators)}")
    print(f"  server:    {config.server.bind}:{config.server.port}")
    return EXIT_OK


def _setting(value: Any) -> str:
    """A check's setting as a config file spells it (Decimals as their digits)."""
    if isinstance(value, Decimal):
        return json.dumps(str(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return json.dumps(value)


def cmd_init(ctx: Context) -> int:
    """Write a commented starter config."""
    from .config import starter_config

    path = Path(ctx.args.path)
    if path.exists() and not ctx.args.force:
        raise CommandError(f"{str(path)!r} exists; use --force to overwrite it", EXIT_USAGE)
    path.write_text(starter_config(path.name))
    print(f"wrote {path}; check it with: haltgate --config {path} check-config")
    return EXIT_OK


def cmd_replay(ctx: Context) -> int:
    """Replay an equity CSV through the breakers."""
    from .replay import run_replay_command

    return run_replay_command(ctx.args, ctx.config)


def _replay_duration(text: str) -> Any:
    """argparse type of ``--reset-after``: a duration such as ``30d`` (a usage error
    otherwise)."""
    from .replay.run import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_demo(ctx: Context) -> int:
    """Run the self-contained paper-trading demo."""
    import importlib

    try:
        demo = importlib.import_module("haltgate.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "haltgate.demo":
            raise
        raise CommandError(
            "the demo is not available in this build of haltgate (haltgate.demo is missing)"
        ) from None
    demo_main: Callable[..., Any] = demo.main
    result = demo_main(list(ctx.args.demo_args))
    return int(result or 0)


def cmd_serve(ctx: Context) -> int:
    """Run the admin API and status page."""
    from .server import serve

    return serve(ctx)


def cmd_hash_key(ctx: Context) -> int:
    """Print the hash of a secret read from stdin (for token_hash / key_hash)."""
    from .keys import hash_key, new_token

    if ctx.args.new:
        secret = new_token()
        print(f"secret (give it to the operator, store it nowhere else): {secret}")
    elif sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("secret to hash (not echoed): ")
    else:
        secret = sys.stdin.readline().rstrip("\n")
    if not secret:
        raise CommandError("nothing to hash: give the secret on stdin, or use --new", EXIT_USAGE)
    print(hash_key(secret))
    return EXIT_OK


def cmd_key(ctx: Context) -> int:
    """``key rotate NAME``: replace a keyed breaker's stored key hash (needs the current
    key; audited)."""
    from .authority import rotate_key

    args = ctx.args
    store = ctx.open_store(must_exist=True)
    try:
        rotate_key(store, args.name, _kill_switch_key(args.key), args.new_key_hash, args.operator)
    finally:
        store.close()
    print(f"ROTATED the key of {args.name!r} by {args.operator}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``haltgate``."""
    parser = argparse.ArgumentParser(
        prog="haltgate",
        description="See and act on haltgate's circuit breakers, kill switch and audit log.",
    )
    parser.add_argument("--config", metavar="FILE", help="config file (TOML or YAML)")
    parser.add_argument(
        "--store", metavar="URL", help="store URL (sqlite:///FILE, redis://HOST:PORT/DB)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    # The global options also work after the command (`haltgate status --store URL`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    common.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "status", parents=[common], help="show every breaker and whether trading is allowed"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "halt", parents=[common], help="halt one breaker, or all trading (the kill switch)"
    )
    p.add_argument("name", nargs="?", help="breaker to halt (default: all trading)")
    p.add_argument("--reason", required=True)
    p.add_argument("--operator", required=True)
    p.set_defaults(func=cmd_halt)

    p = sub.add_parser("reset", parents=[common], help="reset one breaker")
    p.add_argument("name")
    p.add_argument("--operator", required=True)
    p.add_argument("--reason", help="why it is safe to trade again")
    p.add_argument(
        "--key",
        help="the key of a keyed kill switch: '-' reads it from stdin (else "
        "HALTGATE_KILL_SWITCH_KEY, else a prompt on a terminal)",
    )
    p.set_defaults(func=cmd_reset)

    p = sub.add_parser("audit", parents=[common], help="read and verify the audit log")
    audit = p.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    a = audit.add_parser("tail", help="the latest entries")
    a.add_argument("-n", type=int, default=20, help="how many (default 20)")
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a = audit.add_parser("verify", help="check the hash chain (exit 1 if tampered)")
    a.add_argument(
        "--expect-head",
        metavar="SEQ:HASH",
        help="fail unless the log holds this entry with this hash (from 'audit head', kept "
        "outside the host)",
    )
    audit.add_parser("head", help="print SEQ:HASH of the last entry, to keep outside the host")
    a = audit.add_parser("export", help="every entry")
    a.add_argument("--jsonl", action="store_true", help="JSON lines")
    a.add_argument("file", nargs="?", help="output file (default: stdout)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("store", parents=[common], help="set up the store (its epoch marker)")
    store_sub = p.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    a = store_sub.add_parser(
        "init",
        help="set up a new store, or one that lost its data (a new epoch, audited)",
    )
    a.add_argument("url", nargs="?", help="the store URL (default: --store or the config's)")
    a.add_argument("--operator", required=True)
    a.add_argument(
        "--new-epoch",
        action="store_true",
        help="write a new epoch even though the store has a marker (processes report 'store "
        "lost its data' because its audit head went back or its marker was replaced)",
    )
    p.set_defaults(func=cmd_store)

    p = sub.add_parser("replay", parents=[common], help="replay an equity CSV through the breakers")
    p.add_argument("file", help="CSV: timestamp,portfolio_value[,orders][,errors]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="PNG", help="draw equity, peak and halted periods")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--reset-after",
        metavar="DURATION",
        type=_replay_duration,
        help="simulate an operator who resets a trip still in force that long after it "
        "tripped (e.g. 30d, 12h, 90m), so a long history shows every crash",
    )
    p.add_argument(
        "--reset-at-next-session",
        action="store_true",
        help="simulate an operator who resets a trip still in force at the start of the next "
        "session of the breaker's calendar",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "demo", help="a self-contained paper-trading demo (haltgate demo --help)", add_help=False
    )
    p.set_defaults(func=cmd_demo, demo_args=[])

    p = sub.add_parser("serve", parents=[common], help="admin API, status page and /metrics")
    p.add_argument("--bind", help="address (default from config, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from config, else 8787)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("init", parents=[common], help="write a commented starter config")
    p.add_argument("path", nargs="?", default="haltgate.toml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check-config", parents=[common], help="validate the config file")
    p.add_argument(
        "file", nargs="?", metavar="FILE", help="the config file (same as --config FILE)"
    )
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser(
        "hash-key", parents=[common], help="hash a token or key (read from stdin) for the config"
    )
    p.add_argument("--new", action="store_true", help="generate a new random secret")
    p.set_defaults(func=cmd_hash_key)

    p = sub.add_parser("key", parents=[common], help="manage a keyed kill switch's key")
    key = p.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    k = key.add_parser("rotate", help="replace the stored key hash (needs the current key)")
    k.add_argument("name", help="the keyed breaker")
    k.add_argument("--new-key-hash", required=True, help="made by: haltgate hash-key")
    k.add_argument("--operator", required=True)
    k.add_argument(
        "--key", help="the current key: '-' reads it from stdin (else the env or a prompt)"
    )
    p.set_defaults(func=cmd_key)
    return parser


def _error(message: str) -> None:
    # Every error line passes here: a store URL inside an exception never shows a password.
    print(redact_url(message), file=sys.stderr)


def _decoded(argv: Sequence[str]) -> list[str]:
    """Arguments as text that encodes as UTF-8: bytes that were not UTF-8 (Python keeps
    them as lone surrogates) become U+FFFD, so a halt typed in a non-UTF-8 terminal still
    halts (SPEC §2) instead of being refused as undecodable text."""
    result = []
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            try:
                raw = os.fsencode(arg)
            except UnicodeEncodeError:  # a surrogate that no byte became (not from argv)
                raw = arg.encode("utf-8", "replace")
            arg = raw.decode("utf-8", "replace")
        result.append(arg)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(_decoded(sys.argv[1:] if argv is None else argv))
    if args.command == "demo":
        args.demo_args = extra  # the demo parses its own options (--db, --seed, --help)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    ctx = Context(args)
    try:
        code = int(args.func(ctx))
    except CommandError as exc:
        _error(f"haltgate: {exc}")
        code = exc.code
    except ConfigError as exc:
        if args.debug:
            raise
        _error(f"haltgate: config error: {exc}")
        code = EXIT_USAGE
    except AuthorizationError as exc:
        _error(f"haltgate: REFUSED: {exc}")
        code = EXIT_REFUSED
    except InvalidInputError as exc:
        if args.debug:
            raise
        _error(f"haltgate: invalid input: {exc}")
        code = EXIT_USAGE
    except AuditModeError as exc:
        if args.debug:
            raise
        _error(f"haltgate: nothing changed: {exc}")
        code = EXIT_USAGE
    except StoreUnavailableError as exc:
        if args.debug:
            raise
        _error(f"haltgate: store unavailable, nothing changed: {exc}")
        code = EXIT_REFUSED
    except HaltgateError as exc:
        if args.debug:
            raise
        _error(f"haltgate: {exc}")
        code = EXIT_REFUSED
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_OK
    sys.stdout.flush()
    return code


def console_main() -> None:  # pragma: no cover - thin wrapper
    """Entry point that exits with :func:`main`'s code."""
    sys.exit(main())
