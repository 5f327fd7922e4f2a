"""The same bytes on any machine (docs/portable_bytes.md).

The libraries pick SIMD kernels from the CPU at run time; one machine can emulate another's
choice with their switches (numpy's `NPY_DISABLE_CPU_FEATURES`, torch's
`ATEN_CPU_CAPABILITY`, numba's `NUMBA_CPU_NAME`). The smoke graph for one seed, run under each,
must write the same bytes: before the portable kernels and the pins, on an AVX-512 machine,
the AVX2 variant differed in 29 of its 117 files and the no-AVX2 one in 39. Beside that, the portable kernels against the C library and
numpy, the record every cell carries, and reuse keeping environments apart."""

import hashlib
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from esmr_assets.core import numeric_env, portable
from esmr_assets.core.settings import load_settings
from esmr_assets.orchestration.planner import materialize_cells, plan_cell
from esmr_assets.orchestration.resources import run_config
from esmr_assets.orchestration.runner import plan_steps
from esmr_assets.storage import reuse
from esmr_assets.storage.cells import Cell, register_scenario

BIN = Path(sys.executable).parent
AVX512 = "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"
#: the issue's variants: default kernels; an AVX2 machine's numpy and torch; numpy without
#: AVX2/FMA3 and torch's plain C kernels; numba compiled for a generic CPU
DISPATCH_VARIANTS = {
    "default": {"ESMR_WORKERS": "1"},
    "avx2": {"NPY_DISABLE_CPU_FEATURES": AVX512, "ATEN_CPU_CAPABILITY": "avx2", "ESMR_WORKERS": "1"},
    "no_avx2": {"NPY_DISABLE_CPU_FEATURES": f"AVX2 FMA3 {AVX512}", "ATEN_CPU_CAPABILITY": "default",
                "ESMR_WORKERS": "1"},
    # and the closed-loop stages' jobs in two spawned processes (core/parallel.py) instead of one
    "numba_generic_two_workers": {"NUMBA_CPU_NAME": "generic", "ESMR_WORKERS": "2"},
}


# ---------------------------------------------------------------- the portable kernels
@pytest.fixture(scope="module")
def values() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([rng.normal(0, 3, 4000), rng.uniform(-700, 700, 1000), [0.0, -0.0, 1e-300, 709.0, -745.0]])


@pytest.mark.parametrize("name, reference", [("exp", math.exp), ("tanh", math.tanh), ("cosh", math.cosh)])
def test_the_elementwise_kernels_are_the_c_library_s_functions(values, name, reference):
    x = values if name != "cosh" else values[np.abs(values) < 700]
    got = getattr(portable, name)(x)
    assert np.array_equal(got, np.array([reference(v) for v in x]))
    numpy_s = getattr(np, name)(x)
    assert (np.abs(got - numpy_s) <= 2 * np.spacing(np.abs(numpy_s))).all()  # numpy's within 2 ulp


def test_log_power_and_expit_follow_the_c_library_and_numpy_at_the_edges(values):
    positive = np.abs(values[values != 0])
    assert np.array_equal(portable.log(positive), [math.log(v) for v in positive])
    with np.errstate(divide="ignore", invalid="ignore"):
        edges = np.array([0.0, -1.0, np.inf, np.nan])
        np.testing.assert_array_equal(portable.log(edges), np.log(edges))
    base = np.abs(values[:500]) + 0.1
    assert np.array_equal(portable.power(base, 0.3), [math.pow(v, 0.3) for v in base])
    small = values[np.abs(values) < 30]
    assert np.array_equal(portable.expit(small), [1.0 / (1.0 + math.exp(-v)) for v in small])


def test_matmul_sums_in_index_order_whatever_the_shapes():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 5, 7)), rng.normal(size=(4, 7, 3))
    got = portable.matmul(a, b)
    for s in range(4):
        for i in range(5):
            for j in range(3):
                total = 0.0
                for k in range(7):
                    total += a[s, i, k] * b[s, k, j]
                assert got[s, i, j] == total
    np.testing.assert_allclose(got, a @ b, rtol=1e-13)
    assert portable.matmul(a[0], b[0, :, 0]).shape == (5,) and portable.matmul(a[0, 0], b[0]).shape == (3,)
    f32 = portable.matmul(a[0].astype(np.float32), b[0].astype(np.float32))
    assert f32.dtype == np.float32 and np.allclose(f32, a[0] @ b[0], rtol=1e-5)


