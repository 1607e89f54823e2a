"""The notebooks run top to bottom headless in smoke mode and write their figures.

Each notebook is executed with nbclient on the ``python3`` kernel (the
project's venv, registered by ``make`` with ``ipykernel install --sys-prefix``)
with ``PCLKIT_SMOKE=1``, figures and runs redirected to a temporary folder.
The notebooks run in order and share that runs folder, so ``01`` trains the
smoke checkpoints that ``02``-``04`` load (each also trains them when run alone).
Executed copies are kept in ``test-artifacts/notebooks/`` for inspection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from conftest import CMU_ROOT  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts" / "notebooks"
FORMATS = ("pdf", "svg", "png")
HAS_CMU = CMU_ROOT.is_dir()

#: figure stems each notebook must write (CMU figures only when the data is present)
EXPECTED: dict[str, list[str]] = {
    "00_synthfaces.ipynb": ["synthfaces_samples", "synthfaces_factors"],
    "01_pretraining.ipynb": ["pretraining_curves"],
    "02_linear_evaluation.ipynb": ["linear_eval_features"] + (["linear_eval_features_cmu"] if HAS_CMU else []),
    "03_face_vs_pose_embeddings.ipynb": ["embeddings_tsne", "embeddings_umap"]
    + (["embeddings_cmu_tsne", "embeddings_cmu_umap"] if HAS_CMU else []),
    "04_pose_swap_reconstructions.ipynb": ["pose_swap_grid", "pose_swap_grid_render3d", "pose_swap_ground_truth",
                                           "pose_interpolation"],
}
#: notebooks whose last cell displays an explorer widget
WIDGET_NOTEBOOKS = ("00_synthfaces.ipynb", "04_pose_swap_reconstructions.ipynb")
CELL_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """The ``python3`` kernelspec, which must run this interpreter (the venv with pclkit)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.fail("no 'python3' kernelspec: run `make` (it calls "
                    "`python -m ipykernel install --sys-prefix --name python3`)")
    python = Path(spec.argv[0])
    if python.is_absolute():
        assert python.resolve() == Path(sys.executable).resolve(), \
            f"kernel python3 runs {python}, not this venv's {sys.executable}"
    return "python3"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Temporary figures/ and runs/ shared by the notebooks of this module."""
    root = tmp_path_factory.mktemp("notebooks")
    (root / "figures").mkdir()
    (root / "runs").mkdir()
    return root


@pytest.fixture
def smoke_env(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PCLKIT_SMOKE", "1")
    monkeypatch.setenv("PCLKIT_FIGURES_DIR", str(workspace / "figures"))
    monkeypatch.setenv("PCLKIT_RUNS_DIR", str(workspace / "runs"))
    monkeypatch.setenv("PCLKIT_CMU", str(CMU_ROOT))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return workspace


def execute(path: Path, kernel: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, ARTIFACTS / path.name)
    return notebook


def outputs_of(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_notebook_runs_in_smoke_mode(name: str, kernel_name: str, smoke_env: Path):
    start = time.perf_counter()
    notebook = execute(NOTEBOOKS / name, kernel_name)
    seconds = time.perf_counter() - start
    figures_dir = smoke_env / "figures"
    shutil.copytree(figures_dir, ARTIFACTS.parent / "figures", dirs_exist_ok=True)  # for inspection
    missing = [f"{stem}.{fmt}" for stem in EXPECTED[name] for fmt in FORMATS
               if not (figures_dir / f"{stem}.{fmt}").is_file()]
    assert not missing, f"{name} did not write {missing} (took {seconds:.0f} s)"
    outputs = outputs_of(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = sum("image/png" in o.get("data", {}) for o in outputs)
    assert shown >= len(EXPECTED[name]) - (2 if HAS_CMU else 0), f"{name} displayed only {shown} figures"
    if name in WIDGET_NOTEBOOKS:  # displayed as an ipywidgets view, not a text repr
        last = [c for c in notebook.cells if c.cell_type == "code"][-1]
        data = [o.get("data", {}) for o in last.outputs if o.get("output_type") == "execute_result"]
        assert data and "application/vnd.jupyter.widget-view+json" in data[0], f"{name}: {data}"
    if name == "02_linear_evaluation.ipynb":
        tables = figures_dir / "tables" / "synthfaces"
        for suffix in ("csv", "md", "tex"):
            assert (tables / f"results.{suffix}").stat().st_size > 0
        assert "PCL" in (tables / "results.md").read_text()
    print(f"{name}: {seconds:.0f} s")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_committed_notebooks_are_clean(name: str):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code_cells), "commit notebooks without outputs"
    parameters = [c for c in code_cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "PCLKIT_SMOKE" in parameters[0].source
    for cell in code_cells:  # everything comes from pclkit
        assert "class " not in cell.source and "nn.Module" not in cell.source, cell.source


def test_notebooks_match_their_builder():
    result = subprocess.run([sys.executable, str(NOTEBOOKS / "build_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_figures_command_regenerates_figures_headless(workspace: Path, tmp_path: Path):
    """``python -m pclkit figures --run ...`` on the smoke runs (trained here if the notebooks did not)."""
    from pclkit.figures import ensure_run

    runs = [ensure_run("smoke", method, workspace / "runs") for method in ("simclr", "pcl")]
    out = tmp_path / "figures"
    env = {**os.environ, "PCLKIT_CMU": str(tmp_path / "no-cmu"), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "pclkit", "figures", "--out", str(out), "--n", "200", "--embeddings", "tsne"]
    for run in runs:
        command += ["--run", str(run)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    stems = ["synthfaces_factors", "pretraining_curves", "embeddings_tsne", "pose_swap_grid",
             "pose_swap_grid_render3d", "pose_swap_ground_truth", "pose_interpolation"]
    missing = [f"{s}.{f}" for s in stems for f in FORMATS if not (out / f"{s}.{f}").is_file()]
    assert not missing, f"missing {missing}\n{result.stdout[-2000:]}"
