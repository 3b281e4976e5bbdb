"""The watcher's HTTP server on 127.0.0.1:--metrics-port: /metrics (Prometheus's text format), / (a
small status page: the figures, the claims and the games, refreshed every few seconds) and
/status.json (the same as JSON). It serves the last Summary the watcher made, from a thread of its
own, so a slow reader never holds up a move."""

import html
import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prover.watch.metrics import WatchMetrics
from prover.watch.summary import Summary

REFRESH_S = 2
ETHER = 10**18


def _ether(wei: int) -> str:
    return f"{wei / ETHER:g} ETH"


def _table(caption: str, rows: list[dict[str, Any]], css_id: str) -> str:
    if not rows:
        return f'<h2>{caption}</h2><p id="{css_id}-none">none yet</p>'
    head = "".join(f"<th>{html.escape(name)}</th>" for name in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if value is None else str(value))}</td>" for value in row.values())
        + "</tr>"
        for row in rows
    )
    return (
        f'<h2>{caption}</h2><table id="{css_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def status_page(summary: Summary) -> str:
    clock = "no open game" if summary.tightest_clock is None else f"{summary.tightest_clock} s"
    figures = [
        ("Account", summary.account),
        ("DisputeGame", summary.dispute_game),
        ("Block", summary.block),
        ("Claims seen", summary.claims_seen),
        (
            "Verdicts",
            ", ".join(f"{name} {count}" for name, count in sorted(summary.verdicts.items())) or "none",
        ),
        ("Games open", summary.games_open),
        ("Games won", summary.games_won),
        ("Games lost", summary.games_lost),
        ("Bonds at stake", _ether(summary.bonds_at_stake)),
        ("Tightest clock", clock),
        ("Withdrawable", _ether(summary.withdrawable)),
    ]
    rows = "".join(
        f'<tr><th>{html.escape(name)}</th><td id="{name.lower().replace(" ", "-")}">'
        f"{html.escape(str(value))}</td></tr>"
        for name, value in figures
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_S}">
<title>prover watch</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }} th {{ background: #eee; }}
</style></head>
<body><h1>prover watch</h1>
<table id="figures">{rows}</table>
{_table("Claims", summary.claims, "claims")}
{_table("Games", summary.games, "games")}
<p><a href="/metrics">metrics</a> · <a href="/status.json">status.json</a></p>
</body></html>
"""


class StatusServer:
    """Serves the latest Summary (`publish`) on 127.0.0.1:`port` (0: a free port, see `.port`)."""

    def __init__(self, port: int, metrics: WatchMetrics, summary: Summary) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()
        self.summary = summary
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def publish(self, summary: Summary) -> None:
        with self.lock:
            self.summary = summary
            self.metrics.update(summary)

    def page(self, path: str) -> tuple[str, bytes] | None:
        with self.lock:
            if path == "/metrics":
                return "text/plain; version=0.0.4", self.metrics.exposition()
            if path in ("/", "/index.html"):
                return "text/html; charset=utf-8", status_page(self.summary).encode()
            if path == "/status.json":
                return "application/json", json.dumps(asdict(self.summary)).encode()
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        status = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = status.page(self.path.split("?")[0])
                if found is None:
                    self.send_error(404)
                    return
                content_type, body = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the watcher's log has one line per chain event, not per page view."""

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
