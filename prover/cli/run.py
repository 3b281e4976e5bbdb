"""`prover golden` and `prover run`: a task's golden image, then its run in the VM
(prover/task/run.py); `prover graph`: a graph run for multi-phase games (prover/task/graph_run.py)."""

from collections.abc import Callable
from pathlib import Path

import click

from prover.cli.options import background_option, json_option
from prover.errors import ProverError
from prover.model.tiling import DEFAULT_TILE_MACS
from prover.output import Output, Record
from prover.task.graph_run import write_graph_run
from prover.task.guest.build import GUEST_ELF
from prover.task.run import DEFAULT_CHECKPOINT_INTERVAL, load_task, run_task, write_golden
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


@click.command("golden")
@task_options(".ggml model file")
@background_option
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also put the program, the model and the input in this content-addressed store (`prover watch`).",
)
@json_option
def golden_command(
    model_path: Path, data_path: Path, basedir: Path, background: str, store_dir: Path | None, out: Output
) -> None:
    """Lay out the guest, the model and the input (in the model's input convention) in VM memory;
    write golden.json; print S0 (--json: golden.json and how the input was prepared)."""
    golden = _golden(basedir, model_path, data_path, background, out, store_dir)
    text = f"S0 {golden['S0']}"
    if store_dir is not None:
        text += f"\nstored the program, model and input in {store_dir}"
    out.emit(Record(golden, text))


def _golden(
    basedir: Path,
    model_path: Path,
    data_path: Path,
    background: str,
    out: Output,
    store_dir: Path | None = None,
) -> dict:
    """golden.json of the task written into `basedir`, with "input": how the input was prepared
    (and the task's data put in the store at `store_dir`)."""
    task = load_task(model_path, data_path, background)
    if task.prepared is not None and task.prepared.note:
        out.note(task.prepared.note)
    golden = write_golden(basedir, task.model, task.data)
    if store_dir is not None:
        Store(store_dir).put_task(GUEST_ELF, task.model, task.data)
    return {**golden, "input": task.prepared.to_json() if task.prepared else None}


@click.command("run")
@click.option(
    "--basedir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@click.option("--model", "model_path", type=click.Path(path_type=Path), help="build the golden image first")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help="with --model: the input")
@click.option(
    "--interval",
    type=click.IntRange(min=1),
    default=DEFAULT_CHECKPOINT_INTERVAL,
    show_default=True,
    help="steps between checkpoints",
)
@background_option
@json_option
def run_command(
    basedir: Path,
    model_path: Path | None,
    data_path: Path | None,
    interval: int,
    background: str,
    out: Output,
) -> None:
    """Run the golden image to its exit; write final.json and the checkpoints; print the class
    (--json: final.json, whatever the exit code)."""
    if (model_path is None) != (data_path is None):
        raise ProverError("--model and --data go together (golden image + run in one go)")
    if model_path is not None and data_path is not None:
        _golden(basedir, model_path, data_path, background, out)
    final = run_task(basedir, interval, progress=not out.as_json)
    summary = f"SN {final['SN']} after {final['steps']} steps"
    if final["exit_code"] != 0 and not out.as_json:
        click.echo(summary)
        raise ProverError(
            f"the guest exited with code {final['exit_code']} ({final['exit_name']}): no output"
        )
    out.emit(Record(final, f"{summary}\nclass {final.get('class')}"))


@click.command("graph")
@task_options(".ggml model file (int8)")
@click.option(
    "--fault-node",
    type=click.IntRange(min=1),
    default=None,
    help="Dishonest party: corrupt this node's output (1-based) and compute on from it.",
)
@click.option(
    "--tile-macs",
    type=click.IntRange(min=1),
    default=DEFAULT_TILE_MACS,
    show_default=True,
    help="Split LINEAR nodes larger than this many multiply-accumulates into tiles (both sides: the same).",
)
@json_option
def graph_command(
    model_path: Path, data_path: Path, basedir: Path, fault_node: int | None, tile_macs: int, out: Output
) -> None:
    """Commit to the model per node and run its graph natively on the input: the claim of a
    multi-phase game (G_n and the output); write graph.json (--json: graph.json)."""
    run = write_graph_run(basedir, model_path, data_path, fault_node, tile_macs, progress=not out.as_json)
    out.emit(
        Record(
            run,
            f"G_{run['node_count']} {run['final_state']} over {run['node_count']} nodes\n"
            f"modelRoot {run['model_root']}\nclass {run['class']}",
        )
    )
