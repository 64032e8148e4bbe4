"""Draws that must not depend on unit labels or on a second identical call (an invariance
breaker's findings): ties in :meth:`Panel.canonical_order`, the spillover
``with_inference`` default generator, and SCPI on a pre-period fit that is perfect up to
round-off. Each test fails on the code before the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError
from zoneimpact.estimators import callaway_santanna, continuous_did, spillover
from zoneimpact.inference.scpi import scpi_intervals
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

set_progress(False)


# ------------------------------------------------------------ canonical order: ties
def _tie_panel(names: dict[str, object], regions: dict[str, object]) -> Panel:
    """Units a-d share one outcome path and cohort (never treated) and differ only in the
    covariate ``x``; e is treated in 2002 and sits in region S with b; a, c, d are in N."""
    x = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0, "e": 5.0}
    region = {"a": "N", "b": "S", "c": "N", "d": "N", "e": "S"}
    rows = [
        {"unit": names[u], "year": t, "y": 1.0 + (t - 2000) + (5.0 if u == "e" else 0.0),
         "x": x[u], "cohort": 2002 if u == "e" else 0}
        for u in x for t in (2000, 2001, 2002, 2003)
    ]  # fmt: skip
    geo = pd.DataFrame({"unit": [names[u] for u in x], "region": [regions[region[u]] for u in x]})
    return Panel.from_frame(
        pd.DataFrame(rows), unit="unit", time="year", outcomes="y", cohort="cohort",
        covariates=["x"], geography=geo,
    )  # fmt: skip


@pytest.mark.parametrize(
    "names",
    [
        {u: u for u in "abcde"},
        {"a": "z", "b": "y", "c": "x", "d": "w", "e": "v"},
        {"a": 5, "b": 9, "c": 1, "d": 7, "e": 3},
    ],
)
def test_canonical_order_breaks_outcome_ties_by_covariates(names: dict[str, object]) -> None:
    # a-d tie on cohort and outcome path; x orders them d (0), b (1), c (2), a (3) whatever
    # they are called, and e (cohort 2002) comes before the never-treated units. Before
    # the fix the tie fell to the labels (a, b, c, d for the first labels, d, c, b, a for
    # the reversed ones)
    p = _tie_panel(names, {"N": "N", "S": "S"})
    back = {v: k for k, v in names.items()}
    assert [back[u] for u in p.canonical_order(p.units, "y")] == ["e", "d", "b", "c", "a"]


def test_canonical_order_breaks_ties_by_region_not_region_name() -> None:
    # b and c differ only in their region (x made equal): S holds the treated unit e,
    # which comes first, so S is the first region and b precedes c, whatever the regions
    # are called (names or numbers). Before the fix: labels decided (b then c, c then b
    # when reversed)
    def order(names: dict[str, object], regions: dict[str, object]) -> list[str]:
        p = _tie_panel(names, regions)
        p = p.replace(data=p.data.assign(x=np.where(p.data["x"] == 2.0, 1.0, p.data["x"])))
        back = {v: k for k, v in names.items()}
        return [back[u] for u in p.canonical_order(p.units, "y")]

    plain = {u: u for u in "abcde"}
    reverse = {"a": "z", "b": "y", "c": "x", "d": "w", "e": "v"}
    for names in (plain, reverse):
        for regions in ({"N": "N", "S": "S"}, {"N": "zz", "S": "aa"}, {"N": 2, "S": 9}):
            assert order(names, regions) == ["e", "d", "b", "c", "a"]


def _tied_frame() -> pd.DataFrame:
    """The breaker's design (run_ties.py): 8 never-treated units with an all-zero outcome
    (regions r00, r01) and 4 units of the 2004 cohort sharing one outcome path, with
    different covariates and doses."""
    s = simulate(
        rng=1, n_units=60, n_regions=6, first_year=2000, last_year=2011,
        waves={2004: 0.5, 2007: 0.5},
    )  # fmt: skip
    f = s.frame[["unit", "region", "year", "cohort", "fdi", "x"]].copy()
    units = sorted(f["unit"].unique())
    coh = f.groupby("unit")["cohort"].first()
    r = np.random.default_rng(5)
    dose = {u: float(r.uniform(0.5, 3)) if coh[u] > 0 else 0.0 for u in units}
    f["dose"] = f["unit"].map(dose)
    never = [u for u in units if coh[u] == 0][:8]
    t04 = [u for u in units if coh[u] == 2004][:4]
    f.loc[f["unit"].isin(never), "fdi"] = 0.0
    path = f.loc[f["unit"] == t04[0]].set_index("year")["fdi"]
    for u in t04[1:]:
        f.loc[f["unit"] == u, "fdi"] = f.loc[f["unit"] == u, "year"].map(path).to_numpy()
    return f


def _relabelled(f: pd.DataFrame, how: str) -> Panel:
    units = sorted(f["unit"].unique())
    if how == "int":
        umap: dict[object, object] = {u: 1000 - 7 * i for i, u in enumerate(units)}
    elif how == "str":
        umap = {u: f"Z{999 - i:03d}x" for i, u in enumerate(units)}
    else:
        umap = {u: u for u in units}
    return Panel.from_frame(
        f.assign(unit=f["unit"].map(umap)), unit="unit", time="year", outcomes="fdi",
        cohort="cohort", covariates=["x", "dose"],
    )  # fmt: skip


def test_bootstrap_with_tied_outcome_paths_does_not_depend_on_labels() -> None:
    # CS (dr, covariate x) and continuous DiD draw their multipliers over
    # Panel.canonical_order; the tied units differ in x and dose, so their order must come
    # from those, not from the labels. Before the fix: CS se[calendar:2011] 56.77 vs 59.36
    # and the continuous DiD band 273.17 vs 278.82 after relabelling. Equal to 1e-9
    # relative: the same draws applied to the same units (only summation order may differ)
    f = _tied_frame()
    cs_se, bands = [], []
    for how in ("none", "int", "str"):
        p = _relabelled(f, how)
        cs = callaway_santanna.fit(
            p, outcome="fdi", covariates=["x"], est_method="dr", n_boot=199, rng=3
        )
        cs_se.append(cs.terms.set_index("term")["se"])
        cd = continuous_did.fit(p, outcome="fdi", dose="dose", n_boot=199, rng=3)
        bands.append([cd.info["crit_att_d"], cd.info["crit_acrt_d"]])
    for se in cs_se[1:]:
        np.testing.assert_allclose(se.to_numpy(), cs_se[0].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(bands[1:], [bands[0]] * 2, rtol=1e-9)


# ------------------------------------------------------------ spillover with_inference
def test_spillover_with_inference_default_rng_replays_the_fit() -> None:
    # rng omitted: the fit's generator is replayed, so two identical calls agree and
    # with the fit's clusters and n_boot the bootstrap SE of the displacement share is
    # the fit's (0.161633). Before the fix each call drew fresh entropy (the breaker saw
    # 0.152649, then 0.160571, on this design). Exact: the same draws on the same scores
    s = simulate(
        rng=1, n_units=60, n_regions=6, first_year=2000, last_year=2011,
        waves={2004: 0.5, 2007: 0.5},
    )  # fmt: skip
    p = Panel.from_frame(
        s.frame, unit="unit", time="year", outcomes="fdi", cohort="cohort",
        geography=s.geography, adjacency=s.adjacency,
    )  # fmt: skip
    r = spillover.fit(p, outcome="fdi", n_boot=199, rng=3)
    fit_se = r.terms.set_index("term")["se"]
    a = r.with_inference("cluster").terms.set_index("term")["se"]
    b = r.with_inference("cluster").terms.set_index("term")["se"]
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    np.testing.assert_array_equal(a.to_numpy(), fit_se.reindex(a.index).to_numpy())
    c = r.with_inference("cluster", cluster="unit").terms.set_index("term")["se"]
    d = r.with_inference("cluster", cluster="unit").terms.set_index("term")["se"]
    np.testing.assert_array_equal(c.to_numpy(), d.to_numpy())
    # an explicit generator still gives other draws
    e = r.with_inference("cluster", rng=99).terms.set_index("term")["se"]
    assert e["displacement_share"] != a["displacement_share"]


# ------------------------------------------------------------ SCPI: perfect pre-period fit
def _perfect_fit_panel(seed: int) -> Panel:
    """The treated unit is 0.7 x donor 0 + 0.3 x donor 1 in the 4 pre-periods (+5 after)."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2008)
    Y = np.round(100 + rng.normal(0, 10, (4, 8)).cumsum(axis=1), 1)
    tr = 0.7 * Y[0] + 0.3 * Y[1]
    tr[4:] += 5
    rows = [
        {"unit": f"d{j}", "year": int(t), "y": float(Y[j, i]), "z": 0}
        for j in range(4) for i, t in enumerate(years)
    ]  # fmt: skip
    rows += [
        {"unit": "tr", "year": int(t), "y": float(tr[i]), "z": int(t >= 2004)}
        for i, t in enumerate(years)
    ]
    return Panel.from_frame(
        pd.DataFrame(rows), unit="unit", time="year", outcomes="y", treatment="z"
    )


