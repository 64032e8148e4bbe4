"""Reference numbers for issue 16's designs (weights, bins, first differences, ETWFE,
always-treated Bacon), from peer packages, written to ``designs.json`` beside this script.

Data: R did's mpdta (``shared/data/canonical/mpdta.csv``) with two constructed columns,

* ``pop = exp(lpop)``: the county's population (mpdta's ``lpop`` is its log, constant
  within county), used as the analytic/sampling weight everywhere below;
* ``emp = exp(lemp)``: employment in levels, the count-like outcome of the Poisson models.

Peers (``pip install -e ".[compare]"``):

* moderndid 0.2 (line-by-line port of R ``did`` 2.x): ``att_gt(weightsname="pop")``,
  analytic SEs, never-treated and not-yet-treated, unconditional and DR with ``lpop``;
* pyfixest 0.60: ``feols`` with ``weights="pop"`` and CRV1 by county (and by state) for the
  static TWFE, hand-binned event-study dummies, the Sun-Abraham saturated regression; the
  weighted ``fepois``;
* diff-diff 3.13: ``WooldridgeDiD`` (ETWFE; OLS and Poisson, not-yet-treated controls) and
  ``BaconDecomposition`` on mpdta with the 2004 cohort recoded as treated from 2003 (so it
  is treated in every period: always treated).

Run:  python benchmarks/reference/designs_reference.py
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "canonical" / "mpdta.csv"

warnings.simplefilter("ignore")


def mpdta() -> pd.DataFrame:
    """mpdta with the constructed columns (the tests build the same ones)."""
    df = pd.read_csv(DATA)
    ft = df["first.treat"]
    return df.assign(
        pop=np.exp(df["lpop"]),
        emp=np.exp(df["lemp"]),
        state=df["countyreal"] // 1000,
        d=((ft > 0) & (df["year"] >= ft)).astype(float),
        event=np.where(ft > 0, df["year"] - ft, -1000),
    )


def _f(x) -> list[float]:
    return [float(v) for v in np.atleast_1d(np.asarray(x, dtype=float))]


CS_CONFIGS = {
    "never_unconditional": dict(control_group="nevertreated", xformla=None, est_method="dr"),
    "notyet_unconditional": dict(control_group="notyettreated", xformla=None, est_method="dr"),
    "never_dr_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="dr"),
    "never_reg_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="reg"),
    "never_ipw_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="ipw"),
}


def cs_weighted(df: pd.DataFrame) -> dict:
    import moderndid

    out = {}
    for name, cfg in CS_CONFIGS.items():
        mp = moderndid.att_gt(
            df,
            yname="lemp",
            tname="year",
            idname="countyreal",
            gname="first.treat",
            weightsname="pop",
            boot=False,
            cband=False,
            **cfg,
        )
        # moderndid 0.2 looks the weights up under their own name in its unit-level table,
        # which holds them only as its normalised ".w" column, so aggte() receives None and
        # uses unweighted cohort shares. R did's compute.aggte() uses the weights
        # (weights.ind <- dta$.w; pg <- mean(weights.ind * (G == g)); the same weights in
        # the weight influence function). Hand moderndid the unit-level weights (in the
        # order of its G) so that its own aggregation code reproduces R's.
        # moderndid orders units by (cohort, never treated last, id): check it by the cohorts
        units = df.groupby("countyreal")[["first.treat", "pop"]].first()
        units["g"] = units["first.treat"].replace(0, np.inf)
        units = units.reset_index().sort_values(["g", "countyreal"])
        assert np.array_equal(units["g"].to_numpy(), np.where(np.asarray(mp.G) == 0, np.inf, mp.G))
        w_unit = units["pop"].to_numpy()
        mp = mp._replace(weights_ind=w_unit / w_unit.mean())
        rec: dict = {
            "att_gt": {
                "group": _f(mp.groups),
                "time": _f(mp.times),
                "att": _f(mp.att_gt),
                "se": _f(mp.se_gt),
            }
        }
        s = moderndid.aggte(mp, type="simple")
        rec["simple"] = {"att": float(s.overall_att), "se": float(s.overall_se)}
        for typ in ("dynamic", "group", "calendar"):
            a = moderndid.aggte(mp, type=typ)
            rec[typ] = {
                "index": _f(a.event_times),
                "att": _f(a.att_by_event),
                "se": _f(a.se_by_event),
                "overall_att": float(a.overall_att),
                "overall_se": float(a.overall_se),
            }
        out[name] = rec
    return out


def twfe_weighted(df: pd.DataFrame) -> dict:
    import pyfixest as pf

    out = {}
    for cl in ("countyreal", "state"):
        for w in (None, "pop"):
            m = pf.feols(
                "lemp ~ d + lpop:year | countyreal + year", df, weights=w, vcov={"CRV1": cl}
            )
            key = f"cluster_{cl}_{'pop' if w else 'unweighted'}"
            out[key] = {
                "att": float(m.coef()["d"]),
                "se": float(m.se()["d"]),
                "lpop_year": float(m.coef()["lpop:year"]),
            }
    return out


#: Event-study designs: bins (first, last), omitted event times; "clip" pools the ends.
ES_DESIGNS = {
    "two_period_bins": {"bins": [[-4, -3], [0, 1], [2, 3]], "ref": [-1], "clip": None},
    "two_refs": {"bins": [], "ref": [-4, -1], "clip": None},
    "leads_pooled_into_ref": {"bins": [[-3, -1]], "ref": [-1], "clip": None},
    "binned_endpoints": {"bins": [], "ref": [-1], "clip": [-2, 1]},
}


def _label(e: int, bins: list) -> int:
    for a, z in bins:
        if a <= e <= z:
            return z if z < 0 else a
    return e


def event_bins(df: pd.DataFrame) -> dict:
    """pyfixest on dummies built by hand for each design (not by zoneimpact)."""
    import pyfixest as pf

    out = {}
    for name, des in ES_DESIGNS.items():
        for w in (None, "pop"):
            d = df.copy()
            ev = d["event"].to_numpy()
            treated = ev > -1000
            if des["clip"]:
                ev = np.where(treated, np.clip(ev, *des["clip"]), ev)
            lab = np.array(
                [
                    _label(int(e), des["bins"]) if t else -1000
                    for e, t in zip(ev, treated, strict=True)
                ]
            )
            refs = {_label(r, des["bins"]) for r in des["ref"]}
            names = {}
            for e in sorted(set(lab[treated]) - refs):
                col = f"e_m{-e}" if e < 0 else f"e_{e}"
                d[col] = (lab == e).astype(float)
                names[str(int(e))] = col
            m = pf.feols(
                "lemp ~ " + " + ".join(names.values()) + " | countyreal + year",
                d,
                weights=w,
                vcov={"CRV1": "countyreal"},
            )
            out[f"{name}_{'pop' if w else 'unweighted'}"] = {
                e: {"estimate": float(m.coef()[c]), "se": float(m.se()[c])}
                for e, c in names.items()
            }
    return out


def sun_abraham_weighted(df: pd.DataFrame) -> dict:
    """Weighted saturated cohort x event regression (Sun & Abraham 2021 eq. 27), pyfixest;
    the event-time aggregates use the cells' weight shares (sum of ``pop``)."""
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
    m = pf.feols(
        "lemp ~ " + " + ".join(c for _, _, c in cells) + " | countyreal + year",
        d,
        weights="pop",
        vcov={"CRV1": "countyreal"},
    )
    coef = m.coef()
    V = m._vcov
    names = list(coef.index)
    b = coef.to_numpy()
    wsum = {c: float(d.loc[d[c] == 1, "pop"].sum()) for _, _, c in cells}
    out = {
        "cells": [
            {"cohort": g, "event": e, "estimate": float(coef[c]), "se": float(m.se()[c])}
            for g, e, c in cells
        ]
    }
    agg = {}
    for e in sorted({e for _, e, _ in cells}):
        a = np.zeros(len(names))
        tot = sum(wsum[c] for _, ee, c in cells if ee == e)
        for _, ee, c in cells:
            if ee == e:
                a[names.index(c)] = wsum[c] / tot
        agg[str(e)] = {"estimate": float(a @ b), "se": float(np.sqrt(a @ V @ a))}
    a = np.zeros(len(names))
    tot = sum(wsum[c] for _, e, c in cells if e >= 0)
    for _, e, c in cells:
        if e >= 0:
            a[names.index(c)] = wsum[c] / tot
    agg["att"] = {"estimate": float(a @ b), "se": float(np.sqrt(a @ V @ a))}
    out["aggregates"] = agg
    return out


