"""The `toolcast` command: thin, each subcommand lives in its own module and calls the packages.

Each command module defines `register(subparsers)`, which adds its parser and sets `func` to a
function taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from toolcast import __version__

# One line per command module (toolcast.cli.<name>).
COMMANDS: tuple[str, ...] = (
    "import_cmd",
    "stats_cmd",
    "eval_cmd",
    "simulate_cmd",
    "serve_cmd",
    "demo_cmd",
    "train_cmd",
    "export_cmd",
    "mcp_proxy_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolcast",
        description="Learn from agent logs which tool call comes next, and run it while the LLM thinks.",
    )
    parser.add_argument("--version", action="version", version=f"toolcast {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"toolcast.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