def test_solve_matches_lapack_and_refuses_a_singular_system():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 30, 9))
    gram = portable.matmul(np.swapaxes(x, 1, 2), x) + np.eye(9)
    rhs = rng.normal(size=(6, 9, 2))
    np.testing.assert_allclose(portable.solve(gram, rhs), np.linalg.solve(gram, rhs), rtol=1e-10)
    singular = np.ones((2, 3, 3))
    with pytest.raises(np.linalg.LinAlgError):
        portable.solve(singular, np.ones((2, 3, 1)))


# ---------------------------------------------------------------- the pins and the record
def test_this_process_runs_the_pinned_kernels():
    if not numeric_env.pinnable():
        pytest.skip("the pins apply to x86-64 CPUs with AVX2 and FMA only")
    assert numeric_env.environment()["kernels"] == numeric_env.PINNED_KERNELS
    assert all(os.environ[name] == value for name, value in numeric_env.PINS.items())


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in numeric_env.PINS}
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=300,
                          env={**clean, **env})


def test_a_notebook_that_loaded_numpy_first_is_told_and_kept_apart():
    if not numeric_env.pinnable():
        pytest.skip("the pins apply to x86-64 CPUs with AVX2 and FMA only")
    first = _python("import numpy, esmr_assets\nfrom esmr_assets.core import numeric_env as n\n"
                    "print(n.environment()['kernels']['openblas'], n.pinned(), n.fingerprint())")
    openblas, pinned, fingerprint = first.stdout.split()
    if openblas == "Haswell":  # an AVX2 machine whose OpenBLAS chose the pinned kernels by itself
        assert "UnpinnedKernelsWarning" not in first.stderr and fingerprint == numeric_env.fingerprint()
        return
    assert "UnpinnedKernelsWarning" in first.stderr and "openblas" in first.stderr, first.stderr
    assert "Import esmr_assets first" in first.stderr
    assert pinned == "False" and fingerprint != numeric_env.fingerprint()
    after = _python("import esmr_assets, numpy\nfrom esmr_assets.core import numeric_env as n\nprint(n.fingerprint())")
    assert "UnpinnedKernelsWarning" not in after.stderr and after.stdout.strip() == numeric_env.fingerprint()


def test_the_pins_win_over_what_the_environment_asks_for():
    """A user's (or a test's) own kernel choices are overridden: one choice is the promise."""
    if not numeric_env.pinnable():
        pytest.skip("the pins apply to x86-64 CPUs with AVX2 and FMA only")
    done = _python("import esmr_assets, json\nfrom esmr_assets.core import numeric_env as n\n"
                   "print(json.dumps(n.environment()['kernels']))",
                   ATEN_CPU_CAPABILITY="default", OPENBLAS_CORETYPE="SkylakeX", MKL_CBWR="AUTO",
                   NUMBA_DISABLE_INTEL_SVML="0")
    assert json.loads(done.stdout) == numeric_env.PINNED_KERNELS, done.stderr
    opted_out = _python("import esmr_assets, json\nfrom esmr_assets.core import numeric_env as n\n"
                        "print(json.dumps(n.environment()['kernels']))",
                        ATEN_CPU_CAPABILITY="default", ESMR_UNPINNED_KERNELS="1")
    assert json.loads(opted_out.stdout)["torch"] == "DEFAULT"  # no pins: the environment's own choice


def test_the_record_names_the_code_and_every_numeric_package():
    record = numeric_env.record()
    assert record["fingerprint"] == numeric_env.fingerprint() and len(record["fingerprint"]) == 16
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parents[2], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout: the commit it is at
        assert record["commit"] == head.stdout.strip()
    assert record["esmr_assets"] != "absent"
    assert {"numpy", "torch", "lightgbm", "numba"} <= set(record["versions"])
    assert all(v != "absent" for v in record["versions"].values())
    assert set(record["kernels"]) == set(numeric_env.PINNED_KERNELS) == {"torch", "mkl", "openblas", "svml"}


TOY = ("numbers", "parity", "doubled")


