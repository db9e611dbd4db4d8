"""The package map holds: the import graph, read with ``ast`` from every module's source.

Every import counts, the ones inside functions and under ``TYPE_CHECKING`` too: a lazy
import hides a circle from the interpreter, not from a reader. docs/architecture.md
draws the same map.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backend", "interview_service", "pipeline_agent")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = _sources()


def _imported_names(module: str, tree: ast.AST) -> Iterator[str]:
    is_package = MODULES[module].name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # "from pkg import module" names the module; "from module import name" the module.
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _external_imports() -> dict[str, set[str]]:
    """Every module's imports, project modules and libraries alike."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = set(_imported_names(module, tree)) - {module}
    return graph


IMPORTS = _external_imports()


def _project_edges(module: str) -> set[str]:
    return {name for name in IMPORTS[module] if name in MODULES}


def _top(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "backend" else parts[0]


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(_project_edges(node)):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    return found


def test_the_graph_was_read() -> None:
    assert "backend.core.errors" in MODULES
    assert "backend.core.errors" in _project_edges("backend.app.http_errors")


def test_no_import_circle_between_modules() -> None:
    assert _cycles() == []


def test_core_imports_no_other_package_of_the_project() -> None:
    offenders = {
        f"{module} -> {name}"
        for module in MODULES
        if module.startswith("backend.core")
        for name in _project_edges(module)
        if not name.startswith("backend.core")
    }
    assert offenders == set()


def test_nothing_outside_the_web_app_imports_it() -> None:
    offenders = {
        f"{module} -> {name}"
        for module in MODULES
        if _top(module) != "backend.app"
        for name in _project_edges(module)
        if _top(name) == "backend.app"
    }
    assert offenders == set()


def test_the_interview_service_stands_on_the_core_alone() -> None:
    offenders = {
        f"{module} -> {name}"
        for module in MODULES
        if _top(module) == "interview_service"
        for name in _project_edges(module)
        if _top(name) not in {"interview_service", "backend.core"}
    }
    assert offenders == set()


def test_no_fastapi_below_the_web_app() -> None:
    offenders = {
        f"{module} -> {name}"
        for module in MODULES
        if _top(module) != "backend.app"
        for name in IMPORTS[module]
        if name.split(".")[0] in {"fastapi", "starlette"}
    }
    assert offenders == set()


def _importers(predicate: str) -> set[str]:
    return {
        module
        for module, names in IMPORTS.items()
        if any(name == predicate or name.startswith(predicate + ".") for name in names)
    }


def _mentions(text: str) -> set[str]:
    return {module for module, path in MODULES.items() if text in path.read_text("utf-8")}


@pytest.mark.parametrize(
    ("what", "modules"),
    [
        ("aiortc", _importers("aiortc")),
        ("the API Gateway management API", _mentions('"apigatewaymanagementapi"')),
    ],
)
def test_one_adapter_per_library(what: str, modules: set[str]) -> None:
    assert len(modules) == 1, f"{what} is used by {sorted(modules)}"


def test_one_openai_adapter_per_package() -> None:
    per_package: dict[str, set[str]] = {}
    for module in _importers("openai"):
        per_package.setdefault(_top(module), set()).add(module)
    assert per_package, "no module talks to OpenAI: the test reads the wrong tree"
    counts = {package: len(modules) for package, modules in per_package.items()}
    assert counts == dict.fromkeys(per_package, 1), per_package
