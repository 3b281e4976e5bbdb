"""A task's golden image built into a base directory, then executed in the VM to its exit
(`prover golden` and `prover run`, prover/cli/run.py).

A party's base directory holds, after `prover golden`:
    golden.json        S0, the program / input / model roots, the memory map
    golden.snapshot    the initial machine (the VM's snapshot format)
and after `prover run`:
    checkpoints/       the VM's checkpoints of the run, from which any step's state and witness come
    final.json         SN, steps, exit code, output bytes, the output's top-tree proof, the class
"""

import shutil
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from prover.errors import ProverError
from prover.model.convention import Prepared
from prover.model.data import prepare_input
from prover.model.graph import Graph
from prover.model.modelfile import ModelFormatError, load_model
from prover.task.basedir import (
    CHECKPOINTS,
    FINAL_JSON,
    GOLDEN_JSON,
    GOLDEN_SNAPSHOT,
    GRAPH_JSON,
    GRAPH_VALUES,
    read_json,
    write_json,
)
from prover.task.golden import (
    OUTPUT_BASE,
    REGION_HEADER,
    build_golden,
    top_tree_siblings,
    verify_output_proof,
)
from prover.task.guest.build import GUEST_ELF
from prover.task.sealed import remove_sealed
from vm import Machine, SnapshotError
from vm.snapshot import load_snapshot, save_snapshot
from vm.trace import Trace

DEFAULT_CHECKPOINT_INTERVAL = 100_000
MAX_STEPS = 2_000_000_000  # a guest that has not exited by then is looping: the run is refused


class Task(NamedTuple):
    graph: Graph  # the model as its file has it, memory-mapped (a gigabyte file is not copied)
    data: bytes  # the input payload, as the guest reads it
    prepared: Prepared | None  # how the input was brought to the model's convention


def load_task(model_path: Path, data_path: Path, background: str = "auto") -> Task:
    """The model and the input payload for it: `--data` converted by
    prover.model.data.prepare_input for the model's input, as `prover predict` does (a PNG/JPEG
    resized to the input, a .npy, or raw bytes of the tensor's exact size; the other polarity than
    the model's inverted), then laid out as the guest reads it (the tensor's dtype, big-endian). A
    model the reader rejects is refused here: without its input tensor there is no way to convert
    the data."""
    try:
        graph = load_model(model_path)
    except ModelFormatError as exc:
        raise ProverError(f"{model_path}: not a valid model: byte {exc.offset}: {exc.problem}") from None
    tensor = graph.tensors[graph.input]
    values, prepared = prepare_input(data_path, graph, background)
    return Task(graph, values.astype(tensor.dtype.numpy.newbyteorder(">")).tobytes(), prepared)


def write_golden(basedir: Path, model: bytes, data: bytes, program: Path = GUEST_ELF) -> dict[str, object]:
    """Build the golden image and write its snapshot and golden.json into `basedir`; returns the JSON.
    An earlier run's results in `basedir` (final.json, checkpoints) belong to another image: they
    are removed."""
    image = build_golden(model, data, program)
    basedir.mkdir(parents=True, exist_ok=True)
    (basedir / FINAL_JSON).unlink(missing_ok=True)
    remove_sealed(basedir / GRAPH_JSON)  # a base directory holds one kind of run
    (basedir / GRAPH_VALUES).unlink(missing_ok=True)
    shutil.rmtree(basedir / CHECKPOINTS, ignore_errors=True)
    save_snapshot(image.machine, basedir / GOLDEN_SNAPSHOT)
    golden = image.to_json()
    write_json(basedir / GOLDEN_JSON, golden)
    return golden


