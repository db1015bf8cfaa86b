"""The layers of DESIGN.md, checked on the source: every import of every module (function-level ones too),
no cycle anywhere, no import that points up a layer, and no orchestration or serving library inside the ML
library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "components", "registry", "serving", "infra", "flows")

# What each layer may import of ours, with no exception: `core` (the rules for untrusted input and digests)
# is the floor every layer stands on; the registry stores directories and records and knows nothing of models.
ALLOWED = {
    "core": ("core",),
    "components": ("core", "components"),
    "registry": ("core", "registry"),
    "serving": ("core", "serving", "registry", "components"),
    "infra": ("core", "infra", "registry", "components"),
    "flows": ("core", "flows", "infra", "serving", "registry", "components"),
}
# Third-party libraries a layer must not reach for (DESIGN.md: Prefect, BentoML and boto3 never in components).
FORBIDDEN = {
    "core": ("prefect", "bentoml", "boto3", "typer", "torch", "transformers", "lightning", "pandas", "rich"),
    "components": ("prefect", "bentoml", "boto3", "typer"),
    "registry": ("prefect", "bentoml", "torch", "transformers", "lightning"),
    "serving": ("prefect", "typer"),
    "infra": ("bentoml", "typer"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `name` imports, at any depth of its code: ours resolved to the module itself (a
    `from package import submodule` names the submodule), others by their top-level name."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node] & graph.keys():
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    source = tmp_path / "pkg"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "__init__.py").write_text("from . import leaf\n")
    (source / "sub" / "leaf.py").write_text("def late():\n    from pkg.sub import other\n    import torch\n")
    modules = {"pkg.sub": source / "sub" / "__init__.py", "pkg.sub.leaf": source / "sub" / "leaf.py",
               "pkg.sub.other": source / "sub" / "leaf.py"}
    assert imports_of("pkg.sub.leaf", modules["pkg.sub.leaf"], modules) == {"pkg.sub.other", "torch"}
    assert imports_of("pkg.sub", modules["pkg.sub"], modules) == {"pkg.sub.leaf"}


def test_the_cycle_finder_finds_a_hidden_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere(graph):
    assert cycles(graph) == []


def test_imports_point_down_the_layers(graph):
    ours = {name.split(".")[0] for name in graph}
    upward = []
    for module, targets in sorted(graph.items()):
        layer = module.split(".")[0]
        for target in sorted(targets):
            if target.split(".")[0] in ours and not any(target == a or target.startswith(f"{a}.")
                                                        for a in ALLOWED[layer]):
                upward.append(f"{module} -> {target}")
            if target.split(".")[0] in FORBIDDEN.get(layer, ()):
                upward.append(f"{module} -> {target} (not in the {layer} layer)")
    assert upward == []


def test_the_librarys_parts_do_not_import_each_other_both_ways(graph):
    """A cycle between two parts of the library (evaluation and backdoor once) means one of them is in the
    wrong place, even where no module imports itself through the other."""
    parts = {}
    for module, targets in graph.items():
        if module.startswith("components."):
            source = module.split(".")[1]
            parts.setdefault(source, set()).update(t.split(".")[1] for t in targets
                                                  if t.startswith("components.") and t.split(".")[1] != source)
    both_ways = sorted((a, b) for a in parts for b in parts[a] if a < b and a in parts.get(b, set()))
    assert both_ways == []


def test_the_layer_rules_cover_every_package(graph):
    assert {name.split(".")[0] for name in graph} == set(ALLOWED)


def test_no_function_takes_more_than_five_positional_parameters():
    """Past five, a call reads as a row of values: such parameters are keyword-only or travel in a typed
    object. The command line's functions are exempt: typer turns each parameter into a named option."""
    crowded = []
    for name, path in our_modules().items():
        if name.startswith("flows.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(positional) > 5:
                    crowded.append(f"{name}.{node.name}({', '.join(positional)})")
    assert crowded == []


def test_no_flow_module_is_longer_than_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "flows").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}
