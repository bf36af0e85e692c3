"""The `kplug` command. Core subcommands live one per module here; plugins add theirs
through the `register_commands` hook."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from kplug.errors import KplugError

CORE_COMMANDS = (
    "run",
    "resume",
    "validate",
    "plan",
    "data",
    "listing",
    "describe",
    "plugins_cmd",
    "predict",
    "evaluate",
    "compare",
    "recipes",
)


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="kplug",
        description="Train Keras models from YAML recipes; everything else is a plugin.",
        epilog="Add --debug to any command to see tracebacks.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in CORE_COMMANDS:
        import_module(f"kplug.cli.{module}").add_to(subparsers)
    _add_plugin_commands(subparsers)
    return parser


def _add_plugin_commands(subparsers) -> None:
    from kplug.plugins import registry

    for component in registry().all("command"):
        if component.name in subparsers.choices:
            continue  # a core command wins; `kplug plugins` still lists the plugin
        sub = subparsers.add_parser(component.name, help=component.summary,
                                    description=component.summary)  # fmt: skip
        sub.set_defaults(handler=component.factory(sub))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `kplug` command line; returns the exit code."""
    as_program = argv is None  # the `kplug` command, not a call from Python code
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if as_program and not debug:
        from kplug.console import filter_native_logs

        filter_native_logs()
    _configure_logging()
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            # Overrides after flags: any command with `add_recipe_arguments` (core or plugin).
            if not hasattr(args, "overrides") or any(a.startswith("-") for a in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.overrides = [*args.overrides, *extra]
        return int(args.handler(args) or 0)
    except KplugError as error:
        if debug:
            raise
        print(f"kplug: error: {_printable(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("kplug: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        print(
            f"kplug: internal error: {type(error).__name__}: {error}\n"
            "This is probably a bug in kplug or a plugin; rerun with --debug for the "
            "traceback and report it.",
            file=sys.stderr,
        )
        return 1


def _printable(text: str) -> str:
    """`text` with characters no UTF-8 stream can take (lone surrogates, from arguments in
    another encoding) escaped, so that reporting a bad input cannot fail itself."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _configure_logging() -> None:
    logger = logging.getLogger("kplug")
    console = [h for h in logger.handlers if getattr(h, "_kplug_console", False)]
    for handler in console:
        # main() called again in one process (tests) may find sys.stderr replaced, and the
        # old one closed: rebind without setStream, which would flush the closed one.
        handler.stream = sys.stderr
    if not console:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("kplug: %(message)s"))
        handler.addFilter(lambda record: not record.name.startswith("kplug.epochs"))
        handler._kplug_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(os.environ.get("KPLUG_LOG_LEVEL", "INFO").upper())
    logger.propagate = False


def _version() -> str:
    from kplug import __version__

    return f"kplug {__version__}"
