"""dCDH DID_l: not-yet-switched controls, missing rows under ``normalized`` and cluster labels.

The reference numbers are dCDH (2024) eq. 3 computed by hand from the simulated arrays
(same arithmetic as the estimator, so the tolerances are ~1e-10) and, for the
staggered design, Callaway & Sant'Anna's not-yet-treated ATT with a universal base
period, which equals DID_l on a balanced absorbing design.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import SpecError
from zoneimpact.estimators import callaway_santanna
from zoneimpact.estimators.chaisemartin import fit, switching_panel
from zoneimpact.panel import Panel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import mc_designs  # noqa: E402


def _staggered(
    rng: np.random.Generator, cohorts: list[int], p: list[float], n_groups: int = 160
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Absorbing 0 -> 1 adoption at ``F`` (99: never) over 6 periods, effect 2."""
    n_t = 6
    F = rng.choice(cohorts, n_groups, p=p)
    tt = np.arange(1, n_t + 1)
    D = (tt[None, :] >= F[:, None]).astype(float)
    Y = (
        rng.normal(size=n_groups)[:, None]
        + 0.3 * tt[None, :]
        + 2.0 * D
        + rng.normal(0, 0.5, (n_groups, n_t))
    )
    gi, ti = np.meshgrid(np.arange(n_groups), np.arange(n_t), indexing="ij")
    df = pd.DataFrame(
        {"unit": gi.ravel() + 1, "time": ti.ravel() + 1, "d": D.ravel(), "y": Y.ravel()}
    )
    return df, F, Y


def _did_eq3(Y: np.ndarray, F: np.ndarray, ell: int) -> float:
    """dCDH eq. 3 for an absorbing binary treatment, one status quo: each switcher's
    ``Y_{F-1+l} - Y_{F-1}`` minus the mean change of the groups with ``F' > F-1+l``
    observed in both periods, averaged over the switchers that have such a control."""
    n_t = Y.shape[1]
    vals = []
    for g in np.flatnonzero(F <= n_t):
        t = F[g] - 1 + ell
        if t > n_t:
            continue
        base = F[g] - 1
        change = Y[:, t - 1] - Y[:, base - 1]
        ctrl = (F > t) & np.isfinite(change)
        if ctrl.any() and np.isfinite(change[g]):
            vals.append(change[g] - change[ctrl].mean())
    return float(np.mean(vals))


def test_all_groups_eventually_switch() -> None:
    """Staggered adoption with no never-switcher: dCDH eq. 3 (and DIDmultiplegtDYN, whose
    controls_time_XX is max(never_change_d_XX) by period and status quo) uses the
    not-yet-switched groups, so DID_1 and DID_2 exist. The old rule demanded a
    never-switcher in each period and raised "No DID_l effect could be estimated"."""
    df, F, Y = _staggered(np.random.default_rng(0), [3, 4, 5, 6], [0.25] * 4)
    res = fit(
        switching_panel(df, unit="unit", time="time", outcomes="y", treatment="d"),
        outcome="y",
        treatment="d",
        effects=2,
    )
    est = res.effects.set_index("term")["estimate"]
    # hand eq. 3: same sums in another order, so 1e-10
    assert est["event:0"] == pytest.approx(_did_eq3(Y, F, 1), abs=1e-10)
    assert est["event:1"] == pytest.approx(_did_eq3(Y, F, 2), abs=1e-10)
    # peer: CS not-yet-treated, universal base: the same comparisons weighted by cohort size
    with pytest.warns(UserWarning, match="could not be estimated"):
        # cohort 6 and the last period have no not-yet-treated control, as in dCDH
        cs_res = callaway_santanna.fit(
            Panel.from_frame(
                df.assign(g=np.repeat(F, 6)),
                unit="unit",
                time="time",
                cohort="g",
                outcomes="y",
                outside_window="adjust",
            ),
            outcome="y",
            control_group="not_yet_treated",
            base_period="universal",
        )
    cs = cs_res.terms.set_index("term")["estimate"]
    np.testing.assert_allclose(
        [est["event:0"], est["event:1"]], [cs["event:0"], cs["event:1"]], atol=1e-10
    )


def test_never_switchers_missing_a_period() -> None:
    """The never-switchers are not observed in period 4; the not-yet-switched groups
    still are, so period 4 stays in the sample (the old rule blanked it and dropped the
    switchers whose DID_l uses it: DID_1 1.7034 from 150 switchers at seed 0)."""
    df, F, Y = _staggered(
        np.random.default_rng(0), [3, 4, 5, 6, 99], [0.24, 0.24, 0.24, 0.24, 0.04], 300
    )
    never = np.flatnonzero(F == 99) + 1
    df = df[~(df["unit"].isin(never) & (df["time"] == 4))]
    Ym = Y.copy()
    Ym[F == 99, 3] = np.nan
    res = fit(
        switching_panel(df, unit="unit", time="time", outcomes="y", treatment="d"),
        outcome="y",
        treatment="d",
        effects=2,
    )
    est = res.effects.set_index("term")["estimate"]
    # hand eq. 3 on the same arrays: 1e-10
    assert est["event:0"] == pytest.approx(_did_eq3(Ym, F, 1), abs=1e-10)
    assert est["event:1"] == pytest.approx(_did_eq3(Ym, F, 2), abs=1e-10)
    assert res.effects["n_switchers"].tolist() == [282, 126]


