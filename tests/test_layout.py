"""The package layout of docs/architecture.md holds: imports inside prover/ form no cycle (imports
inside functions included), every import points down the layers, and vm/ never imports prover."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What each part of prover/ may import besides itself (docs/architecture.md): cli -> watch -> game -> chain,
# game -> task -> model, everything -> the shared base modules, and everything but model -> vm.
BASE = {"prover.errors", "prover.files", "prover.output"}
ALLOWED = {
    "base": {"vm"},  # prover/files.py wraps vm/files.py
    "model": {"base"},
    "task": {"base", "model", "vm"},
    "chain": {"base"},
    "game": {"base", "chain", "task", "model", "vm"},
    "watch": {"base", "chain", "game", "task", "model", "vm"},
    "cli": {"base", "chain", "game", "watch", "task", "model", "vm"},
    "vm": {"vm"},
}
# model computes without the machine; of vm/ it uses only the zig build of its C kernel (linear.c).
MODULES_ALLOWED = {"model": {"vm.clib", "vm.errors"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for root in ("prover", "vm") for path in (REPO / root).rglob("*.py")}


def type_checking_blocks(tree: ast.Module) -> set[ast.AST]:
    """The nodes under `if TYPE_CHECKING:`: imports for annotations only, never run."""
    blocks = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    return {inner for block in blocks for statement in block.body for inner in ast.walk(statement)}


def imported(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports when it runs, at the top level or inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    annotations_only = type_checking_blocks(tree)
    found = set()
    for node in ast.walk(tree):
        if node in annotations_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module; `from module import name`, the module.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def layer(module: str) -> str:
    if module.startswith("vm"):
        return "vm"
    if module in BASE or module == "prover":
        return "base"
    return module.split(".")[1]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, set(known)) - {name} for name, path in known.items()}


def test_every_module_has_a_layer(graph):
    assert {layer(name) for name in graph} <= set(ALLOWED)


def test_imports_point_down_the_layers(graph):
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if layer(target) != layer(name)
        and layer(target) not in ALLOWED[layer(name)]
        and target not in MODULES_ALLOWED.get(layer(name), set())
    ]
    assert not wrong, "\n".join(sorted(wrong))


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk of `graph` closes, as "a -> b -> a"."""
    found = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                found.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_no_import_cycles(graph):
    cycles = cycles_in(graph)
    assert not cycles, "\n".join(cycles)


def test_the_checks_can_fail(tmp_path):
    """Imports inside functions count, annotation-only imports do not, and a cycle is found."""
    source = tmp_path / "lazy.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import vm.machine\n"
        "def f():\n    from prover.game.agent import next_move\n    import vm.native\n"
    )
    known = {"prover.game.agent", "vm.native", "vm.machine", "prover.game"}
    assert imported(source, known) == {"prover.game.agent", "vm.native"}
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a -> b -> c -> a"]
