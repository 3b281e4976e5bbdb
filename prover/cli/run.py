"""`prover golden` and `prover run`: a task, then its run: for the multi-phase game (an int8
model, by default) the graph task and its native run (prover/task/graph_run.py), for the
single-phase game the golden image and its run in the VM (prover/task/run.py); which one is
`--phases` (prover/task/phases.py). `prover graph`: the graph task and its run in one go."""

from collections.abc import Callable
from pathlib import Path

import click

from prover.cli.options import background_option, json_option
from prover.errors import ProverError
from prover.model.tiling import DEFAULT_TILE_MACS
from prover.output import Output, Record
from prover.task.basedir import GRAPH_JSON
from prover.task.graph_run import run_graph, write_graph_run, write_graph_task
from prover.task.guest.build import GUEST_ELF, NODE_ELF
from prover.task.phases import AUTO, CHOICES, MULTI, choose_phases
from prover.task.run import DEFAULT_CHECKPOINT_INTERVAL, load_task, run_task, write_golden
from prover.task.sealed import sealed_exists
from prover.watch.store import Store


def task_options(model_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--model and --data (required) and --basedir: what a command lays out, and where."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(
            (
                click.option(
                    "--model", "model_path", type=click.Path(path_type=Path), required=True, help=model_help
                ),
                click.option(
                    "--data",
                    "data_path",
                    type=click.Path(path_type=Path),
                    required=True,
                    help="input: PNG/JPEG, .npy or raw",
                ),
                click.option(
                    "--basedir",
                    type=click.Path(file_okay=False, path_type=Path),
                    default=Path("."),
                    show_default=True,
                ),
            )
        ):
            command = option(command)
        return command

    return decorate


def tile_macs_option(command: Callable[..., None]) -> Callable[..., None]:
    """--tile-macs: a graph task's tile size (part of the committed model: both sides alike)."""
    return click.option(
        "--tile-macs",
        type=click.IntRange(min=1),
        default=DEFAULT_TILE_MACS,
        show_default=True,
        help="Multi-phase: split LINEAR and CONV2D nodes larger than this many multiply-accumulates into "
        "tiles (both sides: the same).",
    )(command)


def fault_node_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--fault-node",
        type=click.IntRange(min=1),
        default=None,
        help="Multi-phase, dishonest party: corrupt this node's output (1-based) and compute on from it.",
    )(command)


def phases_options(command: Callable[..., None]) -> Callable[..., None]:
    """--phases and --tile-macs: which dispute game the task plays, and a graph task's tile size."""
    return click.option(
        "--phases",
        type=click.Choice(CHOICES),
        default=AUTO,
        show_default=True,
        help="The dispute game: multi (graph phase, then one node in the VM), single (the whole "
        "inference in the VM); auto: multi for int8 models, single for f32 models.",
    )(tile_macs_option(command))


@click.command("golden")
@task_options(".ggml model file")
@phases_options
@background_option
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also put the program, the model and the input in this content-addressed store (`prover watch`).",
)
@json_option
def golden_command(
    model_path: Path,
    data_path: Path,
    basedir: Path,
    phases: str,
    tile_macs: int,
    background: str,
    store_dir: Path | None,
    out: Output,
) -> None:
    """The task: for the multi-phase game, the model's commitment per node and the input (G_0);
    for the single-phase game, the golden image in VM memory (S0). Writes graph.json or
    golden.json (--json: it, with "phases" and how the input was prepared)."""
    task = _golden(basedir, model_path, data_path, phases, tile_macs, background, out, store_dir)
    if task["phases"] == MULTI:
        text = (
            f"G_0 {task['initial_state']}: multi-phase task over {task['node_count']} nodes\n"
            f"modelRoot {task['model_root']}"
        )
    else:
        text = f"S0 {task['S0']}"
    out.emit(Record(task, text))


def _golden(
    basedir: Path,
    model_path: Path,
    data_path: Path,
    phases: str,
    tile_macs: int,
    background: str,
    out: Output,
    store_dir: Path | None = None,
) -> dict:
    """The task written into `basedir` (graph.json or golden.json), with "phases" and "input": how
    the input was prepared; the task's data also put in the store at `store_dir`."""
    given = load_task(model_path, data_path, background)
    chosen, why = choose_phases(given.graph, phases, str(model_path))
    if why is not None:
        out.note(why)
    if given.prepared is not None and given.prepared.note:
        out.note(given.prepared.note)
    if chosen == MULTI:
        task = write_graph_task(
            basedir, model_path, given.graph, given.data, tile_macs, out.warn, progress=not out.as_json
        )
        if store_dir is not None:
            model_root = bytes.fromhex(str(task["model_root"])[2:])
            model = _read_model(model_path)
            Store(store_dir).put_graph_task(NODE_ELF, model, given.data, model_root, tile_macs)
    else:
        task = write_golden(basedir, _read_model(model_path), given.data)
        if store_dir is not None:
            Store(store_dir).put_task(GUEST_ELF, _read_model(model_path), given.data)
    return {**task, "phases": chosen, "input": given.prepared.to_json() if given.prepared else None}


