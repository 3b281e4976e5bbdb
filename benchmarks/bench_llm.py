"""LLaMA-shaped int8 models (scripts/make_llama.py: random weights, cached under
~/.cache/opml-prover/llama) through generation claims, and issue #12's 100 M-parameter model beside
them, the figures of issue #18 in one run:

    .venv/bin/python benchmarks/bench_llm.py [--sizes mlp100m,125m,1b,7b] [--tokens 8]
                                             [--tile-macs 8388608] [--no-dispute] [--repeat 2]

Per LLaMA size: native greedy decoding with the KV cache (tokens/s); the submitter's overhead, a
whole generation claim (decode, the graph run of the claim's forward pass with every tensor's
commitment; the model's commitment cached) over plain inference (loading the model file and
decoding, as `prover generate` does), each the fastest of --repeat runs; `prover commit` (seconds, MB/s
of the model file, node count, peak RSS); and, unless --no-dispute, a whole dispute in each
direction (scripts/challenge_llm.sh on the embedded chain: FAULTY=challenger, then submitter) with
its wall time, gas, the disputed node and the peak RSS of each party's largest process
(/usr/bin/time: memory-mapped model pages count).

`mlp100m` is issue #12's 100 M-parameter model (benchmarks/bench_scale.py's random int8 MLP,
4096-4096x6-10, in $XDG_CACHE_HOME/opml-prover/bench): a classifier, so loading the model and
the image and one forward pass stand for plain inference (no tokens), `prover graph` for the claim,
and its disputes are scripts/challenge_multiphase.sh's (MNIST test image 0 resized to its 4096
inputs, fault at node 2, #12's default tile size).
Targets (issue #18): overhead <= 1.2x, commit of 7 B <= 3 min, dispute 1 B <= 120 s and 7 B <= 10 min,
RSS <= 12 GiB per party for 7 B, gas <= 3 M. Run under `nice`; the figures depend on the load
(printed with each size).
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

import numpy as np

from prover.model.tiling import DEFAULT_TILE_MACS

REPO = Path(__file__).resolve().parent.parent
PROMPT = "The quick brown fox"  # its UTF-8 bytes are the prompt's ids (all < 32,000)
MLP = "mlp100m"  # issue #12's 100 M-parameter model
IMAGE = REPO / "examples" / "mnist" / "test_0000_label_7.png"


def model_file(size: str, positions: int) -> Path:
    if size == MLP:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from bench_scale import model_path

        return model_path("100m")
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_llama.py"), size, "--positions", str(positions)],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def native(path: Path, tokens: int, tile_macs: int, repeat: int) -> dict[str, float]:
    """Plain inference (what `prover generate` does: load the model file, decode greedily) and the
    submitter's whole generation claim, each the fastest of `repeat` runs (the load varies)."""
    from prover.model.decode import CachedDecoder
    from prover.model.modelfile import load_model
    from prover.task.generation import write_generation_claim

    prompt = list(PROMPT.encode())
    with tempfile.TemporaryDirectory() as basedir:  # the model's commitment, cached
        write_generation_claim(Path(basedir), path, prompt, 1, tile_macs=tile_macs, progress=False)
    plain, decode, whole = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        decoder = CachedDecoder(load_model(path))
        loaded = time.perf_counter()
        generated = decoder.generate(prompt, tokens)
        plain.append(time.perf_counter() - start)
        decode.append(time.perf_counter() - loaded)
        with tempfile.TemporaryDirectory() as basedir:
            start = time.perf_counter()
            claim = write_generation_claim(
                Path(basedir), path, prompt, tokens, tile_macs=tile_macs, progress=False
            )
            whole.append(time.perf_counter() - start)
        assert claim["greedy"] and claim["tokens"] == generated
    return {
        "tokens_per_s": tokens / min(decode),
        "decode_s": min(decode),
        "plain_s": min(plain),
        "claim_s": min(whole),
        "overhead": min(whole) / min(plain),
    }


