"""Multi-phase disputes from MNIST size to 100 M parameters (issue 12's targets), in one run.

Models: the trained int8 MLP and LeNet-5, and random-weight int8 MLPs of about 1 M, 10 M and
100 M parameters (generated once into $XDG_CACHE_HOME/opml-prover/bench/, never committed). Per
model, on one input, as a graph task (LINEARs tiled at --tile-macs, the ANSWER node last):

- commit: every node file's region root (native hashing) and the nodes tree, with its MB/s; and
  the same read back from the commitment cache (the file's digest from the stat index, the cache
  file checked), what every command after the first pays;
- graph phase: every node computed natively (numpy engine) with its commitment and G_i;
- the largest node (by multiply-accumulates) in the VM: its steps and time;
- a whole multi-phase dispute in this process, k = --k: both parties commit and trace, the honest
  submitter claims, a challenger that corrupts the largest node's output disputes, the two play
  the graph phase, the link and the VM phase on the embedded chain; wall time and gas of every
  transaction (task, claim, challenge, moves);
- single-phase (the whole model in the VM, both parties, a challenger corrupting a register at a
  third of the run) where that is still feasible (--single-phase-max-params), for the ratio;
- the wall and CPU time of each dispute (on a shared machine the wall time depends on what else
  runs; the CPU time is what one free core would take);
- a party's peak RSS (a separate process doing one party's work: load, tile, commit, trace, the
  largest node's VM run) against the model file's size.

Targets: 100 M parameters <= 60 s wall and <= 2.5 M gas for the multi-phase dispute; the MNIST
MLP's <= 5 s; a party's peak RSS <= 4 x the model file.

    python benchmarks/bench_scale.py [--k 16] [--models mlp,lenet5,1m,10m,100m] [--tile-macs N]
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prover.chain.contracts import DisputeGame, MipsVerifier
from prover.chain.game_view import Side
from prover.chain.local import LocalChain
from prover.game.agent import FaultyTrace
from prover.game.multiphase import GraphParty, Match, create_task, submit
from prover.model.graph import DType, Graph, Op
from prover.model.modelfile import load_model, save_model
from prover.model.quantize import quantize_multiplier
from prover.model.tiling import DEFAULT_TILE_MACS
from prover.task import merkle
from prover.task.commitments import commit_model, task_graph
from prover.task.golden import OUTPUT_BASE, build_golden, top_tree_siblings
from prover.task.graph_run import committed
from prover.task.graph_trace import trace_graph
from prover.task.node import node_file, node_image, node_program_root
from prover.task.run import output_payload
from vm.trace import Trace

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "opml-prover" / "bench"
BOND, CLOCK, WINDOW = 10**18, 3600, 3600
# Random MLPs: input width, hidden widths, 10 outputs.
RANDOM_MLPS = {"1m": (784, (1024, 256)), "10m": (1024, (2048, 2048, 2048)), "100m": (4096, (4096,) * 6)}
TARGETS = {"100m": (60.0, 2_500_000), "mlp": (5.0, None)}
RSS_RATIO_TARGET = 4.0


def random_mlp(width_in: int, hidden: tuple[int, ...], seed: int = 0) -> Graph:
    """u8 input -> REQUANTIZE -> LINEARs with ReLU fused -> 10 int8 logits; random int8 weights,
    requantization scaled so that activations keep their spread."""
    rng = np.random.default_rng(seed)
    g = Graph(metadata={"name": f"random-mlp-{width_in}-{'-'.join(map(str, hidden))}", "mode": "int8"})
    g.input = g.add_tensor("pixels", DType.U8, (width_in,))
    x = g.add_node(
        Op.REQUANTIZE, [g.input], "x", DType.I8, (width_in,), X_ZP=0, Y_ZP=-128, MULT=1 << 30, SHIFT=1
    )
    n_in = width_in
    for layer, n_out in enumerate((*hidden, 10)):
        w = g.add_tensor(
            f"w{layer}", DType.I8, (n_in, n_out), rng.integers(-127, 128, (n_out, n_in), dtype=np.int8)
        )
        bias = g.add_tensor(f"b{layer}", DType.I32, (n_out,), rng.integers(-2000, 2000, n_out))
        m0, shift = quantize_multiplier(40.0 / (math.sqrt(n_in) * 73.0 * 73.0))
        mult = g.add_tensor(f"m{layer}", DType.I32, (n_out,), np.full(n_out, m0))
        shifts = g.add_tensor(f"s{layer}", DType.I32, (n_out,), np.full(n_out, shift))
        relu = {"ACT_MIN": -128 + 1} if n_out != 10 else {}
        x = g.add_node(Op.LINEAR, [x, w, bias, mult, shifts], f"y{layer}", DType.I8, (n_out,), **relu)
        n_in = n_out
    g.output = x
    return g


def model_path(name: str) -> Path:
    if name in ("mlp", "lenet5"):
        return REPO / "models" / f"{name}_int8.ggml"
    path = CACHE / f"mlp-{name}.ggml"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        save_model(random_mlp(*RANDOM_MLPS[name]), path)
    return path


def input_for(graph: Graph) -> bytes:
    tensor = graph.tensors[graph.input]
    values = (np.arange(tensor.count) * 37 % 256).astype(np.uint8)
    return values.astype(tensor.dtype.numpy).astype(tensor.dtype.numpy.newbyteorder(">")).tobytes()


def largest_node(graph: Graph) -> int:
    """The 1-based node with the most multiply-accumulates (LINEAR), else the last."""

    def macs(node) -> int:
        if node.op != Op.LINEAR:
            return 0
        return graph.tensors[node.inputs[0]].count * graph.tensors[node.inputs[1]].dims[1]

    best = max(range(len(graph.nodes)), key=lambda i: (macs(graph.nodes[i]), i))
    return best + 1


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


@dataclass
class Chain:
    chain: LocalChain
    game: DisputeGame
    submitter: str
    challenger: str


def deploy(k: int) -> Chain:
    chain = LocalChain()
    mips = MipsVerifier.deploy(chain.w3)
    game = DisputeGame.deploy(chain.w3, mips.address, k, BOND, BOND, CLOCK, WINDOW)
    return Chain(chain, game, *chain.accounts[1:3])


def receipt_gas(chain: Chain, event_block_from: int = 0) -> int:
    """Gas of every transaction sent to the dispute game so far (task, claim, challenge, moves)."""
    w3 = chain.chain.w3
    total = 0
    for number in range(event_block_from, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["to"] == chain.game.address:
                total += w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]
    return total


def multiphase_dispute(graph: Graph, payload: bytes, k: int, fault_node: int) -> dict:
    """Both parties' work and the game, in this process; wall and CPU time, gas."""
    start, cpu = time.perf_counter(), time.process_time()
    chain = deploy(k)
    block = chain.chain.w3.eth.block_number + 1
    honest = GraphParty(graph, commit_model(graph), trace_graph(graph, payload))
    liar = GraphParty(graph, commit_model(graph), trace_graph(graph, payload, fault_node=fault_node))
    task = create_task(chain.game, honest, chain.submitter)
    game_id = chain.game.challenge(submit(chain.game, task, honest, chain.submitter), chain.challenger)
    match = Match(
        chain.game,
        game_id,
        {Side.DEFENDER: (honest, chain.submitter), Side.CHALLENGER: (liar, chain.challenger)},
    )
    winner = match.play()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    view = chain.game.game(game_id)
    steps = honest.node_run(view.node).steps
    return {"wall_s": wall, "cpu_s": cpu, "gas": receipt_gas(chain, block), "winner": winner,
            "moves": match.moves, "node": view.node, "vm_steps": steps}  # fmt: skip


