"""One forward pass of a language model as a task: the golden image of the model and the pass's
token ids, run to its exit in the VM (`prover golden` + `prover run` in `basedir`), and its output
compared with the numpy engine's, byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.task.run import run_task, write_golden


def verify_forward(basedir: Path, model: bytes, ids: np.ndarray, expected: np.ndarray) -> dict[str, object]:
    """Golden + run of the pass in `basedir`; a ProverError unless the VM's output tensor equals
    `expected` (the engine's output, in the output tensor's dtype). Returns S0, SN and the steps."""
    golden = write_golden(basedir, model, ids.astype(">i4").tobytes())
    final = run_task(basedir, progress=False)
    if final["exit_code"] != 0:
        raise ProverError(f"the guest exited with {final['exit_code']} ({final['exit_name']})")
    output = bytes.fromhex(str(final["output"])[2:])[4:]
    want = expected.astype(expected.dtype.newbyteorder(">")).tobytes()
    if output != want:
        raise ProverError("the VM's output differs from the engine's")
    return {"S0": golden["S0"], "SN": final["SN"], "steps": final["steps"]}
