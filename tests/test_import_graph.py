"""Imports run one way: nothing in the package imports the repository's benchmarks/, and the
training, CLI and alias modules are in no import cycle (tests/import_graph.py reads the graph
from the source; `python tests/import_graph.py` prints it)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_graph  # noqa: E402

# The rooms this test guards: the CLI, training and the former names of its modules.
ROOMS = {"__main__", "cli", "commands", "training", "train", "recipes", "distribute"}


def test_the_package_never_imports_the_benchmarks():
    edges = import_graph.graph()
    assert "keras_resnets.training.trainer" in edges  # the graph reads the package
    importing = [m for m, targets in edges.items() if any(t == "benchmarks" for t, _ in targets)]
    assert not importing


def test_training_and_the_cli_are_in_no_import_cycle():
    edges = import_graph.graph()
    modules = {m: {t for t, _ in e if t.startswith("keras_resnets")} for m, e in edges.items()}
    for cycle in import_graph.cycles(modules):
        assert not {import_graph.room(m) for m in cycle} & ROOMS, cycle
    rooms = import_graph.room_graph(edges)
    for cycle in import_graph.cycles(rooms):
        assert not set(cycle) & ROOMS, cycle
    # Training sits above data and models, never below them.
    for low in ("data", "models", "layers", "machine"):
        assert not rooms.get(low, set()) & ROOMS, low


def test_the_cycle_finder_finds_cycles():
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]
    assert import_graph.cycles({"a": {"b"}, "b": set()}) == []