# docs/guest.md's exit codes (a test checks them against guest.h) and the VM's traps (docs/machine.md).
EXIT_CODES = {
    0: "OK",
    1: "ERR_INPUT_REGION",
    2: "ERR_MODEL_REGION",
    3: "ERR_TRUNCATED",
    4: "ERR_MAGIC",
    5: "ERR_VERSION",
    6: "ERR_LIMITS",
    7: "ERR_METADATA",
    8: "ERR_TENSOR",
    9: "ERR_DATA_OFFSET",
    10: "ERR_NODE",
    11: "ERR_DANGLING",
    12: "ERR_NOT_READY",
    13: "ERR_OUTPUT_TENSOR",
    14: "ERR_SHAPE",
    15: "ERR_ATTRIBUTE",
    16: "ERR_QUANT_PARAM",
    17: "ERR_OUT_OF_MEMORY",
    18: "ERR_GRAPH_IO",
    19: "ERR_HEADER",
    20: "ERR_INDEX",
    0xF1: "INVALID_INSTRUCTION",
    0xF2: "DIVISION_BY_ZERO",
    0xF3: "UNALIGNED_ACCESS",
    0xF4: "UNALIGNED_PC",
}


def output_payload(machine: Machine) -> bytes:
    """The output region's payload (docs/memory-map.md): [u32 class][output tensor bytes]."""
    length = machine.memory.read_word(OUTPUT_BASE)
    if length > (1 << 28) - REGION_HEADER:
        raise ProverError(f"the output region claims {length} bytes: larger than its region")
    return machine.memory.read(OUTPUT_BASE + REGION_HEADER, length)


def run_task(basedir: Path, interval: int = DEFAULT_CHECKPOINT_INTERVAL, progress: bool = True) -> dict:
    """Run the golden image of `basedir` to its exit with checkpoints (saved in basedir/checkpoints)
    and write final.json; returns its content."""
    try:
        machine = load_snapshot(basedir / GOLDEN_SNAPSHOT)
    except SnapshotError as exc:  # its message names the file
        raise ProverError(f"{exc}: no golden image; run `prover golden` first") from None
    golden = read_json(basedir / GOLDEN_JSON, "a golden image (run `prover golden` first)")
    if "0x" + machine.state_hash().hex() != golden["S0"]:
        raise ProverError(f"{basedir / GOLDEN_SNAPSHOT}: its state hash is not golden.json's S0")
    return record_run(basedir, machine, interval, progress)


def record_run(basedir: Path, machine: Machine, interval: int, progress: bool) -> dict:
    """Run the golden image `machine` to its exit with a checkpoint every `interval` steps (saved in
    basedir/checkpoints), write final.json and return it."""
    with tqdm(desc="run", unit="step", unit_scale=True, disable=not progress, leave=False) as bar:
        trace = Trace.record(
            machine,
            interval=interval,
            max_steps=MAX_STEPS,
            progress=lambda done: bar.update(done - bar.n),
        )
    if not trace.exited:
        raise ProverError(f"the guest did not exit within {MAX_STEPS} steps")
    final_machine = trace.machine_at(trace.steps)  # replayed from the last checkpoint
    if final_machine.state.encode() != trace.final_state:
        raise RuntimeError("the runner's machine is not the trace's final state")
    checkpoints = basedir / CHECKPOINTS
    shutil.rmtree(checkpoints, ignore_errors=True)
    trace.save(checkpoints)
    final = final_report(final_machine)
    write_json(basedir / FINAL_JSON, final)
    return final


def final_report(final_machine: Machine) -> dict:
    """final.json of a run that ended in `final_machine`: SN, steps, exit code, output and its proof."""
    output = output_payload(final_machine)
    siblings = top_tree_siblings(final_machine.memory.proof(OUTPUT_BASE))
    if not verify_output_proof(output, siblings, final_machine.state.mem_root):
        raise RuntimeError("the output's top-tree proof does not verify against the final memRoot")
    state = final_machine.state
    return {
        "SN": "0x" + final_machine.state_hash().hex(),
        "steps": state.step,
        "exit_code": state.exit_code,
        "exit_name": EXIT_CODES.get(state.exit_code, "unknown"),
        "output": "0x" + output.hex(),
        "output_proof": ["0x" + sibling.hex() for sibling in siblings],
        "mem_root": "0x" + state.mem_root.hex(),
        "class": int.from_bytes(output[:4], "big") if state.exit_code == 0 and len(output) >= 4 else None,
    }
