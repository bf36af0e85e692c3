"""Error types. Every error a user can cause is a `KplugError`: the CLI prints its message
as one paragraph and exits with code 2, without a traceback (`--debug` shows it)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KplugError(Exception):
    """An error the user can fix; `str(error)` says what is wrong and how to fix it."""

    exit_code = 2


class RecipeError(KplugError):
    """A recipe or override is malformed or does not validate.

    Args:
        problems: one line per problem, each naming its place (`file:line key`).
    """

    def __init__(self, problems: list[str] | str, *, source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = head + self.problems[0]
        else:
            listing = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{head}{len(self.problems)} problems in the recipe:\n{listing}"
        super().__init__(message)


class UnknownComponentError(KplugError):
    """A name that no loaded plugin registered, with suggestions."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, where: str = ""):
        self.kind, self.name = kind, name
        self.known = sorted(known)
        super().__init__(unknown_name_message(kind, name, self.known, where=where))


class PluginError(KplugError):
    """A plugin broke the contract (a duplicate name, a bad registration)."""


class DataError(KplugError):
    """A dataset could not be loaded or is unusable (missing files, empty, wrong format)."""


class RunError(KplugError):
    """A run cannot start or continue (run directory, resume, preflight checks)."""


class TrainingDivergedError(RunError):
    """The training loss became NaN or infinite; the last good checkpoint is kept.

    Exit code 3: the recipe is valid but its training failed (2 is for bad input).
    """

    exit_code = 3


class RunInterrupted(KplugError):
    """SIGTERM or SIGINT stopped training after a checkpoint; `kplug resume` continues.

    Args:
        signal_number: the signal received; the exit code is 128 + it (143, 130), as a
            shell reports a process ended by that signal.
    """

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number


def unknown_name_message(
    kind: str, name: str, known: list[str], *, where: str = "", known_label: str = "registered"
) -> str:
    """`unknown architecture 'cnnn'; did you mean 'cnn'? registered: cnn, rnn`."""
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    listing = ", ".join(known) if known else "(none: is the plugin installed?)"
    prefix = f"{where}: " if where else ""
    return f"{prefix}unknown {kind} {name!r}{hint} {known_label}: {listing}"