def single_phase_dispute(model: bytes, payload: bytes, k: int) -> dict:
    """The whole model in the VM: both parties' golden image and run, the VM game."""
    start, cpu = time.perf_counter(), time.process_time()
    chain = deploy(k)
    block = chain.chain.w3.eth.block_number + 1
    traces = []
    for _ in range(2):  # each party runs the whole model
        image = build_golden(model, payload)
        trace = Trace.record(image.machine, interval=100_000)
        traces.append((image, trace, trace.machine_at(trace.steps)))
    (image, honest, final), (_, other, _) = traces
    task = chain.game.create_task(
        image.program_root, image.input_root, image.model_root, sender=chain.submitter
    )
    proof = top_tree_siblings(final.memory.proof(OUTPUT_BASE))
    claim = chain.game.submit(task, honest.final_state, output_payload(final), proof, sender=chain.submitter)
    game_id = chain.game.challenge(claim, chain.challenger)
    liar = FaultyTrace(other, honest.steps // 3)
    match = Match(
        chain.game,
        game_id,
        {Side.DEFENDER: (honest, chain.submitter), Side.CHALLENGER: (liar, chain.challenger)},
    )
    winner = match.play()
    return {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "gas": receipt_gas(chain, block), "winner": winner, "moves": match.moves,
            "vm_steps": honest.steps}  # fmt: skip


def warm_up(k: int) -> None:
    """One-time costs of a process, not of a dispute: the contracts' first deployment, the native
    hasher's build, the node program's root."""
    deploy(k)
    merkle.region_root(b"")
    node_program_root()


def party_work(path: Path, tile_macs: int) -> None:
    """One party's work on a model (for its peak RSS): load, tile, commit, trace, largest node in
    the VM. Prints the peak RSS in bytes."""
    graph = task_graph(load_model(path), tile_macs)
    party = GraphParty(graph, commit_model(graph), trace_graph(graph, input_for(graph)))
    party.node_run(largest_node(graph))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def measure(name: str, k: int, tile_macs: int, single_max: int) -> dict:
    path = model_path(name)
    original, load_s = timed(load_model, path)
    params = sum(t.count for t in original.tensors if t.data is not None)
    graph, tile_s = timed(task_graph, original, tile_macs)
    _, commit_s = timed(commit_model, graph)
    committed(path, original, graph, tile_macs, print)  # into the commitment cache, if it is not there yet
    _, cached_s = timed(committed, path, original, graph, tile_macs, print)  # what every later command pays
    payload = input_for(graph)
    trace, graph_s = timed(trace_graph, graph, payload)
    node = largest_node(graph)
    image = node_image(node_file(graph, node - 1), trace.node_inputs(node))
    steps, node_s = timed(image.machine.run)
    row = {
        "model": name, "params": params, "file_bytes": path.stat().st_size, "nodes": len(original.nodes),
        "tiled_nodes": len(graph.nodes), "load_s": load_s, "tile_s": tile_s, "commit_s": commit_s,
        "commit_cached_s": cached_s,
        "commit_mb_s": path.stat().st_size / commit_s / 1e6, "graph_phase_s": graph_s,
        "largest_node": node, "largest_node_op": graph.nodes[node - 1].op.name,
        "largest_node_steps": steps, "largest_node_vm_s": node_s,
    }  # fmt: skip
    row["multiphase"] = multiphase_dispute(graph, payload, k, node)
    if params <= single_max:
        model = path.read_bytes()
        row["single_phase"] = single_phase_dispute(model, input_for(original), k)
    rss = subprocess.run(
        [sys.executable, __file__, "--party-rss", str(path), "--tile-macs", str(tile_macs)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    row["party_peak_rss_bytes"] = int(rss.stdout.split()[-1])
    row["rss_ratio"] = row["party_peak_rss_bytes"] / row["file_bytes"]
    return row


def report(row: dict) -> str:
    mp = row["multiphase"]
    lines = [
        f"{row['model']}: {row['params'] / 1e6:.2f} M params, {row['file_bytes'] / 1e6:.1f} MB, "
        f"{row['nodes']} nodes -> {row['tiled_nodes']} tiled",
        f"  commit {row['commit_s']:.2f} s ({row['commit_mb_s']:.0f} MB/s of model file; from the cache "
        f"{row['commit_cached_s']:.3f} s), "
        f"graph phase {row['graph_phase_s']:.2f} s, largest node {row['largest_node']} "
        f"({row['largest_node_op']}) {row['largest_node_steps']:,} steps in {row['largest_node_vm_s']:.2f} s",
        f"  multi-phase dispute: {mp['wall_s']:.1f} s wall ({mp['cpu_s']:.1f} s CPU), {mp['gas']:,} gas, "
        f"{mp['moves']} moves, "
        f"node {mp['node']} ({mp['vm_steps']:,} VM steps), {mp['winner']}",
        f"  party peak RSS {row['party_peak_rss_bytes'] / 1e6:.0f} MB = {row['rss_ratio']:.2f} x the file",
    ]
    target = TARGETS.get(row["model"])
    if target:
        wall, gas = target
        lines.append(f"  target: wall {mp['wall_s']:.1f} / {wall:.0f} s = {mp['wall_s'] / wall:.2f} "
                     f"(CPU {mp['cpu_s'] / wall:.2f})"
                     + (f"; gas {mp['gas']:,} / {gas:,} = {mp['gas'] / gas:.2f}" if gas else ""))  # fmt: skip
    if row["model"] == "100m":
        ratio = row["rss_ratio"]
        lines.append(
            f"  target: RSS ratio {ratio:.2f} / {RSS_RATIO_TARGET:.0f} = {ratio / RSS_RATIO_TARGET:.2f}"
        )
    if "single_phase" in row:
        sp = row["single_phase"]
        lines.append(
            f"  single-phase dispute: {sp['wall_s']:.1f} s wall ({sp['cpu_s']:.1f} s CPU), "
            f"{sp['gas']:,} gas, "
            f"{sp['vm_steps']:,} VM steps ({sp['winner']}); single / multi: "
            f"wall {sp['wall_s'] / mp['wall_s']:.2f}, VM steps {sp['vm_steps'] / mp['vm_steps']:.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--models", default="mlp,lenet5,1m,10m,100m")
    parser.add_argument("--tile-macs", type=int, default=DEFAULT_TILE_MACS)
    parser.add_argument("--single-phase-max-params", type=int, default=2_000_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--party-rss", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party_rss:
        party_work(args.party_rss, args.tile_macs)
        return
    print(f"k = {args.k}, tiles of at most {args.tile_macs:,} MACs; load average {os.getloadavg()[0]:.1f}")
    warm_up(args.k)
    rows = []
    for name in args.models.split(","):
        rows.append(measure(name, args.k, args.tile_macs, args.single_phase_max_params))
        print(report(rows[-1]), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
