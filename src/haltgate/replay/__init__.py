"""Replay: run the breakers over a historical equity series and show where they trip.

``rows`` reads the CSV, ``run`` feeds the breakers on a ManualClock driven by the rows'
timestamps, ``result`` holds what was seen, ``report`` prints it for a person (and is the
``haltgate replay`` command), ``plot`` draws it (extra ``plot``).
"""

from __future__ import annotations

from .plot import plot_replay
from .report import print_report, run_replay_command
from .result import ReplayEvent, ReplayResult
from .rows import Chunk, ReplayError, Row, read_chunks, read_rows, row_time
from .run import REPLAY_OPERATOR, default_breakers, parse_duration, replay_csv, replay_rows

__all__ = [
    "REPLAY_OPERATOR",
    "Chunk",
    "ReplayError",
    "ReplayEvent",
    "ReplayResult",
    "Row",
    "default_breakers",
    "parse_duration",
    "plot_replay",
    "print_report",
    "read_chunks",
    "read_rows",
    "replay_csv",
    "replay_rows",
    "row_time",
    "run_replay_command",
]
