"""The package's shape, read from its source: imports run one way, and stylizing never reaches training."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def module_names() -> dict[str, Path]:
    """fst's modules by dotted name (a package by its own name)."""
    found = {}
    for path in (REPO / "fst").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The fst modules a file imports anywhere in it (inside functions too), explicitly."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "fst":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_no_import_circle():
    edges = graph()
    circles = sorted(name for name in edges if name in reachable(edges, name))
    assert not circles, f"modules on an import circle: {circles}"


def test_stylizing_never_reaches_training():
    """fst run, fst video and fst serve, and the pipeline under them, load no VGG19 and no training code."""
    edges = graph()
    for start in ("fst.inference", "fst.cli.run", "fst.video", "fst.serve.app", "fst.runners"):
        assert not {m for m in reachable(edges, start) if m.startswith("fst.training")}, start


def test_scripts_import_no_private_names():
    for path in sorted((REPO / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fst"):
                assert not [a.name for a in node.names if a.name.startswith("_")], path.name
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                assert node.value.id not in {"fst", "tiling", "images", "styles", "inference", "network", "export",
                                             "strokes", "train", "gatys"}, f"{path.name}: {node.value.id}.{node.attr}"


def test_scripts_leave_the_import_path_alone():
    """Scripts import fst as installed; none edits sys.path (device_train.py restarts with PYTHONPATH)."""
    for path in sorted((REPO / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name):
                assert node.value.id != "sys", f"{path.name} uses sys.path"
