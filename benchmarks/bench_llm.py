"""LLaMA-shaped int8 models (scripts/make_llama.py: random weights, cached under
~/.cache/opml-prover/llama) through generation claims, the figures of issue #18 in one run:

    .venv/bin/python benchmarks/bench_llm.py [--sizes 125m,1b] [--tokens 8] [--tile-macs 8388608]
                                             [--no-dispute]

Per size: native greedy decoding with the KV cache (tokens/s); the submitter's overhead, a whole
generation claim (decode, the graph run of the claim's forward pass with every tensor's
commitment; the model's commitment cached) over the decode alone; `prover commit` (seconds, MB/s
of the model file, node count); and, unless --no-dispute, a whole dispute in each direction
(scripts/challenge_llm.sh on the embedded chain: FAULTY=challenger, then submitter) with its wall
time, gas, the disputed node and the peak RSS of each party's largest process (/usr/bin/time).
Targets (issue #18): overhead <= 1.2x, commit of 7 B <= 3 min, dispute 1 B <= 120 s and 7 B <= 10 min,
RSS <= 12 GiB per party for 7 B, gas <= 3 M. Run under `nice`; the figures depend on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = "The quick brown fox"  # its UTF-8 bytes are the prompt's ids (all < 32,000)


def model_file(size: str, positions: int) -> Path:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_llama.py"), size, "--positions", str(positions)],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def native(path: Path, tokens: int, tile_macs: int) -> dict[str, float]:
    from prover.model.decode import CachedDecoder
    from prover.model.modelfile import load_model
    from prover.task.generation import write_generation_claim

    prompt = list(PROMPT.encode())
    decoder = CachedDecoder(load_model(path))
    start = time.perf_counter()
    generated = decoder.generate(prompt, tokens)
    decode = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as basedir:
        start = time.perf_counter()
        claim = write_generation_claim(
            Path(basedir), path, prompt, tokens, tile_macs=tile_macs, progress=False
        )
        whole = time.perf_counter() - start
    assert claim["greedy"] and claim["tokens"] == generated
    return {"tokens_per_s": tokens / decode, "decode_s": decode, "claim_s": whole, "overhead": whole / decode}


def commit(path: Path, tile_macs: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "prover.cli",
            "commit",
            str(path),
            "--tile-macs",
            str(tile_macs),
            "--force",
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(out.stdout)


def dispute(path: Path, tokens: int, tile_macs: int, faulty: str) -> dict:
    """scripts/challenge_llm.sh with each `prover` process under /usr/bin/time (its max RSS)."""
    with tempfile.TemporaryDirectory() as work:
        log, wrapper = Path(work) / "rss.log", Path(work) / "python"
        wrapper.write_text(  # not the node: the script's trap kills the process it started
            f'#!/bin/sh\n[ "$3" = node ] && exec {sys.executable} "$@"\n'
            f'exec /usr/bin/time -a -o {log} -f "%M %C" {sys.executable} "$@"\n'
        )
        wrapper.chmod(0o755)
        env = {
            **os.environ,
            "PYTHON": str(wrapper),
            "MODEL": str(path),
            "PROMPT": PROMPT,
            "TOKENS": str(tokens),
        }
        env |= {"TILE_MACS": str(tile_macs), "FAULTY": faulty}
        start = time.perf_counter()
        run = subprocess.run(
            ["bash", str(REPO / "scripts" / "challenge_llm.sh")],
            env=env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        wall = time.perf_counter() - start
        if run.returncode:
            raise SystemExit(f"challenge_llm.sh failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        rss = {"submitter": 0, "challenger": 0}
        for line in log.read_text().splitlines():
            kb, _, command = line.partition(" ")
            for party in rss:
                if kb.isdigit() and f"/{party}" in command:
                    rss[party] = max(rss[party], int(kb) * 1024)
    winner = re.search(r"^winner: (.*)$", run.stdout, re.M)
    gas = re.search(r"total ([\d,]+)", winner.group(1) if winner else "")
    return {
        "faulty": faulty,
        "result": winner.group(1) if winner else "?",
        "wall_s": wall,
        "gas": int(gas.group(1).replace(",", "")) if gas else None,
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="125m,1b")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--positions", type=int, default=len(PROMPT.encode()) + 8 - 1)
    parser.add_argument("--tile-macs", type=int, default=1 << 23)
    parser.add_argument("--no-dispute", action="store_true")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        path = model_file(size, args.positions)
        print(
            f"== {size}: {path} ({path.stat().st_size / 1e9:.2f} GB), {args.tokens} tokens after {PROMPT!r}"
        )
        figures = native(path, args.tokens, args.tile_macs)
        committed = commit(path, args.tile_macs)
        print(
            f"native decode (KV cache): {figures['tokens_per_s']:.2f} tokens/s ({figures['decode_s']:.1f} s)"
        )
        print(
            f"submitter's generation claim: {figures['claim_s']:.1f} s, overhead {figures['overhead']:.2f}x "
            "the decode (target <= 1.2x)"
        )
        print(
            f"prover commit: {committed['seconds']:.1f} s, {committed['mb_per_s']:.0f} MB/s, "
            f"{committed['node_count']} nodes at tile {args.tile_macs} MACs"
        )
        if args.no_dispute:
            continue
        for faulty in ("challenger", "submitter"):
            d = dispute(path, args.tokens, args.tile_macs, faulty)
            rss = {party: f"{size / 2**30:.2f} GiB" for party, size in d["rss"].items()}
            print(
                f"dispute, faulty {faulty}: {d['result']}; wall {d['wall_s']:.0f} s; gas {d['gas']:,}; "
                f"peak RSS submitter {rss['submitter']}, challenger {rss['challenger']}"
            )


if __name__ == "__main__":
    main()
