# One command does all set-up: every target creates .venv and installs the
# pinned requirements (requirements.txt) when they are missing or changed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: reproduce test lab notebooks gallery bench browser clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (pclkit)" >/dev/null
	touch $(STAMP)

## the main job on the embedded SynthFaces data (see README "Results")
reproduce: $(STAMP)
	$(PY) -m pclkit reproduce

## the test suite (what CI runs): the linter, then the tests
test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q

## Debian's chromium for the real-browser widget test (no browser download:
## playwright drives the system binary). Installed when we are root with apt;
## otherwise that one test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: chromium not found; tests/test_browser.py will be skipped"; fi

## JupyterLab on the notebooks (jupytext keeps each .ipynb and its .py in step on save)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

## after editing a notebook's .py (or .ipynb) outside JupyterLab: update the other file of
## each pair from the newer one (tests/test_notebooks.py fails while a pair differs)
notebooks: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

gallery: $(STAMP)
	$(PY) -m pclkit gallery --out figures/synthfaces_gallery

bench: $(STAMP)
	$(PY) -m pclkit bench --json results/bench.json

clean-venv:
	rm -rf $(VENV)
