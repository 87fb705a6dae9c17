"""Every command path of the ``trailpipe`` app (``[]``, ``["events"]``, ``["events", "encode"]``
...), discovered from the Typer app itself so a smoke test that runs ``--help`` of each cannot
miss a command added later. ``python -m pipeline.cli.command_paths`` prints one path per line
(words separated by spaces; the root is the empty line)."""

from __future__ import annotations

from typing import Any

import typer


def command_paths(app: typer.Typer) -> list[list[str]]:
    """The root and every group and command below it, depth first, in registration order."""
    return _walk(typer.main.get_command(app), [])


def _walk(command: Any, path: list[str]) -> list[list[str]]:
    # Groups carry ``commands`` (name -> command); leaf commands do not.
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, [*path, name])
    return found


def main() -> None:
    """Print the command paths of the installed ``trailpipe``, one per line."""
    from pipeline.cli.app import app

    for path in command_paths(app):
        print(" ".join(path))


if __name__ == "__main__":
    main()
