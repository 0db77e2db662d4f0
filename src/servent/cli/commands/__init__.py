"""One module per top-level subcommand.

Each module defines ``register(subparsers)`` which adds its parser and sets
``func`` (a callable taking the parsed namespace and returning an exit code).
:mod:`servent.cli.main` discovers the modules here, so adding a command is
adding a file.
"""
