"""Which dispute game `prover golden` and `prover run` prepare (`--phases`, prover/task/phases.py):
the multi-phase game for an int8 model by default, the single-phase game for an f32 model or when
asked; what cannot be multi-phase is one error line and writes nothing."""

import json
from pathlib import Path

from dispute_helpers import MODELS, REPO, ok, prover_here

from prover.model.data import sample_digit
from prover.model.modelfile import load_model
from prover.task.commitments import task_graph
from prover.task.graph_trace import trace_graph
from prover.task.run import load_task

F32 = REPO / "models" / "mlp_f32.ggml"


def test_an_int8_model_plays_the_multiphase_game_by_default(tmp_path: Path) -> None:
    digit = sample_digit(0)
    golden = ok(
        prover_here("golden", "--model", str(MODELS["mlp"]), "--data", str(digit), "--basedir", str(tmp_path))
    )
    task = json.loads((tmp_path / "graph.json").read_text())
    assert not (tmp_path / "golden.json").exists()
    assert golden.out.splitlines()[0] == f"G_0 {task['initial_state']}: multi-phase task over 6 nodes"
    assert "final_state" not in task  # the task only: the run adds the claim
    ran = json.loads(ok(prover_here("run", "--basedir", str(tmp_path), "--json")).out)
    assert ran["phases"] == "multi" and ran["node_count"] == 6 and ran["fault_node"] is None
    # The claim is the native graph run's: G_n of its trace; its output is the single-phase run's.
    graph = task_graph(load_model(MODELS["mlp"]))
    trace = trace_graph(graph, load_task(MODELS["mlp"], digit).data)
    assert ran["final_state"] == "0x" + trace.state_hash_at(6).hex()
    single = json.loads(
        ok(
            prover_here(
                "run", "--model", str(MODELS["mlp"]), "--data", str(digit), "--basedir", str(tmp_path / "s"),
                "--phases", "single", "--json",
            )
        ).out
    )  # fmt: skip
    assert single["class"] == ran["class"] == 7
    assert ran["output"] == single["output"]  # the class and the logits: what a single-phase claim posts
    assert not (tmp_path / "s" / "graph.json").exists()
    # A base directory holds one kind of task: the multi-phase task replaces the single-phase one.
    ok(
        prover_here(
            "golden", "--model", str(MODELS["mlp"]), "--data", str(digit), "--basedir", str(tmp_path / "s")
        )
    )
    assert sorted(path.name for path in (tmp_path / "s").iterdir()) == ["graph.json", "graph.json.copy"]


def test_an_f32_model_plays_the_single_phase_game_and_says_why(tmp_path: Path) -> None:
    digit = sample_digit(0)
    golden = ok(
        prover_here("golden", "--model", str(F32), "--data", str(digit), "--basedir", str(tmp_path / "a"))
    )
    note, s0 = golden.out.splitlines()
    assert s0.startswith("S0 0x") and (tmp_path / "a" / "golden.json").exists()
    assert note == (
        f"{F32}: the single-phase game (f32 models are not multi-phase: numpy's f32 is not bit-exact "
        "with the guest's)"
    )
    assert json.loads(ok(prover_here("golden", "--model", str(F32), "--data", str(digit), "--basedir",
                                     str(tmp_path / "a"), "--json")).out)["phases"] == "single"  # fmt: skip
    refused = prover_here(
        "golden",
        "--model",
        str(F32),
        "--data",
        str(digit),
        "--basedir",
        str(tmp_path / "b"),
        "--phases",
        "multi",
    )
    assert refused.code == 1 and refused.err.strip() == (
        "error: f32 models are not multi-phase: numpy's f32 is not bit-exact with the guest's"
    )
    assert not (tmp_path / "b").exists()


def test_a_fault_node_needs_a_multiphase_task_with_that_node(tmp_path: Path) -> None:
    digit = sample_digit(0)
    model = ("--model", str(MODELS["mlp"]), "--data", str(digit))
    ok(prover_here("golden", *model, "--basedir", str(tmp_path / "single"), "--phases", "single"))
    single = prover_here("run", "--basedir", str(tmp_path / "single"), "--fault-node", "2")
    assert single.code == 1 and single.err.startswith("error: --fault-node: the task in ")
    assert not (tmp_path / "single" / "final.json").exists()
    ok(prover_here("golden", *model, "--basedir", str(tmp_path / "multi")))
    beyond = prover_here("run", "--basedir", str(tmp_path / "multi"), "--fault-node", "7")
    assert beyond.code == 1 and beyond.err.strip() == "error: --fault-node 7: the model has nodes 1..6"
    assert "final_state" not in json.loads((tmp_path / "multi" / "graph.json").read_text())
    faulty = json.loads(
        ok(prover_here("run", "--basedir", str(tmp_path / "multi"), "--fault-node", "2", "--json")).out
    )
    honest = json.loads(ok(prover_here("run", *model, "--basedir", str(tmp_path / "honest"), "--json")).out)
    assert faulty["fault_node"] == 2 and faulty["final_state"] != honest["final_state"]
    assert faulty["initial_state"] == honest["initial_state"]
