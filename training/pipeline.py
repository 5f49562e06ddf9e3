"""`clv train`: backtest, refit on everything, log to MLflow, register, and promote through the gate.

Order matters for safety: the champion alias moves last, only after everything else has been
logged; a failure anywhere before leaves the champion untouched and the MLflow run marked FAILED.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import mlflow
import pandas as pd

from config import Settings
from features.contract import Shop
from features.pipeline import FEATURES_VERSION
from models.btyd_features import NoRepeatPurchases
from models.textbook import base_summary
from training import gate, plots, tracking
from training.backtest import BASE, MODEL, MODEL_LABELS, Backtest, backtest, fit_at
from training.card import ModelCard, feature_event_types_of, feature_inputs_of
from training.cross_sell import RULES
from training.loading import check_inputs
from training.pyfunc import MODEL_FORMAT
from training.registry import Decision, ModelNotFound, Registry
from training.shop_data import ShopData
from training.windows import MIN_BACKTEST_DAYS, MIN_TRAINING_DAYS, backtest_horizon

Progress = Callable[[str], None]


# Run tag of a clv train that refused the log once its run had started: the message it printed.
REFUSED_TAG = "refused"


@dataclass
class TrainResult:
    run_id: str
    version: str
    promoted: bool
    reason: str
    backtest: Backtest
    champion_metrics: dict[str, float] | None
    as_of: dt.date
    horizon_days: int
    seconds: float
    served_model: str
    notes: list[str]
    value_unit: str = "currency"
    champion_label: str = "current champion"
    served_base: str = ""  # the final fit's base in words (`models.btyd_features.BTYDFeatures.describe`)

    def comparison(self) -> pd.DataFrame:
        """Model vs baselines (and the current champion, re-scored on this window or as logged), rows by
        display name."""
        labels, table = self.backtest.labels(), self.backtest.metrics
        if not self.backtest.checked():  # the model row is the base: show it once
            table = table.drop(index=MODEL)
        if self.served_model == "base":
            same = self.backtest.base.btyd_.describe() == self.served_base
            labels[MODEL] = "full model (not served)"
            labels[BASE] += ", served" if same else " (not the base served: see the notes)"
        table = table.rename(index=labels)
        if self.champion_metrics:
            table.loc[self.champion_label] = pd.Series(self.champion_metrics)
        return table


def train(
    shop: Shop,
    settings: Settings,
    as_of: dt.date | None = None,
    progress: Progress = lambda _: None,
    warn: Progress = lambda _: None,
) -> TrainResult:
    """Train to predict `settings.train.horizon_days` days from `as_of` (default: the last transaction date).

    Raises ValueError (the message says why and what to do) when the log cannot be trained on. `warn(message)`
    hears what the user should know but does not stop training: an `as_of` long after the log ends.
    """
    started = time.perf_counter()
    data = ShopData.from_shop(shop)
    as_of = as_of or data.last_date
    horizon_days = settings.train.horizon_days
    late = data.check_cutoff(as_of, horizon_days)
    check_trainable(data, as_of)
    if late:
        warn(late)

    tracking.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment)
    registry = Registry(settings.mlflow)
    client, metric = registry.client, settings.train.promotion_metric

    for run_id in tracking.end_abandoned_runs(client, settings.mlflow.experiment):
        progress(f"marked run {run_id} KILLED: its clv train had stopped without ending it")
    # The owner tags are created with the run: a SIGKILL between creating it and tagging it would leave a
    # RUNNING run no later `clv train` could tell was abandoned.
    tags = {"as_of": str(as_of), "horizon_days": str(horizon_days), "features_version": FEATURES_VERSION}
    with mlflow.start_run(
        run_name=f"clv-{as_of}-h{horizon_days}", tags={**tags, **tracking.owner_tags()}
    ) as run:
        mlflow.log_params(_params(settings, as_of))
        mlflow.log_params(tracking.data_fingerprint(data.transactions))
        sketch = tracking.customer_sketch(data.transactions)
        mlflow.set_tag(tracking.SKETCH_TAG, ",".join(sketch))

        progress("backtest")
        try:
            buyers, repeaters = data.repeat_buyers(as_of)
            if not repeaters:  # nothing below could be fitted: refuse before the backtest's features
                raise NoRepeatPurchases(buyers)
            result = backtest(data, as_of, settings, progress=lambda m: progress(f"backtest: {m}"))
            _log_backtest(result)
            progress("refitting on all data")
            final = fit_at(
                data,
                as_of,
                horizon_days,
                settings,
                progress=lambda m: progress(f"final model: {m}"),
                discount=True,
                base_only=result.base_wins(),
            )
        except NoRepeatPurchases:
            refusal = _no_repeat_message(data, as_of, horizon_days)
            # The run ends FAILED with no model: the UI must say why, as the command did.
            mlflow.set_tag(REFUSED_TAG, refusal)
            raise ValueError(refusal) from None
        # A note that holds for the final model too is said once, without the "backtest:" prefix. When the base
        # alone is served, the final fit's note says why; the backtest's reason is the same with less history
        # (seen: "only 32 customers had bought ..." then "only 43 ..."), and `base_change_note` names a base
        # that differs.
        final_notes = final.predictor.notes_
        # The backtest fit's "p_alive is left empty" is about a table nobody is served: read beside a served
        # table with p_alive and 23 lapsed customers (the young grocery shop) it said the opposite of it.
        # `Backtest.no_dropout_note` says what it means for the backtest.
        said = [*final_notes, result.fit.predictor.no_dropout_note()]
        if final.predictor.kind_ == "base":
            said.append(result.fit.predictor.base_note())
        notes = [
            *(f"backtest: {n}" for n in result.fit.predictor.notes_ if n not in said),
            *final_notes,
            *(f"backtest: {n}" for n in result.not_fitted_notes()),
        ]
        if change := result.base_change_note(final.predictor):
            notes.append(change)
        if result.base_wins():
            notes.append(result.base_wins_reason())
        elif final.predictor.kind_ == "hybrid" and not result.checked():
            notes.append(result.unchecked_note())
        if short := result.short_window_note(horizon_days, data.first_date):
            notes.append(short)
        if outliers := result.outlier_note():
            notes.append(f"backtest: {outliers}")
        if same := result.no_dropout_note():
            notes.append(f"backtest: {same}")
        notes.extend(result.baseline_notes(settings.train.seed))
        if chance := result.chance_note():
            notes.append(chance)
        if unranked := result.unranked_note(metric):
            notes.append(unranked)
        if result.cross_sell is not None and result.cross_sell.note:
            notes.append(result.cross_sell.note)
        notes = list(dict.fromkeys(notes))
        mlflow.set_tags({"served_model": final.predictor.kind_, "notes": " | ".join(notes) or "none"})
        scores = final.predictor.predict(final.reference)
        mlflow.log_params(
            {
                "final_plan": final.plan.describe(),
                "base_models": ",".join(final.predictor.base_models),
                "regularity_k": final.predictor.regularity_k,
                "spend": final.predictor.spend,
                # The rule alone reads `gamma_gamma` on a log without amounts, where every order is worth 1.
                "order_value": final.predictor.btyd_.spend.describe(),
            }
        )
        tracking.log_figures({"clv_distribution": plots.distribution(scores["predicted_clv"])})
        tracking.log_table(
            scores["segment"].value_counts().rename_axis("segment").reset_index(), "segments.csv"
        )

        progress("logging models")
        card = _card(final, data, settings, as_of, horizon_days, result, notes, sketch)
        tracking.log_model(
            "backtest_model",
            # The row that is served, so the registry gate can re-score like for like (training.gate).
            result.served_predictor,
            replace(card, role="backtest"),
            result.fit.reference,
        )
        info = tracking.log_model(
            "model", final.predictor, card, final.reference, registered_model_name=registry.name
        )
        version = str(info.registered_model_version)

        champion = registry.champion()
        champion_metrics, champion_label, compared = None, "", {}
        if unranked:
            decision = _unranked(registry, champion, version)
        else:
            candidate = result.model_metrics()[metric]
            decision, champion_metrics, champion_label, compared = _gate(
                registry, settings, champion, sketch, version, result, candidate, card
            )
        registry.tag(version, compared)
        mlflow.set_tags(compared)
        registry.tag(version, {"gate": decision.reason, "run_id": run.info.run_id})
        mlflow.set_tags(
            {"registered_version": version, "promoted": str(decision.promote), "gate": decision.reason}
        )
        if decision.promote:
            registry.promote(version)

    return TrainResult(
        run.info.run_id,
        version,
        decision.promote,
        decision.reason,
        result,
        champion_metrics,
        as_of,
        horizon_days,
        time.perf_counter() - started,
        final.predictor.kind_,
        notes,
        data.value_unit,
        champion_label,
        final.predictor.btyd_.describe(),
    )


def check_trainable(data: ShopData, as_of: dt.date) -> None:
    """Refuse, with the cause and the fix, logs nothing can be learned from at `as_of` (one on or after the
    first transaction, `ShopData.check_cutoff`): a log of one day, or under `MIN_TRAINING_DAYS` of history
    before the cut-off."""
    if why := _history_refusal(data, as_of):
        raise ValueError(why)


def refusal(data: ShopData, as_of: dt.date, horizon_days: int) -> str | None:
    """The message `train` refuses this log with at `as_of` for `horizon_days` (the cause and the fix), None
    when these checks pass: the history's span (`check_trainable`), and a customer who bought on two
    different days before the backtest's window starts (the backtest fits there first). `clv validate` asks
    it, so a log it calls fine is not then refused by `clv train`. Runs one small query (two when it refuses)."""
    if why := _history_refusal(data, as_of):
        return why
    start = as_of - dt.timedelta(days=backtest_horizon(data.first_date, as_of, horizon_days))
    return _no_repeat_message(data, as_of, horizon_days) if data.repeat_buyers(start)[1] == 0 else None


def _history_refusal(data: ShopData, as_of: dt.date) -> str | None:
    """Why the log's span leaves nothing to learn from at `as_of` (`check_trainable`), None when it does not."""
    if data.first_date == data.last_date:
        return (
            f"every transaction is on one day ({data.first_date}): there is no history to learn repeat buying "
            "from. Fix: train on a log that spans weeks or more."
        )
    history = (as_of - data.first_date).days
    if history >= MIN_TRAINING_DAYS:
        return None
    # Said in the user's dates: the backtest's own cut-off, before the log, meant nothing to them.
    earliest = data.first_date + dt.timedelta(days=MIN_TRAINING_DAYS)
    # Seen: "Fix: use an --as-of from 2024-03-13 to 2024-03-09" for a log of five days.
    fix = (
        f"use an --as-of from {earliest} to {data.last_date} (without --as-of, the last transaction date is used)"
        if earliest <= data.last_date
        else f"train on a log whose transactions span at least {MIN_TRAINING_DAYS} days"
    )
    return (
        f"--as-of {as_of} leaves {history} day{'s' if history != 1 else ''} of history after the first "
        f"transaction ({data.first_date}); training needs at least {MIN_TRAINING_DAYS}: the backtest checks "
        f"the model on the last {MIN_BACKTEST_DAYS} days before the cut-off, fitted on the days before "
        f"them. Fix: {fix}."
    )


