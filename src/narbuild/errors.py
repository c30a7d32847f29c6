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


_SECRETS: set[str] = set()
_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def register_secret(value: str | None) -> str | None:
    """Remember a token so that :func:`redact` masks it in every message; returns it."""
    if value and len(value) >= 6:
        _SECRETS.add(value)
    return value


def redact(text: str, *secrets: str | None) -> str:
    """``text`` on one line with every known token masked: ``secrets``, the tokens registered
    with :func:`register_secret`, and those in ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN``."""
    import os

    text = " ".join(str(text).split())
    known = {*_SECRETS, *(s for s in secrets if s), *(os.environ.get(v) for v in _TOKEN_VARS)}
    for secret in sorted((s for s in known if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: its type and its message, whitespace collapsed, cut."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:limit]}"