def _read_model(model_path: Path) -> bytes:
    try:
        return model_path.read_bytes()
    except OSError as exc:
        raise ProverError(f"{model_path}: cannot read the model ({exc.strerror})") from None


@click.command("run")
@click.option(
    "--basedir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@click.option("--model", "model_path", type=click.Path(path_type=Path), help="write the task first")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help="with --model: the input")
@click.option(
    "--interval",
    type=click.IntRange(min=1),
    default=DEFAULT_CHECKPOINT_INTERVAL,
    show_default=True,
    help="Single-phase: steps between checkpoints.",
)
@fault_node_option
@phases_options
@background_option
@json_option
def run_command(
    basedir: Path,
    model_path: Path | None,
    data_path: Path | None,
    interval: int,
    fault_node: int | None,
    phases: str,
    tile_macs: int,
    background: str,
    out: Output,
) -> None:
    """Run the task: a graph task natively, node by node (graph.json gets the claim: G_n, the
    output, the class); a golden image in the VM to its exit (final.json and the checkpoints).
    Prints the class (--json: graph.json or final.json, whatever the exit code)."""
    if (model_path is None) != (data_path is None):
        raise ProverError("--model and --data go together (the task and its run in one go)")
    if model_path is not None and data_path is not None:
        _golden(basedir, model_path, data_path, phases, tile_macs, background, out)
    if sealed_exists(basedir / GRAPH_JSON):
        run = run_graph(basedir, fault_node, out.warn, progress=not out.as_json)
        out.emit(Record({**run, "phases": MULTI}, _claim_text(run)))
        return
    if fault_node is not None:
        raise ProverError(
            f"--fault-node: the task in {basedir} is single-phase (a fault there is --fault-step of "
            "submit, challenge or dispute)"
        )
    final = run_task(basedir, interval, progress=not out.as_json)
    summary = f"SN {final['SN']} after {final['steps']} steps"
    if final["exit_code"] != 0 and not out.as_json:
        click.echo(summary)
        raise ProverError(
            f"the guest exited with code {final['exit_code']} ({final['exit_name']}): no output"
        )
    out.emit(Record(final, f"{summary}\nclass {final.get('class')}"))


def _claim_text(run: dict) -> str:
    return (
        f"G_{run['node_count']} {run['final_state']} over {run['node_count']} nodes\n"
        f"modelRoot {run['model_root']}\nclass {run['class']}"
    )


@click.command("graph")
@task_options(".ggml model file (int8)")
@fault_node_option
@tile_macs_option
@background_option
@json_option
def graph_command(
    model_path: Path,
    data_path: Path,
    basedir: Path,
    fault_node: int | None,
    tile_macs: int,
    background: str,
    out: Output,
) -> None:
    """`prover run --phases multi --model M --data D` in one command: commit to the model per node
    and run its graph natively on the input; write graph.json (--json: graph.json)."""
    run = write_graph_run(
        basedir, model_path, data_path, fault_node, tile_macs, not out.as_json, out.warn, background
    )
    out.emit(Record(run, _claim_text(run)))


@click.command("commit")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@tile_macs_option
@click.option("--force", is_flag=True, help="compute again even when the commitment cache holds it")
@json_option
def commit_command(model_path: Path, tile_macs: int, force: bool, out: Output) -> None:
    """Commit to an int8 model per node and tile once, at native speed (C keccak), and store the
    commitment in the cache every later command of a multi-phase game reads (checked against the
    model before use: prover/task/commitment_cache.py); print modelRoot, time and MB/s."""
    from prover.task.graph_run import commit_model_file

    result = commit_model_file(model_path, tile_macs, force, out.warn, progress=not out.as_json)
    out.emit(
        Record(
            result,
            f"{model_path}: modelRoot {result['model_root']}, {result['node_count']} nodes "
            f"(tile {tile_macs} MACs); a {result['model_bytes'] / 1e6:.1f} MB model, "
            f"{result['bytes'] / 1e6:.1f} MB of node files hashed in {result['seconds']:.1f} s "
            f"({result['mb_per_s']:.0f} MB/s); cached in {result['cache']}",
        )
    )