def _no_repeat_message(data: ShopData, as_of: dt.date, horizon_days: int) -> str:
    """Why nothing can be trained, in the user's terms: nobody came back, or only too recently (after the
    backtest's cut-off, where its window starts: `training.backtest.backtest`)."""
    buyers, repeaters = data.repeat_buyers(as_of)
    later = "score it with a model trained on a similar shop (clv score --model models:/clv/VERSION)."
    if repeaters == 0:
        return (
            f"none of the {buyers:,} customers who bought up to {as_of} has bought on two different days, so "
            "how often customers come back cannot be estimated. Nothing can be trained on this log yet. What "
            "can still be done: wait until some customers have come back (a few months of history usually "
            f"suffice), or {later}"
        )
    window = backtest_horizon(data.first_date, as_of, horizon_days)
    cutoff = as_of - dt.timedelta(days=window)
    # The window is as long as the horizon, up to half the history and at least MIN_BACKTEST_DAYS: a shorter
    # horizon starts it later, except at that floor.
    shorter = (
        f"use a --horizon-days under {window} (a shorter window starts later), "
        if window > MIN_BACKTEST_DAYS
        else ""
    )
    return (
        f"{repeaters:,} of {buyers:,} customers {'has' if repeaters == 1 else 'have'} bought on two different days, "
        f"but none by {cutoff}, where the backtest's {window}-day window starts: the backtest checks a model "
        "against what customers did in that window, and needs customers who bought twice before it. "
        f"Fix: {shorter}wait a few months, or {later}"
    )


