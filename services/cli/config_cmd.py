"""`tradealgo config`: every setting as a Markdown table or `.env.example`, or rewrite both files."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.cli import configdoc
from services.cli.errors import OK, USAGE, CliError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "config",
        help="print or write the settings documentation (README table, .env.example)",
        description="Every setting of every service, generated from the settings classes.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="the README settings tables")
    what.add_argument("--env", action="store_true", help="the .env.example text")
    what.add_argument(
        "--write", action="store_true", help="rewrite README.md's tables and .env.example"
    )
    parser.add_argument("--readme", default="README.md", help="README to update (--write)")
    parser.add_argument("--env-file", default=".env.example", help="file to write (--write)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(configdoc.markdown(), end="")
        return OK
    if args.env:
        print(configdoc.env_example(), end="")
        return OK
    readme = Path(args.readme)
    try:
        text = readme.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {readme}: {exc.strerror}", USAGE) from None
    if configdoc.BEGIN not in text or configdoc.END not in text:
        raise CliError(
            f"{readme} has no {configdoc.BEGIN} ... {configdoc.END} markers to fill", USAGE
        )
    updated = configdoc.with_settings_table(text)
    env_file = Path(args.env_file)
    env_text = configdoc.env_example()
    changed = []
    if updated != text:
        readme.write_text(updated)
        changed.append(str(readme))
    if not env_file.is_file() or env_file.read_text() != env_text:
        env_file.write_text(env_text)
        changed.append(str(env_file))
    print(f"updated {', '.join(changed)}" if changed else "README.md and .env.example are current")
    return OK
