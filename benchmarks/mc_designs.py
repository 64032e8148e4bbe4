"""Monte Carlo with known truth for the designs beyond a binary staggered switch (issue 16).

Designs (each a function returning a frame and its true effects; the tests import them
and run a reduced number of replications):

* ``rc``: repeated cross-sections (fresh draws every period) in which the treated group
  differs in a covariate ``x`` whose effect on the outcome changes over time (so only
  conditional parallel trends hold), the effect is heterogeneous in ``x``, and the sample
  over-represents high-``x`` treated observations (inclusion probability known, sampling
  weight = its inverse). Truth: population ATT(g,t) = 1 + 0.5 e + 0.5 E[x | G = g].
  Estimator: ``cs_repeated_cross_section`` (DR, covariate ``x``, weights).
* ``switching``: a non-absorbing treatment switched on and off (see
  :func:`simulate_switching`) for the de Chaisemartin-D'Haultfoeuille DID_l.
* ``dose``: a continuous dose with a known ATT(d) curve for ``continuous_did``
  (:func:`simulate_dose`; pointwise and uniform-band coverage).
* ``ddd``: staggered enabling crossed with an eligibility partition, with cohort- and
  eligibility-specific trends, for ``triple_difference`` (:func:`simulate_ddd`).

Run:  python benchmarks/mc_designs.py [--reps 500] [--design rc]
(full runs in RESULTS.md: rc 500, switching 200, dose 500, ddd 300 replications)
Output: a table of bias, SD, mean SE and 95% coverage per target; paste into RESULTS.md.
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import special

from zoneimpact.errors import EstimationError
from zoneimpact.panel import Panel
from zoneimpact.parallel import replicate

# ----------------------------------------------------------------------------- RC
RC_PERIODS = (1, 2, 3, 4)
RC_COHORT = 3
_PS_A, _PS_B = -0.5, 1.0  # P(G = 3 | x) = expit(a + b x), x ~ N(0, 1)


def rc_truth() -> dict[str, float]:
    """Population ATT by event time (quadrature over x ~ N(0, 1))."""
    grid = np.linspace(-9, 9, 20001)
    dens = np.exp(-0.5 * grid**2) * special.expit(_PS_A + _PS_B * grid)
    ex = float(np.sum(grid * dens) / np.sum(dens))
    tru = {f"event:{e}": 1 + 0.5 * e + 0.5 * ex for e in (0, 1)}
    tru["event:-1"] = 0.0
    tru["att"] = (tru["event:0"] + tru["event:1"]) / 2
    return tru


def simulate_rc(rng: np.random.Generator, n_per_period: int = 1500) -> pd.DataFrame:
    """One repeated cross-section sample (see the module docstring)."""
    rows = []
    for t in RC_PERIODS:
        m = 3 * n_per_period  # population draws, thinned by the sampling design
        x = rng.standard_normal(m)
        g = np.where(rng.random(m) < special.expit(_PS_A + _PS_B * x), RC_COHORT, 0)
        # over-sample treated observations with high x: inclusion probability known
        incl = np.where(g > 0, special.expit(0.3 + 1.2 * x), 0.35)
        keep = rng.random(m) < incl
        x, g, incl = x[keep], g[keep], incl[keep]
        e = t - RC_COHORT
        effect = np.where((g > 0) & (e >= 0), 1 + 0.5 * e + 0.5 * x, 0.0)
        y = 0.5 * (g > 0) + 0.2 * t + x * (0.5 + 0.4 * t) + effect + rng.standard_normal(len(x))
        rows.append(pd.DataFrame({"time": t, "g": g, "x": x, "y": y, "w": 1 / incl}))
    df = pd.concat(rows, ignore_index=True)
    df["id"] = np.arange(len(df))
    return df


def rc_panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="id", time="time", cohort="g", outcomes="y", covariates=["x", "w"]
    )


def rc_one(rep: int, rng: np.random.Generator) -> list[dict]:
    from zoneimpact.estimators.cs_repeated_cross_section import fit

    df = simulate_rc(rng)
    panel = rc_panel(df)
    tru = rc_truth()
    out = []
    for label, opts in (
        ("dr_x_weighted", {"covariates": ["x"], "weights": "w"}),
        ("reg_x_weighted", {"covariates": ["x"], "weights": "w", "est_method": "reg"}),
        ("ipw_x_weighted", {"covariates": ["x"], "weights": "w", "est_method": "ipw"}),
        ("dr_x_unweighted", {"covariates": ["x"]}),
        ("dr_no_x_weighted", {"weights": "w"}),
    ):
        try:
            res = fit(panel, outcome="y", aggregations=("simple", "dynamic"), **opts)
            t = res.terms.set_index("term")
        except EstimationError:  # every post cell failed (overlap): a missing replication
            t = pd.DataFrame({"estimate": [], "se": []})
        for term, truth in tru.items():
            out.append(
                {
                    "estimator": label,
                    "term": term,
                    "truth": truth,
                    # a cell that cannot be estimated (e.g. overlap) counts as missing
                    "estimate": float(t["estimate"].get(term, np.nan)),
                    "se": float(t["se"].get(term, np.nan)),
                }
            )
    return out


# ----------------------------------------------------------------------------- switching
SW_BETA, SW_CARRY = 1.0, 0.5  # effect of D_t and of D_{t-1} on Y_t


def simulate_switching(
    rng: np.random.Generator, n_groups: int = 300, n_periods: int = 10
) -> pd.DataFrame:
    """A binary treatment switched on and off, with trends specific to the status quo.

    30% of groups start treated. Each group switches at a date drawn from 3..9 or never
    (40%); after ``k ~ U{1..4}`` periods in the new state it switches back with
    probability 0.6 (so treatments end, as zones revoked in a rectification). Outcome
    ``Y = a_g + c_{t, D_{g,1}} + b_g (D_t + 0.5 D_{t-1}) + e`` with ``b_g ~ N(1, 0.3^2)``:
    parallel trends hold within status quo only, effects carry over one period and
    differ across groups. Columns ``unit``, ``time``, ``d``, ``y``, ``b`` (true slope).
    """
    d0 = (rng.random(n_groups) < 0.3).astype(float)
    D = np.repeat(d0[:, None], n_periods, axis=1)
    switch = rng.random(n_groups) >= 0.4
    for g in np.flatnonzero(switch):
        f = int(rng.integers(3, 10)) - 1  # 0-based first switch period
        k = int(rng.integers(1, 5))
        D[g, f:] = 1 - d0[g]
        if rng.random() < 0.6 and f + k < n_periods:
            D[g, f + k :] = d0[g]
    b = rng.normal(1.0, 0.3, n_groups)
    trend = rng.normal(0, 0.5, (2, n_periods)).cumsum(axis=1)
    lag = np.concatenate([D[:, :1], D[:, :-1]], axis=1)
    y = (
        rng.normal(0, 1, n_groups)[:, None]
        + trend[d0.astype(int)]
        + b[:, None] * (SW_BETA * D + SW_CARRY * lag)
        + rng.normal(0, 0.5, (n_groups, n_periods))
    )
    g_idx, t_idx = np.meshgrid(np.arange(n_groups), np.arange(n_periods), indexing="ij")
    return pd.DataFrame(
        {
            "unit": g_idx.ravel() + 1,
            "time": t_idx.ravel() + 1,
            "d": D.ravel(),
            "y": y.ravel(),
            "b": b[g_idx].ravel(),
        }
    )


def switching_truth(df: pd.DataFrame, effects: int, placebo: int) -> dict[str, float]:
    """True DID_l given the realised paths: the switchers' mean of
    ``S_g b_g [(D_t - D_1) + 0.5 (D_{t-1} - D_1)]`` at ``t = F_g - 1 + l`` over the groups
    DID_l uses (dCDH eq. 4 with the potential outcomes of this design); placebos 0."""
    D = df.pivot(index="unit", columns="time", values="d").to_numpy()
    b = df.groupby("unit")["b"].first().to_numpy()
    n_t = D.shape[1]
    d0 = D[:, 0]
    ch = D != d0[:, None]
    F = np.where(ch.any(axis=1), np.argmax(ch, axis=1) + 1.0, np.inf)
    Fc = np.where(np.isfinite(F), F, n_t + 1)
    T_g = pd.Series(Fc).groupby(d0).transform("max").to_numpy() - 1
    tru: dict[str, float] = {}
    for ell in range(1, effects + 1):
        vals = []
        for g in np.flatnonzero(np.isfinite(F)):
            t = int(F[g]) - 1 + ell
            if t <= T_g[g] and t <= n_t:
                s = np.sign(D[g, int(F[g]) - 1] - d0[g])
                vals.append(s * b[g] * ((D[g, t - 1] - d0[g]) + SW_CARRY * (D[g, t - 2] - d0[g])))
        tru[f"event:{ell - 1}"] = float(np.mean(vals)) if vals else np.nan
    for ell in range(1, placebo + 1):
        tru[f"event:{-ell - 1}"] = 0.0
    return tru


def switching_panel(df: pd.DataFrame) -> Panel:
    from zoneimpact.estimators.chaisemartin import switching_panel as make

    return make(df, unit="unit", time="time", outcomes="y", treatment="d")


def switching_one(rep: int, rng: np.random.Generator) -> list[dict]:
    from zoneimpact.estimators.chaisemartin import fit

    df = simulate_switching(rng)
    tru = switching_truth(df, 4, 2)
    out = []
    for label, opts in (
        ("both", {}),
        ("in", {"switchers": "in"}),
        ("out", {"switchers": "out"}),
    ):
        res = fit(switching_panel(df), outcome="y", treatment="d", effects=4, placebo=2, **opts)
        t = res.terms.set_index("term")
        want = tru if label == "both" else switching_truth_subset(df, 4, 2, label)
        for term, truth in want.items():
            out.append(
                {
                    "estimator": f"did_l_{label}",
                    "term": term,
                    "truth": truth,
                    "estimate": float(t["estimate"].get(term, np.nan)),
                    "se": float(t["se"].get(term, np.nan)),
                }
            )
    return out


def switching_truth_subset(
    df: pd.DataFrame, effects: int, placebo: int, which: str
) -> dict[str, float]:
    """Truth for switchers in (or out) only: the same with the other switchers removed."""
    D = df.pivot(index="unit", columns="time", values="d")
    d0 = D.iloc[:, 0]
    first = D.apply(
        lambda r: r[r != r.iloc[0]].iloc[0] if (r != r.iloc[0]).any() else r.iloc[0], axis=1
    )
    s = np.sign(first - d0)
    drop = s[s == (-1 if which == "in" else 1)].index
    return switching_truth(df[~df["unit"].isin(drop)], effects, placebo)


# ----------------------------------------------------------------------------- dose
def dose_effect(d: np.ndarray) -> np.ndarray:
    """True ATT(d) = 0.5 d + 0.8 d^2 (a cubic B-spline represents it exactly)."""
    return 0.5 * d + 0.8 * d**2


DOSE_LOW = 0.05
DOSE_GRID = (0.2, 0.4, 0.6, 0.8)


def dose_truth() -> dict[str, float]:
    """Population ATT^o, ACRT^o and the curves at DOSE_GRID for D ~ U(DOSE_LOW, 1)."""
    ed = (1 + DOSE_LOW) / 2
    ed2 = (1 - DOSE_LOW**3) / (3 * (1 - DOSE_LOW))
    tru = {"att": 0.5 * ed + 0.8 * ed2, "acrt": 0.5 + 1.6 * ed}
    for i, d in enumerate(DOSE_GRID):
        tru[f"att_d:{i}"] = float(dose_effect(np.array(d)))
        tru[f"acrt_d:{i}"] = 0.5 + 1.6 * d
    return tru


def simulate_dose(rng: np.random.Generator, n_units: int = 600, n_periods: int = 4) -> pd.DataFrame:
    """Staggered adoption (cohorts 2..n_periods; 25% never treated) with a dose
    ``D ~ U(0.05, 1)`` independent of the cohort. Levels depend on the dose, trends do not
    (strong parallel trends): ``Y_it = a_i + 0.5 D_i + c_t + 1{t >= G_i} ATT(D_i) + e``.
    Columns ``unit``, ``time``, ``g`` (0 never), ``dose``, ``y``."""
    g = rng.integers(2, n_periods + 1, n_units)
    g = np.where(rng.random(n_units) < 0.25, 0, g)
    dose = np.where(g > 0, rng.uniform(DOSE_LOW, 1.0, n_units), 0.0)
    a = rng.normal(0, 1, n_units) + 0.5 * dose
    c = rng.normal(0, 0.5, n_periods).cumsum()
    t = np.arange(1, n_periods + 1)
    on = (g[:, None] > 0) & (t[None, :] >= g[:, None])
    y = (
        a[:, None]
        + c[None, :]
        + on * dose_effect(dose)[:, None]
        + rng.normal(0, 0.5, (n_units, n_periods))
    )
    ui, ti = np.meshgrid(np.arange(n_units), np.arange(n_periods), indexing="ij")
    return pd.DataFrame(
        {
            "unit": ui.ravel() + 1,
            "time": ti.ravel() + 1,
            "g": g[ui].ravel(),
            "dose": dose[ui].ravel(),
            "y": y.ravel(),
        }
    )


def dose_panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="g", outcomes="y", covariates=["dose"]
    )


def dose_one(rep: int, rng: np.random.Generator, n_boot: int = 499) -> list[dict]:
    from zoneimpact.estimators.continuous_did import fit

    df = simulate_dose(rng)
    res = fit(
        dose_panel(df), outcome="y", dose="dose", dose_grid=list(DOSE_GRID), n_boot=n_boot, rng=rng
    )
    t = res.terms.set_index("term")
    tru = dose_truth()
    out = [
        {
            "estimator": "cgbs",
            "term": k,
            "truth": v,
            "estimate": float(t.loc[k, "estimate"]),
            "se": float(t.loc[k, "se"]),
        }
        for k, v in tru.items()
    ]
    for curve in ("att_d", "acrt_d"):
        keys = [f"{curve}:{i}" for i in range(len(DOSE_GRID))]
        inside = all(t.loc[k, "band_low"] <= tru[k] <= t.loc[k, "band_high"] for k in keys)
        out.append(
            {
                "estimator": "cgbs",
                "term": f"{curve} uniform band",
                "truth": np.nan,
                "estimate": np.nan,
                "se": np.nan,
                "covered": float(inside),
            }
        )
    return out


# ----------------------------------------------------------------------------- DDD
def simulate_ddd(rng: np.random.Generator, n_units: int = 800, n_periods: int = 5) -> pd.DataFrame:
    """Staggered enabling (cohorts 3, 4 and never) crossed with an eligibility partition Q.

    Trends differ by cohort AND by eligibility (so neither DiD is valid), but the
    eligible-ineligible gap in trends is common to all cohorts (DDD parallel trends):
    ``Y = a_i + c_t + s_{G,t} + q_{Q,t} + 0.5 x t + 1{t >= G, Q = 1}(1 + 0.5 (t - G)) + e``.
    Columns ``unit``, ``time``, ``g`` (0 never), ``q``, ``x``, ``y``.
    """
    g = rng.choice([0, 3, 4], size=n_units, p=[0.3, 0.35, 0.35])
    q = (rng.random(n_units) < 0.5).astype(float)
    x = rng.normal(0, 1, n_units)
    t = np.arange(1, n_periods + 1)
    s_trend = {h: rng.normal(0, 1, n_periods).cumsum() for h in (0, 3, 4)}
    q_trend = {v: rng.normal(0, 1, n_periods).cumsum() for v in (0.0, 1.0)}
    base = (
        rng.normal(0, 1, n_units)[:, None]
        + np.array([s_trend[h] for h in g])
        + np.array([q_trend[v] for v in q])
    )
    on = (g[:, None] > 0) & (t[None, :] >= g[:, None]) & (q[:, None] == 1)
    eff = on * (1 + 0.5 * (t[None, :] - g[:, None]))
    y = base + 0.5 * x[:, None] * t[None, :] + eff + rng.normal(0, 1, (n_units, n_periods))
    ui, ti = np.meshgrid(np.arange(n_units), np.arange(n_periods), indexing="ij")
    return pd.DataFrame(
        {
            "unit": ui.ravel() + 1,
            "time": ti.ravel() + 1,
            "g": g[ui].ravel(),
            "q": q[ui].ravel(),
            "x": x[ui].ravel(),
            "y": y.ravel(),
        }
    )


def ddd_truth() -> dict[str, float]:
    """ATT(g,t) = 1 + 0.5 e for e >= 0 (cohorts 3 and 4, periods 1..5)."""
    tru = {f"event:{e}": 1 + 0.5 * e for e in (0, 1, 2)}
    tru.update({"event:-2": 0.0, "event:-3": 0.0})
    # simple ATT: cohort-share weights; cohorts equally likely, 3 post cells of g=3, 2 of g=4
    tru["att"] = (1 + 1.5 + 2 + 1 + 1.5) / 5
    return tru


def ddd_panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="g", outcomes="y", covariates=["q", "x"]
    )


def ddd_one(rep: int, rng: np.random.Generator) -> list[dict]:
    from zoneimpact.estimators.triple_difference import fit

    df = simulate_ddd(rng)
    panel = ddd_panel(df)
    tru = ddd_truth()
    out = []
    for label, opts in (
        ("never", {}),
        ("notyet_gmm", {"control_group": "not_yet_treated"}),
        ("never_dr_x", {"covariates": ["x"]}),
    ):
        res = fit(panel, outcome="y", eligible="q", aggregations=("simple", "dynamic"), **opts)
        t = res.terms.set_index("term")
        for term, truth in tru.items():
            out.append(
                {
                    "estimator": f"ddd_{label}",
                    "term": term,
                    "truth": truth,
                    "estimate": float(t["estimate"].get(term, np.nan)),
                    "se": float(t["se"].get(term, np.nan)),
                }
            )
    return out


# ----------------------------------------------------------------------------- summary
def summarise(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(records)
    df["err"] = df["estimate"] - df["truth"]
    df["cover"] = (df["err"].abs() <= 1.959964 * df["se"]).astype(float)
    if "covered" in df.columns:  # simultaneous bands report their own coverage
        df["cover"] = df["covered"].where(df["covered"].notna(), df["cover"])
    g = df.groupby(["estimator", "term"], sort=False)
    return pd.DataFrame(
        {
            "truth": g["truth"].mean(),  # per-replication truths (switching) averaged
            "bias": g["err"].mean(),
            "sd": g["estimate"].std(),
            "mean_se": g["se"].mean(),
            "coverage": g["cover"].mean(),
            "reps": g["cover"].count(),
        }
    ).reset_index()


DESIGNS = {"rc": rc_one, "switching": switching_one, "dose": dose_one, "ddd": ddd_one}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--design", choices=sorted(DESIGNS), action="append")
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    for name in args.design or sorted(DESIGNS):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recs = replicate(
                lambda rep, rng, f=DESIGNS[name]: f(rep, rng),
                args.reps,
                rng=np.random.default_rng(args.seed),
                desc=name,
            )
        table = summarise([r for rec in recs for r in rec])
        print(f"\n## design {name}: {args.reps} replications, {time.perf_counter() - t0:.0f} s")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
