"""`clv score --engine spark`: the score table computed on Spark, the same columns and values as `clv score`.

The features are built by Spark from the same definitions (`features.pipeline.build_features`), and
the champion is applied to them on the executors with `mlflow.pyfunc.spark_udf`: each executor loads
the registered model (the exact version the alias named when scoring started) and calls the same
`CLVPredictor.predict` as the default engine, batch by batch. A row's scores depend on that row and
on the model only: the targeting lines (value quantiles) were learned on the whole base when the
model was trained and travel inside it, so no partition sees different lines. The table is written
as a Parquet dataset (`features.spark.write_dataset`), replaced only when complete.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import mlflow

from config import Settings
from features import spark
from features.pipeline import FEATURE_COLUMNS, FEATURE_SCHEMA, build_features
from features.schema import SCORE_COLUMNS
from models.targeting import settle_cross_sell
from training.cross_sell import fit_cross_sell, suggestions
from training.loading import LoadedModel, sample_features, scorer_values
from training.score import Progress, ScoreSummary, prepare

# pandas dtype kind of a prediction column -> Spark SQL type.
_SPARK_TYPES = {"f": "double", "i": "bigint", "b": "boolean", "O": "string", "U": "string", "T": "string"}


def score_on_spark(
    shop: spark.SparkShop,
    settings: Settings,
    out_path: Path | str,
    as_of: dt.date | None = None,
    model_uri: str | None = None,
    progress: Progress = lambda _: None,
    warn: Progress = lambda _: None,
) -> ScoreSummary:
    """Score every customer with an order by `as_of` on Spark and write the dataset to `out_path`.

    Raises ModelNotFound and ValueError as `training.score.score` does.
    """
    loaded, data, as_of = prepare(shop, settings, model_uri, as_of, progress, warn)
    progress(f"features at {as_of}")
    features = spark.to_frame(build_features(data.transactions, as_of, data.events, data.customers))
    if features.isEmpty():
        raise ValueError(f"no customer has an order by {as_of}; nothing to score. Fix: use a later --as-of.")
    # env_manager="local": executors run this environment (on a cluster, the project is installed on them,
    # README "Scaling out"); MLflow warns about that choice on every call, which says nothing here.
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        predict = mlflow.pyfunc.spark_udf(
            features.sparkSession, _pinned(loaded), result_type=_result_type(loaded), env_manager="local"
        )
    finally:
        pyfunc_log.setLevel(level)
    from pyspark.sql import functions as F

    scored = features.select(
        predict(*_as_signed(features)).alias("score"),
        features["as_of"].alias("scored_as_of"),
    ).select("score.*", "scored_as_of")
    progress("cross-sell suggestions")
    # The co-purchase counts run on Spark (features.copurchase); the suggestions are made on the driver from
    # the collected counts, as `clv score` makes them, and joined back by customer id.
    ids = features.select("customer_id").toPandas()["customer_id"]
    horizon = loaded.card.horizon_days
    served = loaded.card.cross_sell_served
    suggested = suggestions(fit_cross_sell(data, as_of, horizon, settings, served), ids)
    scored = scored.join(features.sparkSession.createDataFrame(suggested), "customer_id", "left")
    # A cross_sell action without a suggestion becomes nurture, by the default engine's rule, batch by batch.
    scored = scored.mapInPandas(lambda batches: map(settle_cross_sell, batches), schema=scored.schema)
    days = F.col("days_to_next_order")
    constants = {
        "as_of": F.col("scored_as_of"),
        "next_order_date": F.when(F.isnan(days) | days.isNull(), F.lit(None).cast("date")).otherwise(
            F.expr("date_add(to_date(scored_as_of), cast(ceil(days_to_next_order) as int))")
        ),
        **{
            k: F.lit(v).cast("bigint" if isinstance(v, int) else "string")
            for k, v in scorer_values(loaded).items()
        },
    }
    scored = scored.select(
        *[constants[c].alias(c) if c in constants else F.col(c) for c in SCORE_COLUMNS],
        *[c for c in scored.columns if c not in SCORE_COLUMNS and c != "scored_as_of"],
        *[constants[c].alias(c) for c in constants if c not in SCORE_COLUMNS],
    )
    progress(f"scoring and writing {out_path}")
    backend = shop.backend
    rows = spark.write_frame(scored, out_path)
    written = backend.read_parquet(spark.location(out_path))
    totals = written.aggregate(total=written.predicted_clv.sum()).to_pyarrow().to_pylist()[0]
    segments = written.group_by("segment").aggregate(n=written.count()).to_pyarrow().to_pylist()
    deciles = written.group_by("value_decile").aggregate(n=written.count()).to_pyarrow().to_pylist()
    values = scorer_values(loaded)
    return ScoreSummary(
        rows,
        str(values["model_version"]),
        as_of,
        int(values["horizon_days"]),
        float(totals["total"] or 0.0),
        str(values["value_unit"]),
        {r["segment"]: int(r["n"]) for r in segments},
        tuple(loaded.card.notes),
        {int(r["value_decile"]): int(r["n"]) for r in deciles},
    )


def _as_signed(features) -> list:
    """The feature columns in the types of the model's signature, which MLflow enforces in the UDF: integer
    counts as double (`training.tracking.log_model`), the cut-off as a timestamp."""
    from pyspark.sql import functions as F

    kinds = {"int64": "double", "date": "timestamp"}
    return [
        F.col(c).cast(kinds[FEATURE_SCHEMA[c]]).alias(c) if FEATURE_SCHEMA[c] in kinds else F.col(c)
        for c in FEATURE_COLUMNS
    ]


def _pinned(loaded: LoadedModel) -> str:
    """The model's URI by version, so executors load the version the alias named when scoring started."""
    if loaded.uri.startswith("models:/") and "@" in loaded.uri and loaded.version.isdigit():
        return f"{loaded.uri.split('@')[0]}/{loaded.version}"
    return loaded.uri


def _result_type(loaded: LoadedModel) -> str:
    """The Spark struct the model returns, read off its own prediction for a sample customer."""
    sample = loaded.predictor.predict(sample_features())
    return ", ".join(f"{name} {_SPARK_TYPES[sample[name].dtype.kind]}" for name in sample.columns)
