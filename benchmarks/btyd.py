"""Benchmark: fitting the buy-till-you-die models on large simulated bases.

    .venv/bin/python benchmarks/btyd.py [--sizes 1e5,1e6] [--repeats 3]

For each size, customers are drawn from the models' own generative stories (`models.bgnbd.simulate`,
`models.pareto_nbd.simulate`, CDNOW parameters; `models.mbgcnbd.simulate` with k = 2 and about the
grocery cohort's parameters) with first purchases spread over three years and recency in whole days,
as `features.rfm` produces; spend per repeat purchase day comes from the Gamma-Gamma story. The table
shows the median wall time of `fit` (simulation excluded; for MBG/CNBD-k the whole choice of k by
`models.mbgcnbd.fit_regularity`, one fit per k tried), the number of distinct histories the
likelihood is evaluated on, and the recovered parameters. There is no
reference implementation to compare with offline (`lifetimes` needs numpy < 2), so only our times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import bgnbd, mbgcnbd, pareto_nbd  # noqa: E402
from models.btyd_fit import collapse, summary_arrays  # noqa: E402
from models.gamma_gamma import GammaGammaModel  # noqa: E402

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
REGULAR = {"r": 1.3, "alpha": 2.8, "a": 0.42, "b": 0.79}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def base(n: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 3 * 365, n).astype(float)
    out = {}
    for name, simulate, params in (
        ("bgnbd", bgnbd.simulate, BGNBD),
        ("pareto_nbd", pareto_nbd.simulate, PARETO),
    ):
        X = simulate(params, age, seed=seed + 1)
        X["btyd_recency"] = np.floor(X["btyd_recency"])
        out[name] = X
    X = mbgcnbd.simulate(REGULAR, age, k=2, seed=seed + 2)
    out["mbgcnbd"] = X.assign(btyd_recency=np.floor(X["btyd_recency"]))
    X = out["bgnbd"]
    x = X["btyd_frequency"].to_numpy()
    nu = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], n)
    # The mean of x Gamma(p, nu) values is Gamma(p x, x nu).
    spend = np.where(x > 0, rng.gamma(SPEND["p"] * np.maximum(x, 1), 1 / (np.maximum(x, 1) * nu)), 0.0)
    out["gamma_gamma"] = X.assign(btyd_monetary=spend)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = {
        "bgnbd": lambda X: bgnbd.BetaGeoModel().fit(X),
        "pareto_nbd": lambda X: pareto_nbd.ParetoNBDModel().fit(X),
        "mbgcnbd": mbgcnbd.fit_regularity,
        "gamma_gamma": lambda X: GammaGammaModel().fit(X),
    }
    print(f"{'model':<12} {'customers':>10} {'histories':>10} {'fit s':>7}  parameters")
    for size in (int(float(s)) for s in args.sizes.split(",")):
        data = base(size)
        for name, fit in models.items():
            X = data[name]
            histories = (
                len(collapse(*summary_arrays(X, 7.0))[1])
                if name != "gamma_gamma"
                else int((X["btyd_frequency"] > 0).sum())
            )
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                model = fit(X)
                times.append(time.perf_counter() - start)
            params = ", ".join(f"{k}={v:.3f}" for k, v in model.params_.items())
            if name == "mbgcnbd":
                params = f"k={model.k}, {params}"
            print(f"{name:<12} {size:>10,} {histories:>10,} {statistics.median(times):>7.2f}  {params}")


if __name__ == "__main__":
    main()
