"""The watcher's Prometheus metrics (prometheus-client), set from each Summary. Every figure is a
gauge recomputed from the watcher's state and the chain, so a restarted watcher exports the same
figures as before it stopped (a counter would start again from zero)."""

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from prover.watch.summary import Summary

VERDICTS = ("agree", "disagree", "missing", "unjudged", "pending")


class WatchMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"prover_watch_{name}", text, labels, registry=self.registry)

        self.claims_seen = gauge("claims_seen", "Claims found on the DisputeGame since --from-block.")
        self.claims = gauge("claims", "Claims by the watcher's verdict on them.", ("verdict",))
        self.games_open = gauge("games_open", "Open games the watcher plays (either side).")
        self.games_won = gauge("games_won", "Games the watcher played and won.")
        self.games_lost = gauge("games_lost", "Games the watcher played and lost.")
        self.bonds_at_stake = gauge(
            "bonds_at_stake_wei", "The watcher's bonds in pending claims and open games (wei)."
        )
        self.tightest_clock = gauge(
            "tightest_clock_seconds",
            "Seconds left to the side to move, least over the open games (-1: none).",
        )
        self.withdrawable = gauge("withdrawable_wei", "Credited to the watcher's account, not yet withdrawn.")
        self.block = gauge("block", "The latest block whose events the watcher has read.")

    def update(self, summary: Summary) -> None:
        self.claims_seen.set(summary.claims_seen)
        for verdict in VERDICTS:
            self.claims.labels(verdict).set(summary.verdicts.get(verdict, 0))
        self.games_open.set(summary.games_open)
        self.games_won.set(summary.games_won)
        self.games_lost.set(summary.games_lost)
        self.bonds_at_stake.set(summary.bonds_at_stake)
        self.tightest_clock.set(-1 if summary.tightest_clock is None else summary.tightest_clock)
        self.withdrawable.set(summary.withdrawable)
        self.block.set(summary.block)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)
