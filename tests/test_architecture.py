"""The import rules of the design's layout, read from the source with ``ast`` (nothing is imported).

Imports flow one way (``inference`` <- ``eval`` <- ``data_gen``; ``training`` reads only the
dataset schema), no two modules import each other, and no module reaches into another's
private names: each of those would make the next change to one module break another.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("inference", "eval", "data_gen", "training", "leapt", "benchmarks", "serving")

#: package -> the project packages it must not import (README.md, "Layout")
FORBIDDEN = {
    "inference": ("eval", "data_gen", "training"),
    "eval": ("data_gen", "training"),
    "serving": ("data_gen", "training"),
}
#: what ``training`` may take from the engine side, (module, name) -> why
TRAINING_ALLOWED = {
    ("inference.trace", "SEGMENT_KINDS"): "an SFT row's segments are trace segments",
    ("inference.trace", "NATURAL_END_FINISHES"): "a row's finish is a trace finish",
    ("inference.args", "EMBEDDED_MODEL"): "`leapt train` accepts the engine's default model",
    ("inference.models", "embedded_model_dir"): "... and converts it the engine's way",
}


@dataclass(frozen=True)
class Import:
    """One imported name (``name`` is None for ``import module``)."""

    source: str  # importing module
    file: str  # its path, relative to the project root
    line: int
    target: str  # imported module (the longest project module the statement names)
    name: str | None
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs, so no runtime edge

    def where(self) -> str:
        shown = f"{self.target}.{self.name}" if self.name else self.target
        return f"{self.file}:{self.line} imports {shown}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def statements(tree: ast.AST, guarded: bool = False):
    """Every import statement at any depth (functions, classes, ifs), with its TYPE_CHECKING flag."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, guarded
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.body:
                yield from statements(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from statements(ast.Module(body=[child], type_ignores=[]), guarded)
        else:
            yield from statements(node, guarded)


def known(module: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``module`` that is a project module."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path], root: Path) -> list[Import]:
    """The project imports of one file, plus ``mod._name`` reads through an imported module."""
    found = []
    file = str(path.relative_to(root))
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    bound: dict[str, str] = {}  # local name -> the project module it names
    for node, guarded in statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if target := known(alias.name, modules):
                    found.append(Import(module, file, node.lineno, target, None, guarded))
                    local = alias.asname or alias.name.partition(".")[0]
                    bound[local] = alias.name if alias.asname else local
            continue
        base = node.module or ""
        if node.level:  # relative: climb from this module's package
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}" if base else alias.name
            if submodule in modules:  # `from pkg import submodule`
                found.append(Import(module, file, node.lineno, submodule, None, guarded))
                bound[alias.asname or alias.name] = submodule
            elif target := known(base, modules):
                found.append(Import(module, file, node.lineno, target, alias.name, guarded))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            head, _, rest = dotted(node.value).partition(".")
            if head in bound and (target := known(f"{bound[head]}.{rest}".rstrip("."), modules)):
                found.append(Import(module, file, node.lineno, target, node.attr, False))
    return found


def dotted(expr: ast.expr) -> str:
    """``a.b.c`` for a chain of names, else an empty string."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute) and (value := dotted(expr.value)):
        return f"{value}.{expr.attr}"
    return ""


def all_imports(root: Path = ROOT) -> list[Import]:
    modules = project_modules(root)
    return [
        imp for module, path in modules.items() for imp in imports_of(module, path, modules, root)
    ]


def package_of(module: str) -> str:
    return module.split(".")[0]


def find_cycles(imports: list[Import]) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected group."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_checking and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    cycles, done = [], set()
    for start in sorted(graph):
        if start in done:
            continue
        path = shortest_path_back(graph, start)
        if path:
            cycles.append(path)
            done.update(path)
    return cycles


def shortest_path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest import chain from ``start`` back to itself (breadth first), or None."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(parent[chain[-1]])
                    return [*reversed(chain), start]
                if nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(imports: list[Import]) -> list[Import]:
    """Imports of another module's ``_name``, or of a ``_module`` from outside its package."""
    return [
        imp
        for imp in imports
        if imp.target != imp.source
        and ((imp.name is not None and is_private(imp.name)) or outside_private(imp))
    ]


def outside_private(imp: Import) -> bool:
    """Whether ``imp`` reaches a private submodule from outside the package that holds it."""
    parts = imp.target.split(".")
    owners = [".".join(parts[:k]) for k, part in enumerate(parts) if is_private(part)]
    return any(not (imp.source + ".").startswith(owner + ".") for owner in owners)


def direction_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        source, target = package_of(imp.source), package_of(imp.target)
        if target in FORBIDDEN.get(source, ()):
            bad.append(f"{imp.where()} ({source} must not import {target})")
        elif (
            source == "training"
            and target in ("inference", "eval", "data_gen")
            and (imp.target, imp.name) not in TRAINING_ALLOWED
        ):
            bad.append(f"{imp.where()} (training may take only TRAINING_ALLOWED from there)")
    return bad


def test_the_import_graph_has_no_cycle():
    cycles = find_cycles(all_imports())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_name():
    bad = private_imports(all_imports())
    assert not bad, "private names imported across modules:\n" + "\n".join(i.where() for i in bad)


def test_imports_flow_the_way_the_design_says():
    bad = direction_violations(all_imports())
    assert not bad, "imports against the layout's direction:\n" + "\n".join(bad)


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_checks_catch_a_cycle_a_private_import_and_a_wrong_direction(tmp_path):
    write_package(
        tmp_path,
        {
            "inference/__init__.py": "",
            "inference/a.py": "def f():\n    from .b import _helper\n",
            "inference/b.py": "from inference import a\nimport eval.report\n",
            "inference/trace.py": "SEGMENT_KINDS = ()\n",
            "eval/__init__.py": "from ._secret import x\n",
            "eval/_secret.py": "x = 1\n",
            "eval/report.py": "from data_gen.filters import RULES\n",
            "eval/grading.py": "from eval import _secret\nfrom eval import report\nreport._f()\n",
            "data_gen/__init__.py": "",
            "data_gen/filters.py": "RULES = ()\nfrom eval._secret import x\n",
            "training/__init__.py": "",
            "training/dataset.py": "from inference.trace import SEGMENT_KINDS\nfrom inference.b import y\n",
        },
    )
    imports = all_imports(tmp_path)
    assert find_cycles(imports) == [["inference.a", "inference.b", "inference.a"]]
    assert [(i.source, i.target, i.name) for i in private_imports(imports)] == [
        ("inference.a", "inference.b", "_helper"),  # function-level, relative
        ("eval.grading", "eval.report", "_f"),  # read through the imported module
        ("data_gen.filters", "eval._secret", "x"),  # a private module from outside eval
    ]
    bad = direction_violations(imports)
    assert len(bad) == 3, bad
    assert bad[0] == "inference/b.py:2 imports eval.report (inference must not import eval)"
    assert bad[1] == (
        "eval/report.py:1 imports data_gen.filters.RULES (eval must not import data_gen)"
    )
    assert bad[2].startswith("training/dataset.py:2 imports inference.b.y")  # SEGMENT_KINDS is ok


def test_every_method_module_is_registered_and_has_run():
    """A new method is its module plus its entry in REGISTRY; forgetting either fails here."""
    from inference.methods import REGISTRY

    folder = ROOT / "inference" / "methods"
    on_disk = {f"inference.methods.{p.stem}" for p in folder.glob("[!_]*.py")}
    assert {m.module for m in REGISTRY.values()} == on_disk
    for module in on_disk:
        tree = ast.parse((folder / f"{module.rpartition('.')[2]}.py").read_text())
        assert "run" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, module
