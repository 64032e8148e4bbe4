"""Reference numbers for Sun-Abraham ``with_inference`` (issue 13) and the weighted
Goodman-Bacon decomposition (issue 16, item 8), written to
``sa_inference_bacon_weights.json`` beside this script.

Data: R did's mpdta (``shared/data/canonical/mpdta.csv``) with the columns the tests build
too (see ``designs_reference.mpdta``): ``pop = exp(lpop)`` (constant within county),
``state = countyreal // 1000``, ``d`` the treatment dummy and ``event`` the relative period.

Peers (``pip install -e ".[compare]"``):

* pyfixest 0.60: the Sun & Abraham (2021, eq. 27) saturated regression, cohort x event
  dummies built here by hand (never-treated controls, ``e = -1`` excluded), clustered
  CRV1 on ``state`` (a column coarser than the unit), two ways on ``state`` and ``year``,
  and weighted by ``pop`` clustered on ``state``; the IW aggregates (eq. 28-29) are
  ``a' b`` and ``sqrt(a' V a)`` with the cells' observation (or ``pop``) shares, as in
  ``designs_reference.sun_abraham_weighted``. The static TWFE ``lemp ~ d | countyreal +
  year`` with and without ``weights="pop"``.
* diff-diff 3.13: ``BaconDecomposition`` with ``SurveyDesign(weights="pop")`` (weighted
  unit shares and weighted 2x2 means; it requires weights constant within unit).

Run:  python benchmarks/reference/sa_inference_bacon_weights_reference.py
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from designs_reference import mpdta

HERE = Path(__file__).resolve().parent

warnings.simplefilter("ignore")

#: pyfixest clusterings of the saturated regression: name -> (vcov, weights)
SA_CONFIGS = {
    "state": ({"CRV1": "state"}, None),
    "state_year": ({"CRV1": "state+year"}, None),
    "pop_state": ({"CRV1": "state"}, "pop"),
}


def sun_abraham_clustered(df: pd.DataFrame) -> dict:
    import pyfixest as pf

    d = df.copy()
    cells = []
    for g in (2004, 2006, 2007):
        for e in range(2003 - g, 2008 - g):
            if e == -1:
                continue
            col = f"c{g}_{'m' if e < 0 else ''}{abs(e)}"
            d[col] = ((d["first.treat"] == g) & (d["event"] == e)).astype(float)
            cells.append((g, e, col))
    formula = "lemp ~ " + " + ".join(c for _, _, c in cells) + " | countyreal + year"
    out = {}
    for name, (vcov, w) in SA_CONFIGS.items():
        m = pf.feols(formula, d, weights=w, vcov=vcov)
        coef = m.coef()
        V = np.asarray(m._vcov)
        names = list(coef.index)
        b = coef.to_numpy()
        mass = {
            c: float(d.loc[d[c] == 1, w].sum()) if w else float(d[c].sum()) for _, _, c in cells
        }

        def agg(keep, names=names, mass=mass, b=b, V=V) -> dict:
            a = np.zeros(len(names))
            tot = sum(mass[c] for g, e, c in cells if keep(e))
            for _, e, c in cells:
                if keep(e):
                    a[names.index(c)] = mass[c] / tot
            return {"estimate": float(a @ b), "se": float(np.sqrt(a @ V @ a))}

        aggregates = {str(e): agg(lambda x, e=e: x == e) for e in sorted({e for _, e, _ in cells})}
        aggregates["att"] = agg(lambda x: x >= 0)
        out[name] = {
            "vcov": str(vcov),
            "weights": w,
            "cells": [
                {"cohort": g, "event": e, "estimate": float(coef[c]), "se": float(m.se()[c])}
                for g, e, c in cells
            ],
            "aggregates": aggregates,
        }
    return out


def twfe_static(df: pd.DataFrame) -> dict:
    import pyfixest as pf

    out = {}
    for w in (None, "pop"):
        m = pf.feols("lemp ~ d | countyreal + year", df, weights=w, vcov={"CRV1": "countyreal"})
        out["pop" if w else "unweighted"] = float(m.coef()["d"])
    return out


def bacon_weighted(df: pd.DataFrame) -> dict:
    from diff_diff import BaconDecomposition
    from diff_diff.survey import SurveyDesign

    r = BaconDecomposition().fit(
        df,
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treat="first.treat",
        survey_design=SurveyDesign(weights="pop"),
    )
    return {
        "twfe": float(r.twfe_estimate),
        "comparisons": [
            {
                "type": str(c.comparison_type),
                "treated": int(c.treated_group),
                "control": str(c.control_group),
                "weight": float(c.weight),
                "estimate": float(c.estimate),
            }
            for c in r.comparisons
        ],
    }


def main() -> None:
    df = mpdta()
    ref = {
        "sun_abraham_clustered": sun_abraham_clustered(df),
        "twfe_static": twfe_static(df),
        "bacon_weighted": bacon_weighted(df),
        "_meta": {
            "versions": {p: version(p) for p in ("pyfixest", "diff-diff")},
            "data": "shared/data/canonical/mpdta.csv with pop = exp(lpop), "
            "state = countyreal // 1000",
        },
    }
    path = HERE / "sa_inference_bacon_weights.json"
    path.write_text(json.dumps(ref, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
