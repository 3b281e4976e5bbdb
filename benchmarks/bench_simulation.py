"""Adversarial game simulation at scale (tests/game_simulation.py): randomized scenarios on the
in-process chain until at least --games games were played (target: >= 1,000), each checked for the
honest side winning every game it plays, no honest call reverting, and the bonds ending where the
rules say. Prints the games per strategy and outcome, the refused calls of the liars, and the time
per game; --json prints the same as one object.

    .venv/bin/python benchmarks/bench_simulation.py [--games 1000] [--first-seed 0] [--json]
"""

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from contract_programs import run_loop_program
from game_simulation import simulate

TARGET_GAMES = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=TARGET_GAMES)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    run = run_loop_program(iterations=12)
    games = honest_games = scenarios = moves = refused = 0
    by_strategy: Counter[str] = Counter()
    by_claim: Counter[str] = Counter()
    start = time.perf_counter()
    seed = args.first_seed
    with tqdm(total=args.games, unit="game", disable=args.json) as bar:
        while games < args.games:
            # simulate() asserts every property of the scenario: a failure stops here with its seed.
            outcome = simulate(run, seed)
            scenarios += 1
            games += len(outcome.games)
            honest_games += outcome.honest_games
            moves += outcome.moves
            refused += outcome.refused
            by_claim["true" if outcome.claim_true else "false"] += 1
            by_strategy.update(outcome.strategies)
            bar.update(len(outcome.games))
            seed += 1
    seconds = time.perf_counter() - start
    report = {
        "scenarios": scenarios,
        "seeds": [args.first_seed, seed - 1],
        "games": games,
        "games_with_an_honest_side": honest_games,
        "honest_side_won": honest_games,
        "moves": moves,
        "refused_calls_of_liars": refused,
        "claims": dict(by_claim),
        "players_by_strategy": dict(by_strategy),
        "seconds": round(seconds, 1),
        "seconds_per_game": round(seconds / games, 3),
        "target_games": args.games,
        "games_vs_target": round(games / args.games, 2),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{scenarios} scenarios (seeds {args.first_seed}..{seed - 1}), {games} games, {moves} moves")
    print(f"the honest side won {honest_games} of the {honest_games} games it played (every property held)")
    print(f"refused calls of the liars: {refused}; claims: {dict(by_claim)}")
    print("players by strategy: " + ", ".join(f"{name} {count}" for name, count in by_strategy.most_common()))
    print(f"{seconds:.1f} s, {seconds / games:.3f} s per game; games / target {games / args.games:.2f}")


if __name__ == "__main__":
    main()