def test_a_cell_whose_numeric_environment_differs_is_not_linked(toy_defs, data_dir, instance, monkeypatch):
    defs = toy_defs(*TOY)
    steps = [step for step in plan_steps(defs) if step.partitioned]
    root = data_dir / "paper"
    other = register_scenario(root, "other", '{"policy": {"alpha": 0.5}}')
    config = run_config("paper", data_dir)
    first = Cell("baseline", 1)
    materialize_cells(defs, steps, [(first, load_settings("paper"))], root, config, instance)
    folder = root / "numbers" / "scenario=baseline" / "seed=1"
    assert reuse.read_record(folder) == numeric_env.record()
    assert plan_cell(root, steps, Cell("other", 1), other).reusable != ()  # same environment: linkable

    avx512 = {**numeric_env.environment(), "kernels": {**numeric_env.environment()["kernels"], "torch": "AVX512"}}
    monkeypatch.setattr(numeric_env, "environment", lambda: avx512)
    assert plan_cell(root, steps, first, load_settings("paper")).current == ()  # its own cell: stale
    plan = plan_cell(root, steps, Cell("other", 1), other)
    assert plan.reusable == () and len(plan.to_compute) == len(steps)  # recomputed, not linked
    outcome = materialize_cells(defs, steps, [(Cell("other", 1), other)], root, config, instance)[Cell("other", 1)]
    assert all(isinstance(outcome[step.label], float) for step in steps)
    mine = root / "numbers" / "scenario=other" / "seed=1"
    assert reuse.read_record(mine)["kernels"]["torch"] == "AVX512"
    assert (mine / "part-0.parquet").stat().st_ino != (folder / "part-0.parquet").stat().st_ino


def test_files_from_another_environment_are_not_shared(toy_defs, data_dir, instance, monkeypatch):
    """A step computed elsewhere (a Dask worker without the pins) under a key planned here."""
    defs = toy_defs("numbers")
    steps = [step for step in plan_steps(defs) if step.partitioned]
    root = data_dir / "paper"
    cell = Cell("baseline", 4)
    materialize_cells(defs, steps, [(cell, load_settings("paper"))], root, run_config("paper", data_dir), instance)
    folder = root / "numbers" / "scenario=baseline" / "seed=4"
    record = json.loads((folder / reuse.RECORD_FILE).read_text())
    (folder / reuse.RECORD_FILE).write_text(json.dumps({**record, "fingerprint": "0" * 16, "machine": "aarch64"}))
    with pytest.raises(reuse.NumericEnvironmentMismatch, match="machine"):
        reuse.publish(root, ["numbers"], cell, "k" * 20)
    assert not (root / "_shared" / "numbers" / ("k" * 20)).exists()


# ---------------------------------------------------------------- the graph under every dispatch
def _digests(root: Path) -> dict[str, str]:
    """Every file of a data dir but the instance and the timings (wall seconds differ)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and ".dagster" not in p.parts and p.name != reuse.SECONDS_FILE}


def _run_smoke(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[dict[str, str], str]:
    data, home = tmp_path / name, tmp_path / f"{name}.home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in numeric_env.PINS and k != "ESMR_DATA_DIR"}
    done = subprocess.run([BIN / "esmr", "run", "--seed", "0", "--preset", "smoke", "--data-dir", str(data),
                           "--overrides", TESTBED_ON],
                          capture_output=True, text=True, timeout=900, env={**clean, **env, "DAGSTER_HOME": str(home)})
    assert done.returncode == 0, (name, (done.stdout + done.stderr)[-3000:])
    return _digests(data), done.stderr


#: the deep learners and the planner are off by default; the dispatch variants run them too
TESTBED_ON = json.dumps({"policy": {"deep_learners": ["dqn_esmr", "ppo_esmr", "ppo_engagement", "ppo_emotion"]},
                         "evaluation": {"planner_horizon": 2}})


@pytest.mark.slow
def test_the_smoke_graph_is_the_same_bytes_under_every_kernel_dispatch(tmp_path):
    with ThreadPoolExecutor(2) as pool:  # two processes at once: the suite's budget
        runs = dict(zip(DISPATCH_VARIANTS, pool.map(lambda item: _run_smoke(tmp_path, *item), DISPATCH_VARIANTS.items())))
    default, _ = runs["default"]
    assert any(name.endswith("tabtransformer.pt") for name in default) and len(default) > 100
    assert any(name.endswith("deep_agents.zip") for name in default)
    assert sum(name.endswith(reuse.RECORD_FILE) for name in default) >= 24  # every cell records its environment
    for name, (digests, stderr) in runs.items():
        differ = sorted(k for k in default.keys() | digests.keys() if default.get(k) != digests.get(k))
        assert differ == [], f"{name}: {len(differ)} files differ from the default kernels': {differ[:8]}"
        assert "UnpinnedKernelsWarning" not in stderr
