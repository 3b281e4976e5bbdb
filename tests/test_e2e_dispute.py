"""Whole disputes over the JSON-RPC node with the trained models, each party a separate `prover`
process with its own base directory: MLP and LeNet-5, a faulty challenger and a faulty submitter,
k = 2 and k = 16, the agents (`prover dispute`) and the step-by-step commands (`challenge`,
`respond`, `step`), a party killed in the middle of a game and started again. The honest side must
win every time, and the bonds must end where the outcome says (`finalize`, `withdraw`).

What is not a party's move (deploy, status, finalize, withdraw) runs in this process through the
same entry point, and every party starts from a copy of one honest run per model: both would
otherwise cost seconds of process start-up or tracing per game without testing anything more."""

import re
import signal
from pathlib import Path

import pytest
from dispute_helpers import (
    CHALLENGER,
    COMMAND_TIMEOUT_S,
    SUBMITTER,
    Match,
    advance_time,
    honest_run,
    ok,
    prover,
    prover_here,
    spawn,
)
from node_process import running_node

BOND = 10**18  # `prover deploy`'s default submit and challenge bonds
WINDOW_S = 600


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


class Game(Match):
    """A fresh deployment with a challenge window of WINDOW_S and two parties."""

    def __init__(self, rpc: str, run: Path, work: Path, k: int) -> None:
        super().__init__(rpc, run, work, "--k", str(k), "--window", str(WINDOW_S))

    def fault(self) -> tuple[str, str]:
        return ("--fault-step", str(self.steps // 3))


def agent_finishes(process) -> str:
    out, err = process.communicate(timeout=COMMAND_TIMEOUT_S)
    assert process.returncode == 0, out + err
    return out


def read_until(process, moves: int, word: str) -> None:
    """Read an agent's progress lines until it has made `moves` moves whose line holds `word`."""
    made = 0
    while made < moves:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        made += word in line


def assert_won_by(game: Game, side: str) -> dict:
    (status,) = game.status()["games"]
    assert status["winner"] == side and not status["by_timeout"]
    assert 1 <= status["round"] <= status["rounds_at_most"]
    assert status["gas"]["defender"] > 0 and status["gas"]["challenger"] > 0
    return status


def assert_bonds_paid(game: Game, winner: str) -> None:
    """The money of a finished game: the winner withdraws both bonds (the submitter once its claim
    is final, after the window), the loser nothing; every command is idempotent."""
    submitter = (SUBMITTER, game.submitter)
    challenger = (CHALLENGER, game.challenger)
    if winner == "defender":
        refused = game.here("finalize", *submitter)
        assert refused.code == 1 and "challenge window is open until" in refused.err
        advance_time(game.rpc, WINDOW_S + 1)
        assert "claim 1 is final" in ok(game.here("finalize", *submitter)).out
        assert "claim 1 is already final" in ok(game.here("finalize", *submitter)).out
        payee, loser = submitter, challenger
    else:
        refused = game.here("finalize", *submitter)
        assert refused.code == 1 and refused.err.startswith(
            "error: claim 1 was refuted: it cannot become final"
        )
        payee, loser = challenger, submitter
    assert ok(game.here("withdraw", *payee)).out.startswith(f"withdrew {2 * BOND} wei to ")
    assert ok(game.here("withdraw", *payee)).out.startswith("nothing to withdraw")
    assert ok(game.here("withdraw", *loser)).out.startswith("nothing to withdraw")


@pytest.mark.slow
def test_the_honest_side_wins_step_by_step(rpc_url, tmp_path_factory, tmp_path):
    """MLP, k = 16, a faulty challenger; the parties play with one command per move, as
    scripts/challenge_simple.sh does."""
    game = Game(rpc_url, honest_run("mlp", tmp_path_factory), tmp_path, 16)
    ok(game.party("submit", SUBMITTER, game.submitter))
    opened = ok(game.party("challenge", CHALLENGER, game.challenger, *game.fault()))
    assert "opened game 1 against claim 1" in opened.out
    while True:
        defended = ok(game.party("respond", SUBMITTER, game.submitter))
        if "one step is left" in defended.out:
            break
        assert "posted" in defended.out
        assert "selected piece" in ok(game.party("respond", CHALLENGER, game.challenger)).out
    proved = ok(game.party("step", CHALLENGER, game.challenger))
    assert "the defender won" in proved.out
    status = assert_won_by(game, "defender")
    # The fault is at a third of the run: the game ends on the one step into it.
    assert status["interval"] == [game.steps // 3 - 1, game.steps // 3]
    assert_bonds_paid(game, "defender")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "k", "faulty", "killed"),
    [
        # Each honest side is killed once in the middle of a k = 2 game (about 20 rounds) and
        # started again from its base directory.
        ("mlp", 2, "submitter", "challenger"),
        ("lenet5", 16, "submitter", None),
        ("lenet5", 2, "challenger", "defender"),
    ],
)
def test_the_honest_side_wins_with_agents(rpc_url, tmp_path_factory, tmp_path, model, k, faulty, killed):
    game = Game(rpc_url, honest_run(model, tmp_path_factory), tmp_path, k)
    ok(game.party("submit", SUBMITTER, game.submitter, *(game.fault() if faulty == "submitter" else ())))
    sides = {
        "defender": (SUBMITTER, game.submitter, ()),
        "challenger": (CHALLENGER, game.challenger, game.fault() if faulty == "challenger" else ()),
    }

    def agent(side: str):
        account, basedir, fault = sides[side]
        return game.spawn("dispute", account, basedir, "--side", side, *fault)

    agents = {side: agent(side) for side in sides}
    if killed:
        # Kill the agent after its third move, in the middle of the game (k = 2: about 20 rounds).
        read_until(agents[killed], 3, "posted" if killed == "defender" else "selected")
        agents[killed].send_signal(signal.SIGKILL)
        agents[killed].communicate()
        (status,) = game.status()["games"]
        assert status["winner"] is None and status["round"] >= 3
        agents[killed] = agent(killed)
    outputs = {side: agent_finishes(process) for side, process in agents.items()}
    honest = "defender" if faulty == "challenger" else "challenger"
    assert f"the {honest} won" in outputs[honest]
    if killed == "challenger":
        assert "already challenging: game 1 against claim 1" in outputs["challenger"]
    assert_won_by(game, honest)
    assert_bonds_paid(game, honest)


@pytest.mark.slow
def test_an_agreeing_challenger_opens_no_game(rpc_url, tmp_path_factory, tmp_path):
    game = Game(rpc_url, honest_run("mlp", tmp_path_factory), tmp_path, 16)
    ok(game.party("submit", SUBMITTER, game.submitter))
    agreed = ok(game.party("challenge", CHALLENGER, game.challenger))
    assert "agree with claim 1" in agreed.out
    assert game.status()["games"] == []
    # Idempotent: the same claim is found again, nothing is posted twice.
    assert "already submitted: claim 1" in ok(game.party("submit", SUBMITTER, game.submitter)).out
    assert [claim["claim"] for claim in game.status()["claims"]] == [1]


def test_a_node_lost_mid_command_is_one_error_line(tmp_path):
    """A waiting agent whose node goes away ends with one line and exit 1, not a traceback."""
    with running_node() as url:
        ok(prover_here("deploy", "--rpc", url, "--basedir", str(tmp_path)))
        agent = spawn("dispute", "--side", "defender", "--basedir", str(tmp_path), rpc=url)
        assert agent.stdout.readline() == "waiting for a challenge of our claims\n"
    _, err = agent.communicate(timeout=COMMAND_TIMEOUT_S)
    assert agent.returncode == 1
    # Refused, or closed when the node died in the middle of a request of the agent's.
    (line,) = err.splitlines()
    assert re.fullmatch(f"error: cannot reach JSON-RPC node at {url}: connection (refused|closed)", line)


def test_a_dead_endpoint_is_one_error_line(tmp_path):
    # A deployment file is there (local files are checked before the node is reached).
    (tmp_path / "deployment.json").write_text('{"dispute_game": "0x' + "00" * 20 + '"}')
    dead = prover("status", "--basedir", str(tmp_path), rpc="http://127.0.0.1:9")
    assert dead.code == 1
    assert dead.err.splitlines() == [
        "error: cannot reach JSON-RPC node at http://127.0.0.1:9: connection refused"
    ]
