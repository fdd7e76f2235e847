"""Exit codes and the command failure shared by the CLI and the commands it starts
(``serve``), so that neither has to import the other."""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "CommandError"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A command failed in a way the operator should read: message and exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code
