"""The notebooks: paired sources in sync, clean, parametrisable, and running headless in smoke mode.

Each notebook is a jupytext pair (``notebooks/jupytext.toml``): ``NN_name.py``
in percent format, the source to edit and review, and ``NN_name.ipynb``,
committed without outputs. The drift check runs ``jupytext --sync`` on copies
in a temporary folder and fails when that would change either file.

Execution: each ``.ipynb`` runs with nbclient on the ``python3`` kernel (the
project's venv, registered by ``make`` with ``ipykernel install --sys-prefix``)
with ``PCLKIT_SMOKE=1``, figures and runs redirected to a temporary folder.
The notebooks run in order and share that runs folder, so ``01`` trains the
smoke checkpoints that ``02``-``04`` load (each also trains them when run alone).
Executed copies are kept in ``test-artifacts/notebooks/`` for inspection.
"""

from __future__ import annotations

import ast
import difflib
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
                                           "swap_margin_by_yaw_turn", "pose_interpolation"],
}
#: figures a notebook shows without saving them (01: the views of one step, the untrained reconstructions)
SHOWN_ONLY = {"01_pretraining.ipynb": 2}
#: notebooks whose last code cell displays an explorer widget
WIDGET_NOTEBOOKS = ("00_synthfaces.ipynb", "04_pose_swap_reconstructions.ipynb")
CELL_TIMEOUT_S = 600
JUPYTEXT_HINT = "run `make notebooks` (jupytext --sync notebooks/*.py) and commit both files of each pair"


def parameters_index(notebook: nbformat.NotebookNode) -> int:
    """Index of the one cell tagged ``parameters``."""
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


# --------------------------------------------------------------------------- the pairs


def test_every_notebook_is_a_pair():
    sources = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")}
    notebooks = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    assert sources == notebooks == {Path(name).stem for name in EXPECTED}, (sources, notebooks)
    assert not (NOTEBOOKS / "build_notebooks.py").exists(), "the .py sources replace build_notebooks.py"


