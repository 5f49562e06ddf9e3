"""MLflow tracking: where runs go, what describes the data, and how models are logged.

This module and `training.registry` are the only places that write to MLflow.
"""

from __future__ import annotations

import os
import socket
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import mlflow
import pandas as pd
import psutil
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from models.persistence import save_predictor
from models.predictor import CLVPredictor
from training.card import ModelCard
from training.pyfunc import CODE, STATE_ARTIFACT

if TYPE_CHECKING:
    # Annotations only: the service imports this module, and these cost 0.4 s of every worker's start.
    import ibis.expr.types as ir
    from matplotlib.figure import Figure

# Pinning requirements avoids MLflow's requirement inference, which loads the model in a subprocess
# and takes seconds per logged model.
_RUNTIME_PACKAGES = ("pandas", "numpy", "scikit-learn", "xgboost", "scipy", "mlflow", "pyarrow")


# How long a tracking server may take to accept a connection before it counts as down.
CONNECT_SECONDS = 5.0
_STORE_FIX = (
    "set MLFLOW_TRACKING_URI (or [mlflow] tracking_uri in clv.toml) to a store that opens, such as the default "
    "sqlite:///mlflow.db (README, Configuration)."
)


class StoreUnavailable(RuntimeError):
    """The MLflow tracking store cannot be opened; the message names it, says why and what to do."""