@pytest.mark.parametrize("seed", [0, 3])
def test_scpi_round_off_residuals_count_as_zero(seed: int) -> None:
    # both panels fit the pre-periods perfectly up to round-off: residuals
    # [1.4e-14, 0, 0, -1.4e-14] (seed 0; minus their mean, two exact zeros remain) and
    # [-1.4e-14, 0, 0, -1.4e-14] (seed 3; minus their mean, +-7.1e-15, no exact zero) on
    # outcomes near 100. Before the fix seed 0 raised while seed 3 returned an interval
    # of width 2e-13 from a log-variance model fitted to round-off; now both raise the
    # same error
    p = _perfect_fit_panel(seed)
    with pytest.raises(EstimationError, match=r"residual .* zero\b.*use e_method='qreg'"):
        scpi_intervals(p, outcome="y", treated_unit="tr", treatment_start=2004, rng=1, sims=20)
    # qreg needs no log-variance model: a (degenerate) interval around the true effect 5;
    # 1e-9: the in-sample bounds are of the order of the Q ridge (1e-10 x its scale)
    r = scpi_intervals(
        p, outcome="y", treated_unit="tr", treatment_start=2004, rng=1, sims=20,
        e_method="qreg",
    )  # fmt: skip
    att = r.table.set_index("term").loc["att"]
    np.testing.assert_allclose([att["effect_low"], att["effect_high"]], [5.0, 5.0], atol=1e-9)
