# Every target creates or updates .venv itself, so a fresh clone needs only `make train` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLV    := $(BIN)/clv
DEMO   := data/demo
PORT   ?= 3000

export BENTOML_DO_NOT_TRACK := true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: install train test serve lint mlflow-ui bench demo clean

install: $(STAMP)

# Reinstall only when the project definition changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## train: fit, backtest, log to MLflow, promote, score (creates the demo shop when no data is configured)
train: install
	$(CLV) demo-data --out $(DEMO) --if-unconfigured
	$(CLV) train
	$(CLV) score --out artifacts/scores.parquet

## test: the whole test suite
test: install
	$(BIN)/python -m pytest -q

## serve: the HTTP API and marketer page on port $(PORT)
serve: install
	$(CLV) serve --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mlflow-ui: browse runs, metrics, plots and the registry on http://127.0.0.1:5000
mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} --host 127.0.0.1 --port 5000

bench: install
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/serving.py

demo: install
	$(CLV) demo-data --out $(DEMO)

clean:
	rm -rf artifacts mlruns mlflow.db .pytest_cache