def _params(settings: Settings, as_of: dt.date) -> dict:
    t = settings.train
    return {
        "as_of": str(as_of),
        "horizon_days": t.horizon_days,
        "features_version": FEATURES_VERSION,
        "engine": settings.engine.backend,
        "snapshot_spacing_days": t.snapshot_spacing_days,
        "n_snapshots": t.n_snapshots,
        "min_history_days": t.min_history_days,
        "margin": t.margin,
        "discount_rate": t.discount_rate,
        "promotion_metric": t.promotion_metric,
        "interval_coverage_target": t.interval_coverage,
        "seed": t.seed,
        **{f"targeting_{k}": v for k, v in settings.targeting.model_dump().items()},
    }


def _log_backtest(result: Backtest) -> None:
    mlflow.log_params(
        {
            "backtest_cutoff": str(result.cutoff),
            "backtest_horizon_days": result.horizon_days,
            "backtest_plan": result.plan.describe(),
            "backtest_customers": len(result.frame),
        }
    )
    # backtest_*: the served model; baseline_<id>_*: every baseline (the base too, even when served);
    # candidate_hybrid_*: the full model when the backtest found the base better and it is not served.
    mlflow.log_metrics({f"backtest_{k}": v for k, v in result.model_metrics().items()})
    for model in MODEL_LABELS:
        if model == MODEL and result.served == MODEL:
            continue
        prefix = "candidate_hybrid_" if model == MODEL else f"baseline_{model}_"
        mlflow.log_metrics(
            {prefix + k: float(v) for k, v in result.metrics.loc[model].items() if pd.notna(v)}
        )
    frame = result.frame
    labels = result.labels()
    labelled = {labels[m]: frame[m] for m in MODEL_LABELS if m in frame}
    with_churn = {labels[m]: frame["churn_" + m] for m in MODEL_LABELS if "churn_" + m in frame}
    figures = {
        "deciles": plots.deciles(frame["actual_revenue"], frame[result.served]),
        "churn_calibration": plots.calibration(frame["actual_churned"], with_churn),
    }
    if frame["actual_revenue"].any():  # with no revenue in the window there is no share to capture
        figures["cumulative_gain"] = plots.gain_curve(frame["actual_revenue"], labelled)
    importance = result.fit.predictor.feature_importance()
    if not importance.empty:
        figures["feature_importance"] = plots.importance(importance)
    tracking.log_figures(figures)
    tracking.log_table(result.metrics.rename_axis("model").reset_index(), "backtest_metrics.csv")
    _log_suggestion_backtests(result)


