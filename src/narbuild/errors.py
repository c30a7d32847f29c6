"""Errors that reach the user as one clear line (no traceback)."""

from __future__ import annotations


class NarbuildError(Exception):
    """A user-facing error: what is wrong and what to do about it.

    The CLI prints ``str(error)`` on one line and exits with :attr:`exit_code`.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class WorkspaceError(NarbuildError):
    """The workspace is missing, foreign, corrupt or lacks a table."""


class SourceUnavailableError(NarbuildError):
    """A model source cannot be reached (no network, Hub down)."""
