"""The floors of the house (docs/design.md §2), read from the source of every module (lazy
and type-checking imports included), so that a new violation fails here rather than in review:

1. `core`, the ground floor (vocabulary, schemas, settings, random streams, portable
   numerics, the numeric environment), imports nothing else of the project;
2. the domain (`sim`, `emotion`, `causal`, `policy`, `evaluation`) imports the ground floor
   and the domain; `sim` only the ground floor and itself (the simulated world knows nothing
   of the models that observe it); no domain package imports dagster;
3. `storage`, 4. `studies`, 5. `orchestration`, 6. `assets`, 7. `definitions` and `cli`:
   each imports only from its own floor or below. No arrow runs up;
- no two packages import each other, directly or around a cycle;
- a name of the vocabulary is imported from `vocabulary`, never through another module.
"""

import ast
import graphlib
from pathlib import Path

import pytest

import esmr_assets
from esmr_assets.core import vocabulary

PACKAGE_DIR = Path(esmr_assets.__file__).parent
DOMAIN = ("sim", "emotion", "causal", "policy", "evaluation")
FLOORS = {"core": 1, **dict.fromkeys(DOMAIN, 2), "storage": 3, "studies": 4, "gym": 4, "orchestration": 5, "assets": 6,
          "definitions": 7, "cli": 7}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """(absolute module imported, names imported from it) for every import in `path`, the
    source of `module` (by default the module the path names in the package)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module
            found.append((target, tuple(alias.name for alias in node.names)))
            if target == "esmr_assets":  # `from esmr_assets import core`: the subpackages named
                found += [(f"esmr_assets.{alias.name}", ()) for alias in node.names]
    return found


def _area(module: str) -> str | None:
    """The project area of a module: its subpackage or top-level module (None outside)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "esmr_assets" and len(parts) > 1 else None


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _violations(rule) -> list[str]:
    return [f"{module} imports {target}" for module, imports in MODULES.items()
            for target, names in imports if rule(module, target, names)]


def test_every_module_was_read_and_every_area_has_a_floor():
    assert {"esmr_assets.sim.day", "esmr_assets.policy.loop.registry", "esmr_assets.core.vocabulary"} <= set(MODULES)
    assert {_area(m) for m in MODULES} - {None} <= set(FLOORS)


def test_the_ground_floor_imports_nothing_else_of_the_project():
    assert _violations(lambda m, t, _: _area(m) == "core" and _area(t) not in (None, "core")) == []


def test_sim_imports_only_the_ground_floor_and_itself():
    assert _violations(lambda m, t, _: _area(m) == "sim" and _area(t) not in (None, "core", "sim")) == []


def test_no_arrow_runs_up():
    def rule(module, target, _):
        return _area(module) in FLOORS and _area(target) in FLOORS and FLOORS[_area(target)] > FLOORS[_area(module)]

    assert _violations(rule) == []


@pytest.mark.parametrize("forbidden", ["dagster", "esmr_assets.assets"])
def test_domain_code_never_imports_the_dagster_layer(forbidden):
    def rule(module, target, _):
        return _area(module) in DOMAIN and (target == forbidden or target.startswith(forbidden + "."))

    assert _violations(rule) == []


def test_no_import_cycles_between_packages():
    graph: dict[str, set[str]] = {}
    for module, imports in MODULES.items():
        source = _area(module)
        for target, _ in imports:
            if source and _area(target) and _area(target) != source:
                graph.setdefault(source, set()).add(_area(target))
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle between packages: {' -> '.join(err.args[1])}")
    assert order.index("core") < min(order.index("sim"), order.index("emotion")) and order.index("emotion") < order.index("policy")


def test_no_cycles_between_the_rooms_of_policy():
    """learners below the rewards, below the loop, below the Gymnasium environment, below the
    stage's training."""
    rooms = {"learners": 1, "rewards": 2, "loop": 3, "env": 4, "training": 5}

    def room(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "policy" and parts[2] in rooms else None

    def rule(module, target, _):
        return room(module) and room(target) and rooms[room(target)] > rooms[room(module)]

    assert _violations(rule) == []


def test_vocabulary_names_come_from_the_vocabulary():
    names = {n for n in vars(vocabulary) if n.isupper() or n == "check_labels"} - {"annotations"}

    def rule(module, target, imported):
        return target != "esmr_assets.core.vocabulary" and _area(target) is not None and bool(names & set(imported))

    assert _violations(rule) == []


def test_the_reader_resolves_relative_and_absolute_imports(tmp_path):
    """The reader itself, on a throwaway module of `sim` with three violations in it."""
    fake = tmp_path / "probe.py"
    fake.write_text("from ..emotion.features import is_active\nimport dagster\nfrom .affect import TRUE_EMOTIONS\n")
    found = _imports(fake, "esmr_assets.sim.probe")
    assert ("esmr_assets.emotion.features", ("is_active",)) in found and ("dagster", ()) in found
    assert ("esmr_assets.sim.affect", ("TRUE_EMOTIONS",)) in found
