"""The command line's argument parser: argparse, with its errors as one line that says what to type.

An unknown option or command is named as such, with the options or commands
there are, and the nearest of them only where one is close (``--smal``:
``--small``; ``--bogus``: none). Options are checked before argparse reads
the arguments, so an unknown option is what is reported, not a missing
``PATH`` after it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from ._checks import closest_name

__all__ = ["Parser", "UsageError", "nearest"]


class UsageError(Exception):
    """Bad arguments or an unusable path: reported as one line on stderr, exit code 2."""


def nearest(word: str, names: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the name close to ``word`` (dashes aside), else ``""``.

    The dashes are left out of the comparison: every long option shares
    ``--``, which would make ``--bogus`` look close to ``--out``.

    Examples
    --------
    >>> from labeled_spaces._parser import nearest
    >>> nearest("--smal", ["--out", "--small"]), nearest("--bogus", ["--out", "--small"])
    ('; did you mean --small?', '')
    """
    bare = {name.lstrip("-"): name for name in names}
    match = closest_name(word.lstrip("-"), bare)
    return f"; did you mean {bare[match]}?" if match is not None else ""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (usage is one ``--help`` away).

    Abbreviated options are refused: ``--smal`` is a typo to report, not
    ``--small`` (and a later option must not change what an abbreviation means).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        self.commands: dict[str, Any] = {}  # the subcommands' parsers (set by the caller)
        self.option_names: list[str] = []
        self.shown: list[str] = []  # the options as a person types them: --out DIR, -q/--quiet
        self.valued: set[str] = set()  # options followed by a value
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings:
            self.option_names += action.option_strings
            takes = action.nargs != 0
            self.valued |= set(action.option_strings) if takes else set()
            self.shown.append("/".join(action.option_strings)
                              + (f" {action.metavar or action.dest.upper()}" if takes else ""))
        return action

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")

    def known(self, name: str) -> bool:
        """Whether ``name`` is one of the options (``-qh``: short flags written together)."""
        return name in self.option_names or (name[:1] == "-" and name[1:2] != "-" and all(
            f"-{c}" in self.option_names and f"-{c}" not in self.valued for c in name[1:]))

    def check_words(self, words: Sequence[str]) -> None:
        """Refuse an unknown option or command, naming those there are."""
        parser, value_next = self, False
        for word in words:
            if value_next or word == "--":
                if word == "--":
                    return
                value_next = False
            elif word[:1] == "-" and word != "-":
                name = word.split("=", 1)[0]
                if not parser.known(name):
                    parser.error(f"unknown option {name} for {parser.prog} (its options: "
                                 f"{', '.join(parser.shown)}){nearest(name, parser.option_names)}")
                value_next = name in parser.valued and "=" not in word
            elif parser is self and self.commands:
                if word not in self.commands:
                    self.error(f"unknown command {word!r} (the commands: "
                               f"{', '.join(self.commands)}){nearest(word, self.commands)}")
                parser = self.commands[word]

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse's, but unknown options and commands are named as such, first."""
        words = list(sys.argv[1:] if args is None else args)
        self.check_words(words)
        if self.commands and not any(w in self.commands or w in self.option_names for w in words):
            self.error(f"a command is needed (the commands: {', '.join(self.commands)})")
        parsed, extras = self.parse_known_args(words, namespace)
        if extras:  # only arguments that are not options are left
            parser = self.commands.get(str(getattr(parsed, "command", "")), self)
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed
