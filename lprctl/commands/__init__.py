"""Subcommands contributed by each capability.

A module here defines ``register(commands)`` taking the argparse subparsers object; it
adds its parser(s) and sets ``handler=`` to a function ``(argparse.Namespace) -> int``.
"""
