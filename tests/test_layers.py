"""Imports flow one way: a judgejax package imports only packages of lower layers (and itself),
including imports inside functions."""

from __future__ import annotations

import ast
import pathlib

import judgejax

# Lowest first; a package may import from any earlier layer, never from its own layer's other
# packages or from a later layer.
LAYERS = [
    {"config", "host"},
    {"sharding", "distributed"},
    {"data", "tokenizer", "model"},
    {"sample", "sources"},
    {"general"},
    {"train", "judge"},
    {"eval", "plan"},
    {"pipeline", "launch"},
    {"commands"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT = pathlib.Path(judgejax.__file__).parent


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "judgejax" and len(parts) > 1 else None


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        source = rel.parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = _package(module)
            if target is None or target == source:
                continue
            if RANK[target] >= RANK[source]:
                bad.append(f"judgejax/{rel}:{line} ({source}, layer {RANK[source]}) imports {module} (layer {RANK[target]})")
    return bad


def test_every_package_has_a_layer():
    packages = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert packages - {"__init__"} == set(RANK)


def test_imports_go_downward_only():
    assert upward_imports() == []


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    fake = tmp_path / "judgejax"
    (fake / "model").mkdir(parents=True)
    (fake / "model" / "bad.py").write_text("def f():\n    from judgejax.train.steps import sft_step\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    assert upward_imports() == ["judgejax/model/bad.py:2 (model, layer 2) imports judgejax.train.steps (layer 5)"]
