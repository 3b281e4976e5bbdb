"""Which dispute game a task plays (`prover golden/run --phases`, docs/dispute-game.md, "Which
game"): the multi-phase game (a dissection over the graph's nodes computed natively, then the VM
game on one node) or the single-phase game (the whole inference in the VM).

The rule of `auto`, the default: an int8 model plays the multi-phase game; an f32 model plays the
single-phase game, because the native engine's f32 is the host's floating point, which agrees
with the guest's soft-float on the class but not bit for bit, and the graph phase needs every
honest party to get the same bytes for every node. `single` forces the whole-inference game (the
small case, and comparisons); `multi` on a model that cannot be a graph task is an error.
"""

from prover.errors import ProverError
from prover.model.graph import Graph
from prover.task.commitments import check_graph_task

AUTO, SINGLE, MULTI = "auto", "single", "multi"
CHOICES = (AUTO, SINGLE, MULTI)


def choose_phases(graph: Graph, requested: str, where: str) -> tuple[str, str | None]:
    """SINGLE or MULTI for the model `graph` (read from `where`), and a note for a person when
    `auto` fell back to the single-phase game (why), else None."""
    if requested == SINGLE:
        return SINGLE, None
    try:
        check_graph_task(graph)
    except ProverError as exc:
        if requested == MULTI:
            raise
        return SINGLE, f"{where}: the single-phase game ({exc})"
    return MULTI, None
