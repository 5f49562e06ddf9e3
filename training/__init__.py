"""Training, backtesting, tracking and the model registry: the only stage that imports MLflow."""

import os

# MLflow starts a thread when imported that posts usage data out; a shop's training and service phone
# nobody. Without a network that thread's failure also raced the main thread over an environment variable
# (KeyError '_MLFLOW_TELEMETRY_SESSION_ID' ended a `clv train` in CI). This package's modules are where
# MLflow is imported, so its __init__ runs first.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