def check_store(tracking_uri: str) -> None:
    """Raise StoreUnavailable when the tracking server of an http(s) URI does not accept a connection within
    `CONNECT_SECONDS`. MLflow itself retries an unreachable server with backoff for minutes, so a
    command given a wrong address would look hung."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {CONNECT_SECONDS:g} s"
        else:
            reason = (exc.strerror or type(exc).__name__).lower()
        raise StoreUnavailable(
            f"the MLflow tracking server {tracking_uri} cannot be reached ({reason}). Fix: start the server, or "
            + _STORE_FIX
        ) from None


def _store_error(tracking_uri: str, exc: MlflowException) -> StoreUnavailable:
    return StoreUnavailable(
        f"the MLflow tracking store {tracking_uri} cannot be opened ({str(exc).splitlines()[0]}). Fix: "
        + _STORE_FIX
    )


def configure(tracking_uri: str, experiment: str) -> None:
    """Point MLflow at the tracking store and experiment; quiet its progress bars and telemetry.

    Raises StoreUnavailable when the store cannot be opened (`check_store`, or MLflow refuses the URI)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    check_store(tracking_uri)
    # A local SQLite store keeps artifacts next to the database instead of in the working directory.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        known = mlflow.get_experiment_by_name(experiment) is not None
    except MlflowException as exc:
        raise _store_error(tracking_uri, exc) from None
    if not known:
        database = sqlite_path(tracking_uri)
        artifact_location = None if database is None else (database.parent / "mlruns").resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifact_location)
    mlflow.set_experiment(experiment)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a local SQLite store (`sqlite:///relative.db`, `sqlite:////abs/path.db`), else None."""
    return Path(tracking_uri.removeprefix("sqlite:///")) if tracking_uri.startswith("sqlite:///") else None


def client(tracking_uri: str) -> MlflowClient:
    """A client bound to this store for both tracking and registry (not to a global registry URI).

    Raises StoreUnavailable as `configure` does."""
    check_store(tracking_uri)
    try:
        return MlflowClient(tracking_uri, registry_uri=tracking_uri)
    except MlflowException as exc:
        raise _store_error(tracking_uri, exc) from None


def pip_requirements() -> list[str]:
    pins = []
    for package in _RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


FINGERPRINT_PRIME = 1_000_000_007


def data_fingerprint(transactions: ir.Table) -> dict[str, str | int | float]:
    """An order-independent summary and hash of the transactions, to tell which data a run saw.

    The hash is the sum of the engine's hash of every row (modulo a prime, so the sum cannot overflow),
    so the same rows give the same fingerprint in any order on the same engine (DuckDB and Spark hash
    differently; the run's `engine` param says which).
    """
    t = transactions
    row = t.select(
        key=t.customer_id.cast("string")
        + "|"
        + t.timestamp.cast("string")
        + "|"
        + t.amount.cast("string")
        + "|"
        + t.order_id.cast("string")
    )
    result = (
        t.aggregate(
            rows=t.count(),
            customers=t.customer_id.nunique(),
            first=t.timestamp.min(),
            last=t.timestamp.max(),
            revenue=t.amount.sum(),
        )
        .cross_join(row.aggregate(digest=(row.key.hash() % FINGERPRINT_PRIME).sum()))
        .to_pyarrow()
        .to_pylist()[0]
    )
    return {
        "data_rows": int(result["rows"]),
        "data_customers": int(result["customers"]),
        "data_first_timestamp": str(result["first"]),
        "data_last_timestamp": str(result["last"]),
        "data_revenue": round(float(result["revenue"]), 2),
        "data_fingerprint": f"{int(result['digest']):016x}",
    }


# Customers in the bottom-k sketch of a customer base (`customer_sketch`), and the run tag that holds it.
SKETCH_SIZE = 64
SKETCH_TAG = "customer_sketch"
# Below this estimated share of customers in common (`shared_customers`), two logs are two customer
# bases: a shop growing by half a year's customers, or a rolling export moved on by months, stays well
# above it; two shops are near 0.
SAME_CUSTOMERS = 0.2
# Under this share of either base's customers in the other (`contained`), the two are other shops: part
# of a shop (a region, a sample) is all inside it, and a shop grown ten-fold still holds its old base.
OTHER_SHOP = 0.5
# Fewer of one sketch's digests in the other's range than this cannot tell a containment.
MIN_CONTAINMENT_DIGESTS = 8


def customer_sketch(transactions: ir.Table) -> list[str]:
    """A bottom-k sketch of the customer base (Broder, "On the resemblance and containment of
    documents", 1997): the `SKETCH_SIZE` smallest MD5 digests of "customer_id|date of first row".

    The date keeps two shops whose ids are both 1, 2, 3... apart; MD5 is the same in every engine and
    version. Compare two sketches with `shared_customers`.
    """
    t = transactions
    firsts = t.group_by("customer_id").agg(first=t.timestamp.min().date())
    digest = (firsts.customer_id.cast("string") + "|" + firsts.first.cast("string")).hexdigest("md5")
    rows = firsts.select(digest=digest).order_by("digest").limit(SKETCH_SIZE).to_pyarrow()
    return [str(value) for value in rows["digest"].to_pylist()]


def shared_customers(a: list[str], b: list[str]) -> float:
    """Estimated Jaccard similarity of two customer bases from their sketches (0 = none in common, 1 = the
    same customers): the share of the union's smallest digests found in both."""
    both, union = set(a) & set(b), sorted(set(a) | set(b))[: min(len(a), len(b)) or 1]
    return sum(d in both for d in union) / len(union)


def contained(a: list[str], b: list[str]) -> float | None:
    """Estimated share of the customers of sketch `a` who are in the base of sketch `b` (containment,
    Broder 1997): of `a`'s digests within `b`'s range (at most `b`'s largest when `b` is a full sketch),
    the share found in `b`. None when fewer than `MIN_CONTAINMENT_DIGESTS` fall in that range (a base
    much smaller than the other's, whose digests mostly lie beyond it)."""
    limit = max(b) if len(b) >= SKETCH_SIZE else None
    candidates = [d for d in a if limit is None or d <= limit]
    if len(candidates) < MIN_CONTAINMENT_DIGESTS:
        return None
    found = set(b)
    return sum(d in found for d in candidates) / len(candidates)


def other_shop(a: list[str], b: list[str]) -> bool:
    """Whether the bases of sketches `a` and `b` are two shops: each shares under `OTHER_SHOP` of its
    customers with the other, as far as the sketches can tell (`contained`); False when they cannot."""
    shares = (contained(a, b), contained(b, a))
    return all(share is not None and share < OTHER_SHOP for share in shares)


def one_holds_the_other(a: list[str], b: list[str]) -> bool:
    """Whether either base is known (`contained`) to hold at least `OTHER_SHOP` of the other's customers:
    part of a shop (a region, a sample), or a shop grown since. False for two shops, and for a base too
    small beside the other for its sketch to tell (then only `other_shop`'s known share speaks)."""
    shares = (contained(a, b), contained(b, a))
    return any(share is not None and share >= OTHER_SHOP for share in shares)


def log_figures(figures: dict[str, Figure], folder: str = "plots") -> None:
    import matplotlib.pyplot as plt

    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{folder}/{name}.png")
        plt.close(fig)


def log_table(frame: pd.DataFrame, path: str) -> None:
    """Log a small table as a CSV artifact (readable in the MLflow UI)."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / Path(path).name
        frame.to_csv(file, index=False)
        mlflow.log_artifact(str(file), str(Path(path).parent) if Path(path).parent != Path(".") else None)


def log_model(
    name: str,
    predictor: CLVPredictor,
    card: ModelCard,
    example_features: pd.DataFrame,
    registered_model_name: str | None = None,
):
    """Log the pyfunc from code with the predictor's state (`training.pyfunc`), its card as the model's
    metadata, a signature and an input example; returns MLflow's ModelInfo."""
    example = example_features.head(5).reset_index(drop=True)
    # Integer columns become float in the signature: a count can be missing for a new customer.
    example = example.astype({c: "float64" for c in example.select_dtypes("integer").columns})
    signature = infer_signature(example, predictor.predict(example))
    with tempfile.TemporaryDirectory() as tmp:
        state = save_predictor(predictor, Path(tmp) / STATE_ARTIFACT)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(CODE),
            artifacts={STATE_ARTIFACT: str(state)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            metadata=card.to_dict(),
            registered_model_name=registered_model_name,
        )


def owner_tags() -> dict[str, str]:
    """This process, as recorded on the runs it starts, so a later `clv train` can tell a run whose process
    was killed (SIGKILL, a crash) from one still going; the start time tells a reused pid apart."""
    return {
        "clv.host": socket.gethostname(),
        "clv.pid": str(os.getpid()),
        "clv.process_started": f"{psutil.Process().create_time():.3f}",
    }


def end_abandoned_runs(client: MlflowClient, experiment: str) -> list[str]:
    """Mark KILLED the experiment's RUNNING runs whose process, on this host, no longer runs; their ids.

    A run ends FINISHED or FAILED when its process ends in any way it can see (`clv`'s signal handlers);
    after SIGKILL or a crash it would stay RUNNING forever. Runs started on other hosts, or without the
    owner tags, are left alone: whether their process runs cannot be told from here.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    ended = []
    for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if tags.get("clv.host") != socket.gethostname() or "clv.pid" not in tags:
            continue
        if _alive(int(tags["clv.pid"]), float(tags.get("clv.process_started", "0"))):
            continue
        client.set_tag(
            run.info.run_id,
            "clv.ended",
            f"marked KILLED by a later clv train: process {tags['clv.pid']} on {tags['clv.host']} "
            "had stopped without ending the run",
        )
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    return ended


def _alive(pid: int, started: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; whose it is cannot be told, so it is not ours to end
