# Every target creates or updates .venv itself, so a fresh clone needs only `make train` and `make test`.
# The project's own directory, so `make -f path/to/Makefile train` also works from a scratch directory
# (data, mlflow.db and artifacts go to the working directory; the code is installed from ROOT).
ROOT   := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV   ?= $(ROOT)/.venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
CLV    := $(BIN)/clv
DEMO   := data/demo
PORT   ?= 3000

export BENTOML_DO_NOT_TRACK := true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: install spark train test serve lint mlflow-ui bench demo clean

install: $(STAMP)

# Reinstall only when the project definition changes. pip and the build backend print pages of notices
# (and this machine's pip configuration warns about every missing package index), so their output goes
# to a log: the product's own first line is not buried, and a failure shows the log's end.
$(STAMP): $(ROOT)/pyproject.toml
	@echo "installing the project and its dependencies into $(VENV) (pip's output: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '$(ROOT)[dev]'; } \
		> $(VENV)/install.log 2>&1 \
		|| { tail -n 40 $(VENV)/install.log; echo "install failed; the whole log: $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

## spark: the Spark engine: pyspark (the `spark` extra) and, when `java` is missing, Debian's Java runtime
spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP)
	@echo "installing the Spark engine (pyspark) into $(VENV) (pip's output: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -e '$(ROOT)[dev,spark]' >> $(VENV)/install.log 2>&1 \
		|| { tail -n 40 $(VENV)/install.log; echo "install failed; the whole log: $(VENV)/install.log"; exit 1; }
	@command -v java >/dev/null 2>&1 || { \
		echo "installing a Java runtime for Spark (Debian's default-jre-headless)"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }
	@java -version 2>&1 | head -n 1
	@touch $@

## train: fit, backtest, log to MLflow, promote, score (creates the demo shop when no data is configured)
train: install
	$(CLV) demo-data --out $(DEMO) --if-unconfigured
	$(CLV) train
	$(CLV) score --out artifacts/scores.parquet

## test: the whole test suite (the Spark engine's tests included, on local Spark)
test: install spark
	$(ROOT)/.ci/system-packages
	cd $(ROOT) && $(BIN)/python -m pytest -q

## serve: the HTTP API and marketer page on port $(PORT)
serve: install
	$(CLV) serve --port $(PORT)

lint: install
	cd $(ROOT) && $(BIN)/ruff check .
	cd $(ROOT) && $(BIN)/ruff format --check .

## mlflow-ui: browse runs, metrics, plots and the registry on http://127.0.0.1:5000
# Ctrl-C stops it without tracebacks: one worker and no background job runner (MLflow's GenAI scoring
# jobs; a single reader needs neither, and their processes printed KeyboardInterrupt tracebacks), and
# the interrupt reaches only the mlflow launcher (its own session; this shell forwards it), which passes it
# on to its server: a second copy sent by the terminal to the server made uvicorn abandon its shutdown
# with a traceback.
mlflow-ui: install
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid $(BIN)/mlflow ui --workers 1 \
	  --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} --host 127.0.0.1 --port 5000 & \
	ui=$$!; trap 'kill -INT $$ui' INT TERM HUP; wait $$ui || wait $$ui

## bench: speed and accuracy benchmarks, then a 3-minute load and soak test of the service (not part of `make test`)
bench: install spark
	$(BIN)/python $(ROOT)/benchmarks/features.py
	$(BIN)/python $(ROOT)/benchmarks/spark.py
	$(BIN)/python $(ROOT)/benchmarks/serving.py
	$(BIN)/python $(ROOT)/benchmarks/soak.py

demo: install
	$(CLV) demo-data --out $(DEMO)

clean:
	rm -rf artifacts mlruns mlflow.db .pytest_cache