def ppml_weighted(df: pd.DataFrame) -> dict:
    import pyfixest as pf

    out = {}
    for w in (None, "pop"):
        m = pf.fepois("emp ~ d | countyreal + year", df, weights=w, vcov={"CRV1": "countyreal"})
        out["pop" if w else "unweighted"] = {"att": float(m.coef()["d"]), "se": float(m.se()["d"])}
    return out


def etwfe(df: pd.DataFrame) -> dict:
    from diff_diff import WooldridgeDiD

    out = {}
    for method, y in (("ols", "lemp"), ("poisson", "emp")):
        r = WooldridgeDiD(method=method, control_group="not_yet_treated").fit(
            df, outcome=y, unit="countyreal", time="year", cohort="first.treat"
        )
        r.aggregate("event")
        r.aggregate("group")
        r.aggregate("calendar")
        rec = {
            "overall": {"att": float(r.overall_att), "se": float(r.overall_se)},
            "att_gt": [
                {"cohort": int(g), "time": int(t), "att": float(v["att"]), "se": float(v["se"])}
                for (g, t), v in r.group_time_effects.items()
            ],
        }
        for fam, eff in (
            ("event", r.event_study_effects),
            ("group", r.group_effects),
            ("calendar", r.calendar_effects),
        ):
            rec[fam] = {
                str(int(k)): {"att": float(v["att"]), "se": float(v["se"])} for k, v in eff.items()
            }
        out[method] = rec
    # linear ETWFE with the time-invariant lpop (Wooldridge 2021 eq. 6.33; diff-diff exovar)
    r = WooldridgeDiD(method="ols", control_group="not_yet_treated").fit(
        df, outcome="lemp", unit="countyreal", time="year", cohort="first.treat", exovar=["lpop"]
    )
    out["ols_lpop"] = {
        "overall": {"att": float(r.overall_att), "se": float(r.overall_se)},
        "att_gt": [
            {"cohort": int(g), "time": int(t), "att": float(v["att"]), "se": float(v["se"])}
            for (g, t), v in r.group_time_effects.items()
        ],
    }
    # weighted Poisson ETWFE coefficients (log points): pyfixest fepois with the post cells
    # and cohort + year effects (Wooldridge 2023 eq. 5.3), weights pop
    import pyfixest as pf

    d = df.copy()
    cells = []
    for g in (2004, 2006, 2007):
        for t in range(g, 2008):
            col = f"c{g}_{t}"
            d[col] = ((d["first.treat"] == g) & (d["year"] == t)).astype(float)
            cells.append((g, t, col))
    m = pf.fepois(
        "emp ~ " + " + ".join(c for _, _, c in cells) + " | cohort + year",
        d.assign(cohort=d["first.treat"]),
        weights="pop",
        vcov={"CRV1": "countyreal"},
    )
    out["poisson_weighted_coef"] = [
        {"cohort": g, "time": t, "coef": float(m.coef()[c])} for g, t, c in cells
    ]
    return out


