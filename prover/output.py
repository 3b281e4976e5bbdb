"""How results are printed: text for a person or, with --json, one JSON object per line for a
machine (`Record`, `Output`; prover/cli/options.py's `json_option` gives a command its `out`)."""

import json
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

    def warn(self, text: str) -> None:
        """Something repaired or suspicious (a corrupted local file recomputed): one line on
        stderr in both modes, so that a JSON stream on stdout stays records only."""
        click.echo(f"warning: {text}", err=True)
