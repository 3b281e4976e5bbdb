"""`prover golden` and `prover run` end to end on a small int8 model."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_guest_models import images, int8_mlp, native_guest

from prover.cli.main import cli
from prover.task.golden import initial_state_hash, region_root, verify_output_proof
from prover.task.guest.native import NativeGuest
from vm.snapshot import load_snapshot
from vm.trace import Trace

SINGLE = ("--phases", "single")  # the golden image in the VM (an int8 model's default: multi-phase)

__all__ = ["native_guest"]  # the fixture, imported for this module


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("task")
    (directory / "model.ggml").write_bytes(int8_mlp())
    (directory / "image.bin").write_bytes(images(1)[0])
    return directory / "model.ggml", directory / "image.bin"


def prover(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_golden_then_run(task: tuple[Path, Path], tmp_path: Path, native_guest: NativeGuest) -> None:
    model, data = task
    printed = prover(
        "golden", "--model", str(model), "--data", str(data), "--basedir", str(tmp_path), *SINGLE
    )
    golden = json.loads((tmp_path / "golden.json").read_text())
    assert printed.strip() == f"S0 {golden['S0']}"
    roots = [bytes.fromhex(golden[name][2:]) for name in ("program_root", "input_root", "model_root")]
    # The machine's slot roots equal the pure region roots a contract would compute.
    assert roots[1] == region_root(data.read_bytes())
    assert roots[2] == region_root(model.read_bytes())
    assert golden["S0"] == "0x" + initial_state_hash(*roots).hex()
    assert load_snapshot(tmp_path / "golden.snapshot").state_hash().hex() == golden["S0"][2:]

    printed = prover("run", "--basedir", str(tmp_path))
    final = json.loads((tmp_path / "final.json").read_text())
    expected = native_guest.run(model.read_bytes(), data.read_bytes())
    assert final["exit_code"] == 0
    assert final["output"] == "0x" + expected.output.hex()
    assert final["class"] == expected.predicted_class
    assert f"class {expected.predicted_class}" in printed.splitlines()
    siblings = [bytes.fromhex(h[2:]) for h in final["output_proof"]]
    assert verify_output_proof(expected.output, siblings, bytes.fromhex(final["mem_root"][2:]))

    trace = Trace.load(tmp_path / "checkpoints")
    assert trace.steps == final["steps"] > 0
    assert "0x" + trace.state_hash_at(final["steps"]).hex() == final["SN"]
    assert trace.state_hash_at(0).hex() == golden["S0"][2:]


def test_run_with_model_and_data_is_golden_plus_run(task: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = task
    one_go, two_steps = tmp_path / "one", tmp_path / "two"
    prover("run", "--model", str(model), "--data", str(data), "--basedir", str(one_go), "--json", *SINGLE)
    prover("golden", "--model", str(model), "--data", str(data), "--basedir", str(two_steps), *SINGLE)
    prover("run", "--basedir", str(two_steps), "--interval", "7777")
    for name in ("golden.json", "final.json"):
        assert json.loads((one_go / name).read_text()) == json.loads((two_steps / name).read_text())


def test_user_errors_are_one_line(task: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = task
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--basedir", str(tmp_path)])
    assert result.exit_code != 0 and "prover golden" in str(result.exception)
    assert str(result.exception).count(str(tmp_path)) == 1  # the missing file, named once
    result = runner.invoke(cli, ["run", "--model", str(model), "--basedir", str(tmp_path)])
    assert "--model and --data go together" in str(result.exception)
    result = runner.invoke(cli, ["golden", "--model", str(tmp_path / "missing"), "--data", str(model)])
    assert "cannot read the model" in str(result.exception)