def classifier(path: Path, repeat: int) -> dict[str, float]:
    """The 100 M MLP: plain inference (loading the model file and the image, one native forward
    pass) and `prover graph`'s claim (the same, then the graph run with every tensor's commitment,
    the model's commitment cached) over it, each the fastest of `repeat` runs."""
    from prover.model import engine
    from prover.task.graph_run import write_graph_run
    from prover.task.run import load_task

    plain, forward, whole = [], [], []
    with tempfile.TemporaryDirectory() as basedir:
        write_graph_run(Path(basedir), path, IMAGE, progress=False)  # the commitment, cached
        for _ in range(repeat):
            start = time.perf_counter()
            task = load_task(path, IMAGE)
            loaded = time.perf_counter()
            engine.run(task.graph, np.frombuffer(task.data, np.uint8)[None])
            plain.append(time.perf_counter() - start)
            forward.append(time.perf_counter() - loaded)
            start = time.perf_counter()
            write_graph_run(Path(basedir), path, IMAGE, progress=False)
            whole.append(time.perf_counter() - start)
    return {
        "forward_s": min(forward),
        "plain_s": min(plain),
        "claim_s": min(whole),
        "overhead": min(whole) / min(plain),
    }


def commit(path: Path, tile_macs: int) -> dict:
    out = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
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
    return {**json.loads(out.stdout), "rss": int(out.stderr.strip().splitlines()[-1]) * 1024}


def dispute(path: Path, tokens: int, tile_macs: int, faulty: str, mlp: bool) -> dict:
    """scripts/challenge_llm.sh (challenge_multiphase.sh for the MLP) with each `prover` process
    under /usr/bin/time (its max RSS)."""
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
        env |= {"TILE_MACS": str(tile_macs), "FAULTY": faulty, "IMAGE": "0"}
        script = "challenge_multiphase.sh" if mlp else "challenge_llm.sh"
        start = time.perf_counter()
        run = subprocess.run(
            ["bash", str(REPO / "scripts" / script)],
            env=env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        wall = time.perf_counter() - start
        if run.returncode:
            raise SystemExit(f"{script} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
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
    parser.add_argument("--sizes", default=f"{MLP},125m,1b")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--positions", type=int, default=len(PROMPT.encode()) + 8 - 1)
    parser.add_argument("--tile-macs", type=int, default=1 << 23)
    parser.add_argument("--no-dispute", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="runs of decode and claim (fastest kept) [2]")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        path = model_file(size, args.positions)
        mlp = size == MLP
        tile_macs = DEFAULT_TILE_MACS if mlp else args.tile_macs
        what = "MNIST image 0 resized to its 4096 inputs" if mlp else f"{args.tokens} tokens after {PROMPT!r}"
        print(f"== {size}: {path} ({path.stat().st_size / 1e9:.2f} GB), {what}; {load()}")
        if mlp:
            figures = classifier(path, args.repeat)
            print(
                f"native forward pass: {figures['forward_s']:.3f} s (with loading the model and the "
                f"image, plain inference: {figures['plain_s']:.3f} s)"
            )
            print(
                f"submitter's graph claim (prover graph): {figures['claim_s']:.2f} s, overhead "
                f"{figures['overhead']:.2f}x plain inference (target <= 1.2x)"
            )
        else:
            figures = native(path, args.tokens, args.tile_macs, args.repeat)
            print(
                f"native decode (KV cache): {figures['tokens_per_s']:.3f} tokens/s "
                f"({figures['decode_s']:.1f} s; with loading the model, plain inference: "
                f"{figures['plain_s']:.1f} s)"
            )
            print(
                f"submitter's generation claim: {figures['claim_s']:.1f} s, overhead "
                f"{figures['overhead']:.2f}x plain inference (target <= 1.2x)"
            )
        committed = commit(path, tile_macs)
        print(
            f"prover commit: {committed['seconds']:.1f} s, {committed['mb_per_s']:.0f} MB/s, "
            f"{committed['node_count']} nodes at tile {tile_macs} MACs, peak RSS {gib(committed['rss'])}; "
            f"{load()}"
        )
        if args.no_dispute:
            continue
        for faulty in ("challenger", "submitter"):
            d = dispute(path, args.tokens, tile_macs, faulty, mlp)
            print(
                f"dispute, faulty {faulty}: {d['result']}; wall {d['wall_s']:.0f} s; gas {d['gas']:,}; "
                f"peak RSS submitter {gib(d['rss']['submitter'])}, challenger {gib(d['rss']['challenger'])}; "
                f"{load()}"
            )


def gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


if __name__ == "__main__":
    main()