@pytest.mark.parametrize("newer", ["py", "ipynb"])
def test_jupytext_sync_changes_nothing(newer: str, tmp_path: Path):
    """The drift check: ``jupytext --sync`` on copies of the pairs leaves every file as committed.

    Sync takes the cells from the newer file of each pair and rewrites the other,
    so it runs twice, once with each side newer: a ``.py`` edited without its
    ``.ipynb`` (or the reverse) fails one of them.
    """
    jupytext = pytest.importorskip("jupytext", reason="jupytext is pinned in requirements.txt: run `make`")
    files = [NOTEBOOKS / "jupytext.toml", *sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")),
             *sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]
    for path in files:
        shutil.copy2(path, tmp_path / path.name)
    now = time.time()
    for path in tmp_path.iterdir():  # the chosen side 10 s newer
        stamp = now if path.suffix == f".{newer}" else now - 10
        os.utime(path, (stamp, stamp))
    copies = sorted(p.name for p in tmp_path.glob(f"[0-9][0-9]_*.{newer}"))
    result = subprocess.run([sys.executable, "-m", "jupytext", "--sync", *copies], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    changed = []
    for path in files:
        before, after = path.read_text(), (tmp_path / path.name).read_text()
        if before != after:
            diff = difflib.unified_diff(before.splitlines(), after.splitlines(), f"committed/{path.name}",
                                        f"synced/{path.name}", lineterm="", n=1)
            changed.append("\n".join(list(diff)[:40]))
    assert not changed, (f"jupytext {jupytext.__version__} --sync (from the .{newer} side) changes "
                         f"{len(changed)} file(s); {JUPYTEXT_HINT}\n" + "\n\n".join(changed))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_committed_notebooks_are_clean(name: str):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code_cells), "commit notebooks without outputs"
    parameters = notebook.cells[parameters_index(notebook)]
    assert "PCLKIT_SMOKE" in parameters.source
    for cell in code_cells:  # everything comes from pclkit
        assert "class " not in cell.source and "nn.Module" not in cell.source, cell.source


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("name", list(EXPECTED))
def test_parameters_cell_holds_raw_values_only(name: str):
    """No parameter is computed from another inside the parameters cell (papermill injects after it)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    tree = ast.parse(notebook.cells[parameters_index(notebook)].source)
    names: set[str] = set()
    for statement in tree.body:
        line = ast.unparse(statement)
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name), f"{name}: not a plain assignment: {line}"
        used = {node.id for node in ast.walk(statement.value) if isinstance(node, ast.Name)}
        assert not used & names, f"{name}: {line} derives from {used & names}; compute it in the next cell"
        names.add(statement.targets[0].id)
    assert "SMOKE" in names


def setup_values(notebook: nbformat.NotebookNode, injected: str | None) -> dict[str, object]:
    """The UPPERCASE names after the cells up to the one after ``parameters``, with an optional
    papermill-style injected cell right after the parameters cell; executed in this process."""
    index = parameters_index(notebook)
    sources = [c.source for c in notebook.cells[:index + 2] if c.cell_type == "code"]
    if injected is not None:
        sources.insert(sources.index(notebook.cells[index].source) + 1, injected)
    namespace: dict[str, object] = {}
    for source in sources:
        code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))  # IPython magics
        exec(compile(code, "<cell>", "exec"), namespace)  # noqa: S102 - our own notebooks
    return {key: value for key, value in namespace.items() if key.isupper()}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_papermill_smoke_parameter_reaches_derived_values(name: str, monkeypatch: pytest.MonkeyPatch):
    """``papermill -p SMOKE True`` (a cell injected after ``parameters``) sets what ``PCLKIT_SMOKE=1`` sets."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    monkeypatch.chdir(NOTEBOOKS)
    for variable in ("PCLKIT_FIGURES_DIR", "PCLKIT_RUNS_DIR", "PCLKIT_CMU"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PCLKIT_SMOKE", "1")
    from_environment = setup_values(notebook, injected=None)
    monkeypatch.setenv("PCLKIT_SMOKE", "0")
    full = setup_values(notebook, injected=None)
    injected = setup_values(notebook, injected="# Parameters\nSMOKE = True\n")
    assert from_environment["SMOKE"] is True and full["SMOKE"] is False
    assert injected == from_environment
    differs = [key for key in full if full[key] != from_environment[key]]
    assert differs != ["SMOKE"], f"{name}: nothing derives from SMOKE"
    assert from_environment["FIGURES_DIR"] == REPO / "figures"


# --------------------------------------------------------------------------- execution


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


@pytest.mark.slow
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
    expected_shown = len(EXPECTED[name]) - (2 if HAS_CMU else 0) + SHOWN_ONLY.get(name, 0)
    assert shown >= expected_shown, f"{name} displayed only {shown} figures"
    # every result is followed by a sentence saying what to look at
    unexplained = [cell.source.splitlines()[0] for cell, after in zip(notebook.cells, notebook.cells[1:] + [None])
                   if cell.cell_type == "code" and cell.outputs and (after is None or after.cell_type != "markdown")]
    assert not unexplained, f"{name}: result cells without a markdown cell after them: {unexplained}"
    if name in WIDGET_NOTEBOOKS:  # displayed as an ipywidgets view, not a text repr
        last = [c for c in notebook.cells if c.cell_type == "code"][-1]
        data = [o.get("data", {}) for o in last.outputs if o.get("output_type") == "execute_result"]
        assert data and "application/vnd.jupyter.widget-view+json" in data[0], f"{name}: {data}"
    if name == "01_pretraining.ipynb":  # the loss cells print their values beside the chance levels
        text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        for line in ("L_face = ", "ln(2B - 1) = ", "L_pose = ", "2 ln(M + 1) = ", "L_orth (", "L_dis = "):
            assert line in text, f"01 printed no {line!r}"
    if name == "02_linear_evaluation.ipynb":
        tables = figures_dir / "tables" / "synthfaces"
        for suffix in ("csv", "md", "tex"):
            assert (tables / f"results.{suffix}").stat().st_size > 0
        assert "PCL" in (tables / "results.md").read_text()
    print(f"{name}: {seconds:.0f} s")


@pytest.mark.slow
def test_figures_command_regenerates_figures_headless(workspace: Path, tmp_path: Path):
    """``python -m pclkit figures --run ...`` on the smoke runs (trained here if the notebooks did not)."""
    from pclkit.methods import MAIN_COMPARISON
    from pclkit.runs import ensure_run

    runs = [ensure_run("smoke", method, runs_dir=workspace / "runs") for method in MAIN_COMPARISON]
    out = tmp_path / "figures"
    env = {**os.environ, "PCLKIT_CMU": str(tmp_path / "no-cmu"), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "pclkit", "figures", "--out", str(out), "--n", "200", "--embeddings", "tsne"]
    for run in runs:
        command += ["--run", str(run)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    stems = ["synthfaces_factors", "pretraining_curves", "embeddings_tsne", "pose_swap_grid",
             "pose_swap_grid_render3d", "pose_swap_ground_truth", "pose_interpolation",
             "swap_margin_by_yaw_turn"]
    missing = [f"{s}.{f}" for s in stems for f in FORMATS if not (out / f"{s}.{f}").is_file()]
    assert not missing, f"missing {missing}\n{result.stdout[-2000:]}"
