"""CLI errors: one line on stderr and an exit code (2: usage or configuration, 1: runtime)."""

from __future__ import annotations

USAGE = 2
RUNTIME = 1


class CLIError(Exception):
    """An error the user can fix from the message alone; printed as ``error: <message>`` without a traceback."""

    def __init__(self, message: str, code: int = RUNTIME) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CLIError):
    """Bad flags, missing input files, unknown model names."""

    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)


def one_line(text: str) -> str:
    """Collapse a multi-line message into one line (the CLI promises a single error line)."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    return "; ".join(parts) if parts else ""
