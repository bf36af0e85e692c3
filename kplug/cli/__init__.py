"""The `kplug` command. Core subcommands live one per module here; plugins add theirs
through the `register_commands` hook."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from kplug.errors import KplugError

log = logging.getLogger("kplug")
_owners: dict[str, str] = {}  # command name -> the plugin that added it, for clashes

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
    """Each plugin's `register_commands`, on its own: a plugin that raises, or a command
    name already taken, is a warning naming the plugin; the other commands still work."""
    from kplug.plugins import plugin_manager, report_failure

    for impl in reversed(plugin_manager().hook.register_commands.get_hookimpls()):
        plugin = impl.plugin_name

        def register(name: str, configure, *, summary: str = "", plugin: str = plugin) -> None:
            if name in subparsers.choices:
                log.warning("plugin %r: command %r is taken by %s; left out", plugin, name,
                            _owners.get(name, "kplug"))  # fmt: skip
                return
            sub = subparsers.add_parser(name, help=summary, description=summary)
            sub.set_defaults(handler=configure(sub))
            _owners[name] = f"plugin {plugin!r}"

        try:
            impl.function(**{"register": register} if "register" in impl.argnames else {})
        except Exception as error:  # a broken plugin must not take the other commands down
            report_failure(plugin, f"register_commands raised {type(error).__name__}: {error}",
                           traceback.format_exc())  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `kplug` command line; returns the exit code."""
    as_program = argv is None  # the `kplug` command, not a call from Python code
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if debug:  # plugins' tracebacks, in this process and in the child processes it starts
        os.environ["KPLUG_DEBUG"] = "1"
    if as_program and not debug:
        from kplug.cli.console import filter_native_logs

        filter_native_logs()
    _configure_logging()
    _handle_interrupts()
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
    except BrokenPipeError:
        return _closed_stdout()
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


def _closed_stdout() -> int:
    """The reader of stdout went away (`kplug plugins --json | head`): stop quietly, as
    `cat` does. Point stdout at /dev/null so that flushing it at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a process ended by it


def _handle_interrupts() -> None:
    """Ctrl-C and `kill -INT` stop kplug even when it inherited SIGINT ignored (a shell
    starts background jobs, `kplug run ... &`, that way): training then saves a checkpoint
    and stops, like SIGTERM, and elsewhere it ends with KeyboardInterrupt (exit 130)."""
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
