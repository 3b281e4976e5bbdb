"""How commands print a result: text for a person or, with --json, one JSON object per line for a
machine (`Record`, `Output`, and the `json_option` decorator that gives a command its `out`)."""

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Record:
    """One result of a command: its fields for a machine (JSON values only) and the text a person
    reads (one line or more)."""

    fields: dict[str, Any]
    text: str

    def as_event(self, event: str) -> "Record":
        """The record as one line of a stream (`prover dispute`), its kind under "event"."""
        return Record({"event": event, **self.fields}, self.text)


class Output:
    """Where a command prints: text for a person, or with --json one JSON object per line for a
    machine. A command reports its results as Records (one, or a stream of them) and its progress
    as notes, which only a person gets: a machine finds the same facts in the result's fields, and
    a script reading JSON lines must not meet prose among them."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, record: Record) -> None:
        click.echo(json.dumps(record.fields) if self.as_json else record.text)

    def note(self, text: str) -> None:
        if not self.as_json:
            click.echo(text)


def json_option(command: Callable[..., None]) -> Callable[..., None]:
    """--json, turned into the command's `out` (an Output)."""

    @click.option("--json", "as_json", is_flag=True, help="Machine-readable: one JSON object per line.")
    @functools.wraps(command)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> None:
        return command(*args, out=Output(as_json), **kwargs)

    return wrapper