def test_normalized_with_a_missing_row() -> None:
    """One switcher (unit 13, F = 4) lacks its period-5 row. DIDmultiplegtDYN sums the
    cumulative treatment change with na.rm over the balanced panel, so that period adds
    nothing; the old code let the NaN through and returned NaN for event:2 and event:3.
    Reference: the unnormalised DID_l divided by the hand normaliser
    mean_g S_g sum_{k<l} (D_{g,F_g+k} - D_{g,1}) over the horizon's switchers."""
    sim = mc_designs.simulate_switching(np.random.default_rng(5), n_groups=200)
    sim = sim[~((sim["unit"] == 13) & (sim["time"] == 5))]
    panel = mc_designs.switching_panel(sim)
    opts = {"outcome": "y", "treatment": "d", "effects": 4}
    norm = fit(panel, normalized=True, **opts).effects
    raw = fit(panel, **opts).effects
    assert np.isfinite(norm["estimate"]).all() and np.isfinite(norm["se"]).all()
    D = sim.pivot(index="unit", columns="time", values="d").to_numpy()
    Y = sim.pivot(index="unit", columns="time", values="y").to_numpy()
    n_t = D.shape[1]
    d_sq = D[:, 0]
    changed = D != d_sq[:, None]
    Fg = np.where(changed.any(axis=1), np.argmax(changed, axis=1) + 1, 99)
    for ell in range(1, 5):
        deltas = []
        for g in np.flatnonzero(Fg <= n_t):
            t = Fg[g] - 1 + ell
            if t > n_t or not np.isfinite(Y[g, t - 1] - Y[g, Fg[g] - 2]):
                continue
            ctrl = (d_sq == d_sq[g]) & (Fg > t) & np.isfinite(Y[:, t - 1] - Y[:, Fg[g] - 2])
            if ctrl.any():
                s = np.sign(D[g, Fg[g] - 1] - d_sq[g])
                deltas.append(s * np.nansum(D[g, Fg[g] - 1 : t] - d_sq[g]))
        # same arithmetic on the estimator's own unnormalised DID_l: 1e-10
        assert norm["estimate"].iloc[ell - 1] == pytest.approx(
            raw["estimate"].iloc[ell - 1] / np.mean(deltas), rel=1e-10
        )


def test_missing_cluster_label_raises() -> None:
    """A group without a cluster label would drop out of every cluster sum (SE 0.0729
    instead of 0.08+): raise, as the other estimators do."""
    sim = mc_designs.simulate_switching(np.random.default_rng(5), n_groups=200)
    sim["reg"] = np.where(sim["unit"] <= 60, np.nan, (sim["unit"] % 20).astype(float))
    panel = switching_panel(
        sim, unit="unit", time="time", outcomes="y", treatment="d", covariates=["reg"]
    )
    with pytest.raises(SpecError, match="Cluster variable 'reg' is missing for unit 1"):
        fit(panel, outcome="y", treatment="d", effects=2, cluster="reg")


def test_switchers_in_keep_switchers_out_as_controls() -> None:
    """A discrete treatment starting at 1 that moves to 2 (in) or to 0 (out). With
    switchers="in", dCDH eq. 3's controls at F_g-1+l are all groups with status quo 1
    not switched by then, switchers out included (DIDmultiplegtDYN keeps them in the
    sample and selects the direction only among the switchers). The old code dropped the
    switchers out, so only never-switchers and not-yet-switched switchers in remained."""
    rng = np.random.default_rng(11)
    n_groups, n_t = 150, 6
    F = rng.choice([3, 4, 5, 99], n_groups, p=[0.3, 0.3, 0.3, 0.1])
    up = rng.random(n_groups) < 0.5
    tt = np.arange(1, n_t + 1)
    D = 1.0 + np.where(up, 1.0, -1.0)[:, None] * (tt[None, :] >= F[:, None])
    Y = (
        rng.normal(size=n_groups)[:, None]
        + 0.3 * tt[None, :]
        + 1.5 * (D - 1.0)
        + rng.normal(0, 0.5, (n_groups, n_t))
    )
    gi, ti = np.meshgrid(np.arange(n_groups), np.arange(n_t), indexing="ij")
    df = pd.DataFrame(
        {"unit": gi.ravel() + 1, "time": ti.ravel() + 1, "d": D.ravel(), "y": Y.ravel()}
    )
    panel = switching_panel(df, unit="unit", time="time", outcomes="y", treatment="d")
    res = fit(panel, outcome="y", treatment="d", effects=2, switchers="in")
    for ell in (1, 2):
        vals = []
        for g in np.flatnonzero(up & (F <= n_t)):
            t = F[g] - 1 + ell
            change = Y[:, t - 1] - Y[:, F[g] - 2]
            ctrl = F > t  # every not-yet-switched group, either direction
            if ctrl.any():
                vals.append(change[g] - change[ctrl].mean())
        # hand eq. 3: same sums in another order, 1e-10
        assert res.effects["estimate"].iloc[ell - 1] == pytest.approx(np.mean(vals), abs=1e-10)
        assert res.effects["n_switchers"].iloc[ell - 1] == len(vals)