def bacon_always(df: pd.DataFrame) -> dict:
    """mpdta with the 2004 cohort recoded to 2003 (treated in every period)."""
    from diff_diff import BaconDecomposition

    d = df.assign(ft=df["first.treat"].replace({2004: 2003}))
    r = BaconDecomposition().fit(
        d, outcome="lemp", unit="countyreal", time="year", first_treat="ft"
    )
    return {
        "twfe": float(r.twfe_estimate),
        "n_always_treated_remapped": int(r.n_always_treated_remapped),
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
    ref = {}
    for name, fn in (
        ("cs_weighted", cs_weighted),
        ("twfe_weighted", twfe_weighted),
        ("event_bins", event_bins),
        ("sun_abraham_weighted", sun_abraham_weighted),
        ("ppml_weighted", ppml_weighted),
        ("etwfe", etwfe),
        ("bacon_always", bacon_always),
    ):
        ref[name] = fn(df)
        print("done", name)
    ref["_meta"] = {
        "versions": {p: version(p) for p in ("moderndid", "pyfixest", "diff-diff")},
        "data": "shared/data/canonical/mpdta.csv with pop = exp(lpop), emp = exp(lemp), "
        "state = countyreal // 1000",
    }
    path = HERE / "designs.json"
    path.write_text(json.dumps(ref, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
