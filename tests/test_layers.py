"""Imports flow one way: a judgejax package imports only packages of lower layers (and itself),
including imports inside functions, and never a lower package it is kept apart from; every
third-party module the package imports is a dependency declared in pyproject.toml (or an extra's)."""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib

import judgejax

# Lowest first; a package may import from any earlier layer, never from its own layer's other
# packages or from a later layer.
LAYERS = [
    {"config", "host", "platforms", "budget"},
    {"sharding", "distributed"},
    {"data", "tokenizer", "model"},
    {"sample", "sources", "fetch"},
    {"general"},
    {"train", "judge"},
    {"eval", "plan"},
    {"pipeline", "launch"},
    {"commands"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Lower packages a package may not import although the layers allow it, and why.
APART = {
    ("judge", "general"): "synthesis does not reach into a benchmark runner's package; callers pass the benchmark data",
}
ROOT = pathlib.Path(judgejax.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"


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
            elif (source, target) in APART:
                bad.append(f"judgejax/{rel}:{line} ({source}) imports {module}: {APART[source, target]}")
    return bad


def _distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement such as `PyYAML==6.0.4`."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def declared_distributions() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = [r for requirements in project.get("optional-dependencies", {}).values() for r in requirements]
    return {_distribution(r) for r in project["dependencies"] + extras}


def undeclared_imports() -> list[str]:
    declared = declared_distributions()
    distributions = importlib.metadata.packages_distributions()
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top == "judgejax" or top in sys.stdlib_module_names:
                continue
            providers = sorted(_distribution(d) for d in distributions.get(top, []))
            if not declared.intersection(providers):
                bad.append(f"judgejax/{path.relative_to(ROOT)}:{line} imports {module} "
                           f"(from {', '.join(providers) or 'no installed distribution'}), not declared")
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


def test_a_package_kept_apart_is_caught(tmp_path, monkeypatch):
    fake = tmp_path / "judgejax"
    (fake / "judge").mkdir(parents=True)
    (fake / "judge" / "bad.py").write_text("from judgejax.general.mtbench_data import load_questions\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    assert upward_imports() == [f"judgejax/judge/bad.py:1 (judge) imports judgejax.general.mtbench_data: {APART['judge', 'general']}"]


def test_every_third_party_import_is_declared():
    assert undeclared_imports() == []


def test_an_undeclared_import_is_caught(tmp_path, monkeypatch):
    fake = tmp_path / "judgejax"
    fake.mkdir()
    (fake / "mod.py").write_text("import json\nimport numpy as np\n\n\ndef f():\n    import yaml.nodes\n    from pydantic import TypeAdapter\n")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy==2.4.6"]\n'
                                             '[project.optional-dependencies]\ndev = ["PyYAML==6.0.4"]\n')
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    monkeypatch.setattr(__import__(__name__), "PYPROJECT", tmp_path / "pyproject.toml")
    assert undeclared_imports() == ["judgejax/mod.py:7 imports pydantic (from pydantic), not declared"]
