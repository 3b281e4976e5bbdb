"""Whole disputes over the JSON-RPC node, each party a separate `prover` process with its own base
directory: MLP and LeNet-5, a faulty challenger and a faulty submitter, k = 2 and k = 16, the
agents (`prover dispute`) and the step-by-step commands (`respond`, `step`), a party killed in the
middle of a game. The honest side must win every time."""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from node_process import running_node
from test_guest_models import int8_convnet, int8_mlp

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
MODELS = {"mlp": REPO / "models" / "mlp_int8.ggml", "lenet5": REPO / "models" / "lenet5_int8.ggml"}
# Until the trained models are committed as .ggml files: random-weight int8 networks of the
# guest's tests (an MLP of the MNIST MLP's shape, a small convnet). A dispute does not care what
# the weights are, only that the run is long and real.
STAND_INS = {"mlp": lambda: int8_mlp(hidden=500), "lenet5": int8_convnet}
DEPLOYER, SUBMITTER, CHALLENGER = 0, 1, 2
COMMAND_TIMEOUT_S = 600


def prover(*args: str, rpc: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, **({"PROVER_RPC": rpc} if rpc else {}))
    result = subprocess.run(
        [sys.executable, "-m", "prover.cli", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        env=env,
        cwd=REPO,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"prover {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def spawn(*args: str, rpc: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prover.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PROVER_RPC=rpc),
        cwd=REPO,
    )


def mnist_image(index: int) -> bytes:
    with gzip.open(MNIST_DIR / "t10k-images-idx3-ubyte.gz") as images:
        return images.read()[16 + 784 * index : 16 + 784 * (index + 1)]


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


@pytest.fixture(scope="module")
def honest_runs(tmp_path_factory) -> dict[str, Path]:
    """One golden image and run per model (MNIST test image 0); parties start from copies."""
    runs = {}
    for name, model in MODELS.items():
        basedir = tmp_path_factory.mktemp(f"run-{name}")
        digit = basedir / "digit.raw"
        digit.write_bytes(mnist_image(0))
        if not model.exists():
            model = basedir / f"{name}.ggml"
            model.write_bytes(STAND_INS[name]())
        prover("golden", "--model", str(model), "--data", str(digit), "--basedir", str(basedir))
        prover("run", "--basedir", str(basedir))
        runs[name] = basedir
    return runs


class Game:
    """A deployment and two parties' base directories copied from one honest run."""

    def __init__(self, rpc: str, run: Path, work: Path, k: int) -> None:
        self.rpc = rpc
        self.deployment = work / "deployment.json"
        self.submitter = work / "submitter"
        self.challenger = work / "challenger"
        shutil.copytree(run, self.submitter)
        shutil.copytree(run, self.challenger)
        self.steps = json.loads((run / "final.json").read_text())["steps"]
        self.command("deploy", DEPLOYER, work, "--k", str(k))

    def command(self, name: str, account: int, basedir: Path, *args: str, check: bool = True):
        common = ["--basedir", str(basedir), "--account", str(account), "--deployment", str(self.deployment)]
        return prover(name, *common, *args, rpc=self.rpc, check=check)

    def spawn(self, name: str, account: int, basedir: Path, *args: str) -> subprocess.Popen:
        common = ["--basedir", str(basedir), "--account", str(account), "--deployment", str(self.deployment)]
        return spawn(name, *common, *args, rpc=self.rpc)

    def submit(self, *args: str) -> None:
        self.command("submit", SUBMITTER, self.submitter, *args)

    def status(self) -> dict:
        result = self.command("status", DEPLOYER, self.submitter, "--json")
        return json.loads(result.stdout)["games"]

    def play_with_agents(self, challenger_args: tuple[str, ...] = ()) -> None:
        defender = self.spawn("dispute", SUBMITTER, self.submitter, "--side", "defender")
        challenger = self.spawn(
            "dispute", CHALLENGER, self.challenger, "--side", "challenger", *challenger_args
        )
        for process in (challenger, defender):
            out, err = process.communicate(timeout=COMMAND_TIMEOUT_S)
            assert process.returncode == 0, out + err

    def play_with_commands(self) -> None:
        """As the demo script: respond in turns until one step is left, then step."""
        while True:
            (game,) = self.status()
            left, right = game["interval"]
            if game["winner"] or right - left == 1:
                break
            self.command("respond", SUBMITTER, self.submitter)
            self.command("respond", CHALLENGER, self.challenger)
        if not game["winner"]:
            self.command("step", CHALLENGER, self.challenger)


def assert_won_by(game: Game, side: str) -> None:
    (status,) = game.status()
    assert status["winner"] == side and not status["by_timeout"]
    assert status["round"] <= status["rounds_at_most"]
    assert status["gas"]["defender"] > 0 and status["gas"]["challenger"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "k", "faulty", "players"),
    [
        # k = 2 takes some 20 rounds: the agents play it; k = 16 the step-by-step commands.
        ("mlp", 16, "challenger", "commands"),
        ("mlp", 2, "submitter", "agents"),
        ("lenet5", 16, "submitter", "commands"),
        ("lenet5", 2, "challenger", "agents"),
    ],
)
def test_the_honest_side_wins(rpc_url, honest_runs, tmp_path, model, k, faulty, players):
    game = Game(rpc_url, honest_runs[model], tmp_path, k)
    fault = ("--fault-step", str(game.steps // 3))
    game.submit(*(fault if faulty == "submitter" else ()))
    challenger_fault = fault if faulty == "challenger" else ()
    if players == "agents":
        game.play_with_agents(challenger_fault)
    else:
        game.command("challenge", CHALLENGER, game.challenger, *challenger_fault)
        game.play_with_commands()
    assert_won_by(game, "defender" if faulty == "challenger" else "challenger")


@pytest.mark.slow
def test_an_agreeing_challenger_opens_no_game(rpc_url, honest_runs, tmp_path):
    game = Game(rpc_url, honest_runs["mlp"], tmp_path, 16)
    game.submit()
    result = game.command("challenge", CHALLENGER, game.challenger)
    assert "agree with claim 1" in result.stdout
    assert game.status() == []
    game.submit()  # idempotent: the same claim is found, nothing is posted twice
    assert "already submitted: claim 1" in game.command("submit", SUBMITTER, game.submitter).stdout


@pytest.mark.slow
def test_a_killed_party_resumes_from_its_basedir(rpc_url, honest_runs, tmp_path):
    game = Game(rpc_url, honest_runs["mlp"], tmp_path, 2)
    game.submit()
    fault = ("--fault-step", str(game.steps // 2))
    challenger = game.spawn("dispute", CHALLENGER, game.challenger, "--side", "challenger", *fault)
    defender = game.spawn("dispute", SUBMITTER, game.submitter, "--side", "defender")
    posted = 0
    while posted < 3:  # kill the defender's agent after its third move, in the middle of the game
        line = defender.stdout.readline()
        assert line, defender.stderr.read()
        posted += "posted" in line
    defender.kill()
    defender.communicate()
    (status,) = game.status()
    assert status["winner"] is None and status["round"] >= 3
    resumed = game.spawn("dispute", SUBMITTER, game.submitter, "--side", "defender")
    for process in (challenger, resumed):
        out, err = process.communicate(timeout=COMMAND_TIMEOUT_S)
        assert process.returncode == 0, out + err
    assert_won_by(game, "defender")


def test_dead_endpoint_and_missing_deployment_are_one_line_errors(tmp_path):
    dead = prover("status", "--basedir", str(tmp_path), rpc="http://127.0.0.1:9", check=False)
    assert dead.returncode == 1
    assert dead.stderr.splitlines() == [
        "error: cannot reach JSON-RPC node at http://127.0.0.1:9: connection refused"
    ]
