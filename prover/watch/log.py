"""The watcher's log: one line per event (a claim seen, judged, challenged; a move sent and made; a
game over; a claim settled; a withdrawal), stamped with the wall clock's UTC time: text for a
person, or with --json one JSON object per line with its "event" and "time". Problems go to
stderr, one line each (`warn`), in both modes."""

import time

import click

from prover.output import Output, Record


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EventLog(Output):
    def emit(self, record: Record) -> None:
        stamp = _now()
        super().emit(Record({"time": stamp, **record.fields}, f"{stamp} {record.text}"))
        # A pipe is block-buffered: a reader (a supervisor, a test) needs each line as it happens.
        click.get_text_stream("stdout").flush()

    def event(self, event: str, text: str, **fields: object) -> None:
        self.emit(Record({"event": event, **fields}, text))

    def warn(self, text: str) -> None:
        click.echo(f"{_now()} warning: {text}", err=True)