def _log_suggestion_backtests(result: Backtest) -> None:
    """next_order_<model|naive>_<metric> and cross_sell_<model|copurchase|behaviour|popularity>_<metric>
    (copurchase and behaviour when events name items), and their tables."""
    tables = {"next_order": result.next_order}
    if result.cross_sell is not None:
        tables["cross_sell"] = result.cross_sell.metrics
        mlflow.log_params(
            {
                "cross_sell_k": result.cross_sell.k,
                "cross_sell_item": result.cross_sell.column,
                "cross_sell_behaviour": result.cross_sell.behaviour,
                "cross_sell_served": result.cross_sell.served,
            }
        )
    for name, table in tables.items():
        if table is None:
            continue
        for method, row in table.iterrows():
            mlflow.log_metrics({f"{name}_{method}_{k}": float(v) for k, v in row.items() if pd.notna(v)})
        tracking.log_table(table.rename_axis("method").reset_index(), f"backtest_{name}.csv")


def _card(
    final,
    data: ShopData,
    settings: Settings,
    as_of: dt.date,
    horizon_days: int,
    result: Backtest,
    notes: list[str],
    sketch: list[str],
) -> ModelCard:
    return ModelCard(
        horizon_days=horizon_days,
        value_unit=data.value_unit,
        served_model=final.predictor.kind_,
        base_models=list(final.predictor.base_models),
        notes=list(dict.fromkeys(notes)),
        as_of=as_of,
        features_version=FEATURES_VERSION,
        model_format=MODEL_FORMAT,
        trained_with={"events": data.events is not None, "customers": data.customers is not None},
        plan=final.plan.describe(),
        trained_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        data_first_date=data.first_date,
        # The last day of data the model saw: a log that runs on past the cut-off was not read beyond it.
        data_last_date=min(data.last_date, as_of),
        targeting_thresholds=final.predictor.targeting_.thresholds(),
        margin=settings.train.margin,
        discount_rate=settings.train.discount_rate,
        backtest={k: round(v, 6) for k, v in result.model_metrics().items()},
        textbook_base=base_summary(final.reference, horizon_days),
        baselines={
            name: {k: round(float(v), 6) for k, v in row.items() if pd.notna(v)}
            for name, row in result.metrics.drop(index=[MODEL, *result.not_fitted]).iterrows()
        },
        backtest_cutoff=result.cutoff,
        backtest_horizon_days=result.horizon_days,
        customer_sketch=sketch,
        role="scoring",
        trained_columns=feature_inputs_of(data.columns),
        trained_event_types=feature_event_types_of(data.event_types()),
        cross_sell_served=RULES if result.cross_sell is None else result.cross_sell.served,
    )


