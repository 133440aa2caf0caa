"""Bad input gets one line, not a traceback: the errors every script and the CLI share.

A `UserError` is an input the user can fix (a missing file, a malformed line, a wrong option).
Its message is the whole report, one line: `file:line: field: problem` or `path: what is wrong`.
Anything else is a bug and keeps its traceback.

    from wmtp_lightning.errors import ArgumentParser, BadInput, script_main

    @script_main
    def main(argv: list[str] | None = None) -> int:
        args = ArgumentParser(description=__doc__).parse_args(argv)
        ...
        raise BadInput(f"{path}:{lineno}: difficulty: expected an int, got 'hard'")

    if __name__ == "__main__":
        sys.exit(main())

`script_main` prints a `UserError` (or an `OSError`: a missing or unreadable file, no space left)
as one line on stderr and exits non-zero; with `--debug` on the command line or `WMTP_DEBUG=1` in
the environment it re-raises instead, traceback included. `ArgumentParser` makes usage errors one
line too (exit 2) and documents `--debug`. Nothing here imports torch or Lightning, so light scripts stay light.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

DEBUG_ENV = "WMTP_DEBUG"
R = TypeVar("R")


class UserError(Exception):
    """An input the user can fix; the message (one line) says which one and what is wrong."""

    exit_code = 1


class BadInput(UserError, ValueError):
    """Malformed or inconsistent content: a line, a field, a file that does not match another."""


class MissingInput(UserError, FileNotFoundError):
    """A required file or folder does not exist."""


class UsageError(UserError):
    """A wrong command-line option (argparse's exit code 2)."""

    exit_code = 2


def one_line(text: str) -> str:
    """`text` with its line breaks folded, so a message from a library still takes one line."""
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    """True when tracebacks are wanted: `--debug` in `argv` (default sys.argv) or `WMTP_DEBUG=1`."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def describe(err: BaseException) -> str | None:
    """The one-line report of a user-fixable error (a `UserError` or an `OSError`), else None (a bug)."""
    if isinstance(err, UserError):
        return one_line(str(err))
    if isinstance(err, OSError):  # missing / unreadable / not writable / no space left
        return one_line(f"{err.filename}: {err.strerror or err}" if err.filename is not None else str(err))
    return None


def script_main(fn: Callable[[list[str] | None], R]) -> Callable[[list[str] | None], R]:
    """Wrap a script's `main(argv)`: a `UserError` / `OSError` becomes one stderr line and `SystemExit`.

    The wrapped function returns what `main` returns; on bad input it raises `SystemExit(code)`
    (1, or 2 for usage errors) after printing `error: <message>`. Tests call it in process and read
    the message from captured stderr.
    """

    @functools.wraps(fn)
    def wrapper(argv: list[str] | None = None) -> R:
        try:
            return fn(argv)
        except (UserError, OSError) as err:
            message = describe(err)
            if message is None or debug_requested(argv):
                raise
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(getattr(err, "exit_code", 1)) from None
        except KeyboardInterrupt:
            if debug_requested(argv):
                raise
            print("error: interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (`UsageError`, exit 2) and a documented `--debug` flag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help=f"show tracebacks (or set {DEBUG_ENV}=1)")

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def writable_dir(path: str | Path) -> Path:
    """Create `path` if needed and prove a file can be created in it, before any work starts.

    Raises `BadInput` naming the path when it is a file, lies under a file, or is not writable
    (read-only file system, permissions, quota), so a long run never fails at its last step.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError as err:
        raise BadInput(f"{path}: exists and is not a directory") from err
    except OSError as err:
        raise BadInput(f"{path}: not a writable directory ({err.strerror or err})") from err
    return path
