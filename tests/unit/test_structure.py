"""The package's shape: no import cycle (imports inside functions included), pytest only in the glue."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_ftgate"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports when it runs: at the top, in functions, anywhere
    but under `if TYPE_CHECKING:` (never executed), unless `type_checking` (what a type checker reads)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        skip: set[int] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not type_checking and isinstance(node, ast.If) and _is_type_checking(node):
                skip.update(id(n) for child in node.body for n in ast.walk(child))
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("pytest_ftgate"):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert graph["pytest_ftgate.gating.runner"] >= {"pytest_ftgate.gating.gate", "pytest_ftgate.subjects"}  # the graph is real
    assert cycles(graph) == []


def test_no_import_cycle_either_with_the_imports_only_type_checkers_read():
    assert cycles(import_graph(type_checking=True)) == []


def test_a_cycle_is_found_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_glue_imports_pytest_and_nothing_imports_private_pytest():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(n.startswith("_pytest") for n in names), path
        if "pytest" in names:
            assert path.name in ("plugin.py", "testing.py"), path


def test_the_gate_never_imports_the_trainer():
    graph = import_graph()
    for name, targets in graph.items():
        if not name.startswith("pytest_ftgate.train") and name != "pytest_ftgate.cli":
            assert not any(t.startswith("pytest_ftgate.train") for t in targets), name


def test_every_package_of_the_tree_is_in_the_distribution():
    """pyproject's package list once named only two packages: a wheel then lacked kinds/, subjects/, report/."""
    import tomllib
    from setuptools import find_packages

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(str(PACKAGE.parent), include=config["include"]))
    on_disk = {_module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert on_disk <= shipped


# The folder list reads like the architecture: each concept one package, the floor and the faces at the top.
TOP_LEVEL_MODULES = {
    "__init__", "errors", "types", "stats",  # the floor: dataclasses, errors, statistics
    "extend",  # the public API of extensions
    "plugin", "testing", "cli",  # the faces: pytest and the ftgate command
}
MAX_TOP_LEVEL_MODULES = 10
PACKAGES = {
    "settings": "the option table, the run config, installed extensions, the rootdir check",
    "gating": "a gate run: load suites, decide criteria, orchestrate, the promotion contract",
    "kinds": "suite kinds", "subjects": "what generates (resolver; hf/, endpoint/, outputs)",
    "scoring": "scorers, detectors, perturbations", "judging": "the judge protocol and service",
    "human": "blind human evaluation", "cost": "pricing and TCO",
    "stores": "versioned records: cache, goldens, history, promotion, manifest",
    "report": "view, and the report formats", "files": "reading users' files, and checking them (data, leakage)",
    "importers": "files turned into suites", "machine": "hardware, provenance, quiet third-party output",
    "train": "the trainer (CLI only)",
}


def test_the_layout_shows_the_architecture():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert modules == TOP_LEVEL_MODULES, f"new top-level module(s) {sorted(modules - TOP_LEVEL_MODULES)}: put them in a concept's package"
    assert len(modules) <= MAX_TOP_LEVEL_MODULES
    assert packages == set(PACKAGES), sorted(packages ^ set(PACKAGES))
    for name in PACKAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"{name}/__init__.py says in a docstring what the package holds"


def test_the_kinds_and_the_suite_loader_are_not_a_circle():
    """The loader asks the kinds; the kinds know the Suite dataclass from the floor (types), not the loader."""
    graph = import_graph()
    assert "pytest_ftgate.gating.suite" in graph["pytest_ftgate.gating.suite"] or "pytest_ftgate.kinds" in graph["pytest_ftgate.gating.suite"]
    kinds = {m for m in graph if m.startswith("pytest_ftgate.kinds")}
    assert not any("pytest_ftgate.gating.suite" in graph[m] for m in kinds)


def test_only_the_subjects_package_names_a_subject_kind():
    """No branch on a subject kind outside subjects/ (`kind == "openai"`, `startswith("openai:")`): a provider is one module."""
    kinds = {"openai", "hf", "outputs"}
    for path in PACKAGE.rglob("*.py"):
        if "subjects" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                named = [x.value for x in sides if isinstance(x, ast.Constant) and x.value in kinds]
                on_kind = any(isinstance(x, ast.Attribute) and x.attr == "kind" for x in sides)
                assert not (named and on_kind), f"{path.relative_to(PACKAGE)}:{node.lineno} branches on subject kind {named}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("startswith", "removeprefix"):
                args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                assert not any(a.rstrip(":") in kinds for a in args), f"{path.relative_to(PACKAGE)}:{node.lineno} parses a subject spec"


def test_every_public_name_resolves():
    """`pytest_ftgate.__all__` names are imported on first use: each must still be where it says."""
    import pytest_ftgate

    for name in pytest_ftgate.__all__:
        assert getattr(pytest_ftgate, name) is not None, name


# what computing an interval or a kappa looks like: scipy or statsmodels, a normal quantile, Wilson's z * z
STATISTICS = re.compile(r"\b(scipy|statsmodels)\b|proportion_ci|norm\.ppf|1\.9599|z \* z|np\.trace")


def test_intervals_and_kappas_are_computed_only_in_stats():
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "stats.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if STATISTICS.search(line)]
    assert not found, "statistics belong in pytest_ftgate/stats.py:\n" + "\n".join(found)


TESTS = PACKAGE.parent / "tests"
TEST_FOLDERS = {"unit": "in process", "plugin": "through pytester", "real": "real servers, models, browser",
                "helpers": "what the tests run on", "bench": "benchmarks (scripts, not collected)", "data": "test data"}


def test_the_tests_are_laid_out_by_what_they_need():
    assert {p.name for p in TESTS.glob("*.py")} == {"__init__.py", "conftest.py"}, "put a test module in unit/, plugin/ or real/"
    assert {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(TEST_FOLDERS)
    assert not list((TESTS / "helpers").glob("test_*.py")), "tests/helpers/ holds helpers, no tests"
    for folder in ("unit", "plugin", "real"):
        assert all(p.name.startswith("test_") for p in (TESTS / folder).glob("*.py") if p.name != "__init__.py")


def _anchors(page: Path) -> set[str]:
    """The heading anchors of a Markdown page, as GitHub and mkdocs' toc write them."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_the_readme_links_to_pages_and_anchors_that_exist():
    """The README is the first page; the docs site (make docs, --strict) checks its own links, this checks the README's."""
    root = PACKAGE.parent
    links = re.findall(r"\]\(((?:docs/)[^)#]+)(?:#([\w-]+))?\)", (root / "README.md").read_text(encoding="utf-8"))
    assert len(links) >= 10, links
    for path, anchor in links:
        assert (root / path).is_file(), f"README links to {path}, which does not exist"
        assert not anchor or anchor in _anchors(root / path), f"README links to {path}#{anchor}, which has no such heading"
