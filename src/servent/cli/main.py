"""Entry point of the ``servent`` command: argument parsing and error reporting.

Subcommands live in :mod:`servent.cli.commands`, one module each, and are
discovered at start-up. Errors that servent raises on purpose
(:class:`~servent.errors.ServentError`) and OS errors become one line on
stderr and a non-zero exit; anything else is a bug and keeps its traceback.

Ctrl-C (or SIGTERM) is a normal way to stop, never a warning or a traceback.
Commands that run until stopped (``start``, ``daemon``, ``seed``,
``tracker``, ``dht node``, ``get --seed`` once complete) exit 0; a command
stopped before its job is done (a ``get`` still downloading, a ``create``
still hashing) says so in one line and exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable, Sequence

from servent import __version__
from servent.cli import commands
from servent.errors import ServentError

#: What ``servent`` with no subcommand runs: the README's main job.
DEFAULT_COMMAND = "start"

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="servent",
        description="A peer-to-peer node: share files and folders, find and fetch "
        "what others share (BitTorrent-compatible).",
    )
    parser.add_argument("--version", action="version", version=f"servent {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (repeat for debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            module.register
        )
        register(subparsers)
    parser.set_defaults(known_commands=frozenset(subparsers.choices))
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


_GLOBAL_FLAGS = frozenset({"-h", "--help", "--version"})


def _is_verbosity(arg: str) -> bool:
    return arg == "--verbose" or (len(arg) > 1 and arg[0] == "-" and set(arg[1:]) == {"v"})


def _with_default_command(args_list: list[str], known: frozenset[str]) -> list[str]:
    """Insert the default command before options that belong to it.

    ``servent --data-dir X`` means ``servent start --data-dir X``: the first
    argument that is neither a global flag nor ``-v`` decides.
    """
    for position, arg in enumerate(args_list):
        if arg in known:
            return args_list
        if arg in _GLOBAL_FLAGS:
            return args_list
        if _is_verbosity(arg):
            continue
        if arg.startswith("-"):
            if DEFAULT_COMMAND not in known:
                return args_list
            return [*args_list[:position], DEFAULT_COMMAND, *args_list[position:]]
    return args_list


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; Ctrl-C at any moment ends with a line, never a traceback."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("servent: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    known = parser.get_default("known_commands")
    args = parser.parse_args(_with_default_command(args_list, known))
    if args.command is None:
        if DEFAULT_COMMAND in args.known_commands:
            args = parser.parse_args([*args_list, DEFAULT_COMMAND])
        else:
            parser.print_help()
            return EXIT_USAGE
    _configure_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ServentError as exc:
        print(f"servent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(
            f"servent: error: {exc.strerror or exc}"
            + (f": {exc.filename}" if exc.filename else ""),
            file=sys.stderr,
        )
        return EXIT_ERROR