def _gate(
    registry: Registry,
    settings: Settings,
    champion,
    sketch: list[str],
    version: str,
    result: Backtest,
    candidate: float,
    card: ModelCard,
) -> tuple[Decision, dict[str, float] | None, str, dict[str, str]]:
    """The promotion decision, the champion's metrics and label for the table, and the tags recording the
    comparison. The champion is re-scored on this backtest's window where that is fair (`training.gate`);
    otherwise its logged backtest is compared, and the reason says why. A champion that cannot score the
    data the candidate (`card`) was trained on is replaced: `clv score` would refuse it that data."""
    alias, metric = registry.alias, settings.train.promotion_metric
    other = _other_customers(registry, champion, sketch, version, candidate)
    if other is not None or champion is None:
        # No champion, or one of another customer base whose backtest says nothing about this one.
        return other or registry.decide(metric, candidate), None, "", {}
    try:
        loaded = registry.load_version(champion.version)
        # Re-scored on features it was not trained with, its numbers would be wrong, not worse.
        check_inputs(
            loaded, card.trained_with, card.value_unit, card.trained_columns or {}, card.trained_event_types
        )
    except (ModelNotFound, ValueError) as exc:
        # A champion this code cannot run, or that cannot score the shop's data as it now is, serves
        # nothing and scores nothing: any candidate is better.
        why = str(exc).split(" Fix:")[0].rstrip(". ")  # its fix ("retrain") is what is happening
        what = "be run by this code" if isinstance(exc, ModelNotFound) else "score data like this run's"
        reason = f"{alias} v{champion.version} cannot {what}, so it is replaced ({why})"
        return Decision(True, reason, champion.version, None, candidate), None, "", {}
    if loaded.card.horizon_days != card.horizon_days:
        # Apps and exports read the champion's values as its horizon's: swapping it would change their
        # meaning, not only their quality.
        reason = (
            f"not compared: {alias} v{champion.version} predicts {loaded.card.horizon_days} days and this model "
            f"{card.horizon_days}; promoting it would change the horizon of every value `clv score` and the API "
            f"return. To serve the new model: clv promote {version}"
        )
        return Decision(False, reason, str(champion.version), None, candidate), None, "", {}
    same = gate.rescore_champion(registry, settings, champion.run_id, result)
    if isinstance(same, str):
        logged = registry.decide(metric, candidate)
        reason = (
            f"{logged.reason}, each on its own backtest window: the champion was not re-scored on this "
            f"one ({same})"
        )
        label = f"champion v{champion.version} (its own backtest window)"
        return (
            replace(logged, reason=reason),
            registry.logged_backtest(champion),
            label,
            {"gate_window": "each model's own backtest window"},
        )
    verdict = (
        "the champion is better beyond noise"
        if same.champion_better
        else "not worse beyond noise, and it has seen the newer data"
    )
    reason = (
        f"on this backtest's window ({same.window}) {metric} {same.candidate:.4f} vs {alias} "
        f"v{champion.version}'s backtest model {same.champion:.4f} (gain, 90% interval "
        f"{same.gain_low:+.4f} to {same.gain_high:+.4f}): {verdict}"
    )
    decision = Decision(not same.champion_better, reason, champion.version, same.champion, same.candidate)
    return (
        decision,
        same.champion_metrics,
        f"champion v{champion.version} (re-scored on this window)",
        same.tags(),
    )


def _unranked(registry: Registry, champion, version: str) -> Decision:
    """The decision for a candidate whose backtest could not rank customers (`Backtest.unranked_note`):
    it serves when there is nothing else, and never replaces a champion on no evidence."""
    if champion is None:
        reason = f"no {registry.alias} yet; the backtest could not rank customers (see the notes)"
        return Decision(True, reason, None, None, float("nan"))
    reason = (
        f"not compared with {registry.alias} v{champion.version}: the backtest could not rank customers (see "
        f"the notes). To serve the new model anyway: clv promote {version}"
    )
    return Decision(False, reason, str(champion.version), None, float("nan"))


def _other_customers(
    registry: Registry, champion, sketch: list[str], version: str, candidate: float
) -> Decision | None:
    """A refusal when the champion was trained on another customer base (another shop, or another part of
    one), whose backtest says nothing about this one; None when the two can be compared."""
    logged = registry.sketch_of(champion) if champion is not None else None
    if not logged:
        return None
    shared = tracking.shared_customers(sketch, logged)
    if shared >= tracking.SAME_CUSTOMERS:
        return None
    reason = (
        f"not compared: {registry.alias} v{champion.version} was trained on other customers (about {shared:.0%} "
        f"in common with these), so its backtest says nothing about this data. To serve the new model: "
        f"clv promote {version}"
    )
    return Decision(False, reason, str(champion.version), None, candidate)
