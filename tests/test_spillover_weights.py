"""Unit weights in the spillover decomposition (issue 16, item 1): constant weights, the
duplication identity of sampling weights, agreement with the weighted imputation and CS
estimators piece by piece, a Monte Carlo with a weighted truth, and bad weights."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mc_reps, piece_vectors_and_scores

from zoneimpact.errors import EstimationError, PanelError, SpecError, ZoneImpactError
from zoneimpact.estimators import _bjs, callaway_santanna, imputation, spillover
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mc_spillover_weights  # noqa: E402

set_progress(False)
SMALL = dict(
    n_units=150,
    n_regions=30,
    first_year=2002,
    last_year=2016,
    waves={2006: 0.4, 2010: 0.3, 2013: 0.3},
)
POINT_TERMS = [
    "direct",
    "spillover",
    "direct_total",
    "spillover_total",
    "net",
    "net_per_treated",
    "displacement_share",
    "spillover_on_zones",
    "naive",
    "net_region_did",
]


def weighted_sim(seed: int = 3):
    """The simulated panel with ``pop`` (1, 2 or 3 per unit), ``one`` (1) and ``three``
    (3) as covariates; also returns the frame and the per-unit ``pop``."""
    sim = simulate(rng=seed, **SMALL, displacement_share=0.7)
    units = sim.geography["unit"].to_numpy()
    pop = pd.Series(np.random.default_rng(seed).integers(1, 4, len(units)), index=units)
    frame = sim.frame.assign(pop=pop.reindex(sim.frame["unit"]).to_numpy(float), one=1.0, three=3.0)
    return sim, frame, pop


def make_panel(frame: pd.DataFrame, geography: pd.DataFrame, adjacency: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi"],
        covariates=["x", "pop", "one", "three"],
        geography=geography,
        adjacency=adjacency,
    )


def terms(res) -> pd.DataFrame:
    return res.terms.set_index("term")


def test_constant_weights_give_the_unweighted_result():
    sim, frame, _ = weighted_sim()
    p = make_panel(frame, sim.geography, sim.adjacency)
    base = terms(spillover.fit(p, outcome="fdi", rng=1, n_boot=199))
    ones = terms(spillover.fit(p, outcome="fdi", rng=1, n_boot=199, weights="one"))
    # weights of one: the same estimator, up to the rounding of w / sum(w) (1e-12 relative)
    np.testing.assert_allclose(ones["estimate"], base["estimate"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ones["se"], base["se"], rtol=1e-12, atol=1e-9)
    # weights of three (sampling semantics: every city stands for three): means, the
    # share and their SEs do not move; totals triple
    three = terms(spillover.fit(p, outcome="fdi", rng=1, n_boot=199, weights="three"))
    means = ["direct", "spillover", "net_per_treated", "displacement_share", "naive"]
    np.testing.assert_allclose(
        three.loc[means, "estimate"], base.loc[means, "estimate"], rtol=1e-12
    )
    np.testing.assert_allclose(three.loc[means, "se"], base.loc[means, "se"], rtol=1e-10)
    totals = ["direct_total", "spillover_total", "net", "net_region_did"]
    np.testing.assert_allclose(
        three.loc[totals, "estimate"], 3 * base.loc[totals, "estimate"], rtol=1e-12
    )
    np.testing.assert_allclose(three.loc[totals, "se"], 3 * base.loc[totals, "se"], rtol=1e-10)
    # and the Bell-McCaffrey degrees of freedom, combined terms included, whatever the
    # weights' scale (the targets' entries on the weighted step 1's scale); before session
    # 9's fix weights of three moved net's df from 20.8 to 24.8
    for w in (ones, three):
        np.testing.assert_allclose(w["df"], base["df"], rtol=1e-10)


def test_weighted_bell_mccaffrey_vectors_are_the_scores_map():
    # with step-1 weights the working model's errors have variance 1 / weight, so the
    # vectors act on sqrt(weight) * y: on the clean rows that is the weighted step 1's own
    # scale, on the targets the vectors carry 1 / sqrt(weight). Applied so, they give the
    # fit's CR2 scores to rounding (1e-10 of the largest); targets' entries without the
    # division by sqrt(weight) miss them. Random outcomes, with step 1 redone by hand on
    # the weighted scale, move the scores as the vectors say (the ring piece has tau~
    # proportional to the exposure intensity)
    sim, frame, _ = weighted_sim()
    p = make_panel(frame, sim.geography, sim.adjacency)
    res = spillover.fit(p, outcome="fdi", rng=1, n_boot=0, weights="pop")
    rng = np.random.default_rng(8)
    for name in ("direct", "spillover:adjacent"):
        fit, sc, C, s, (cells, cluster, G) = piece_vectors_and_scores(res, name)
        assert sc.row_weight is not None and np.ptp(sc.row_weight) > 0
        root = np.sqrt(sc.row_weight)
        # the long table's rows are the observed (unit, period) cells in row-major order
        Y = res.fitted.panel.data.pivot(index="unit", columns="time", values="fdi")
        Y = Y.reindex(res.fitted.units).to_numpy()
        y = root * Y[np.isfinite(Y)]
        got = C[fit.clean].T @ y[fit.clean] + C[fit.target].T @ y[fit.target]
        np.testing.assert_allclose(got, s, rtol=0, atol=1e-10 * np.abs(s).max())
        # the Gram formed without the vectors (bm_gram) carries the same 1 / weight on the
        # targets: equal to the vectors' to rounding
        M = _bjs.bm_gram(
            fit, sc.w[:, 0], cells, cluster, G, scale=sc.scale, row_weight=sc.row_weight
        )
        np.testing.assert_allclose(M, C.T @ C, rtol=0, atol=1e-10 * np.abs(C.T @ C).max())
        unscaled = C[fit.target] * root[fit.target][:, None]
        wrong = C[fit.clean].T @ y[fit.clean] + unscaled.T @ y[fit.target]
        assert np.abs(wrong - s).max() > 1e-3 * np.abs(s).max()
        for e in rng.normal(size=(2, len(y))):  # e = sqrt(weight) * y
            theta = fit.lu.solve(np.asarray(fit.Z0.T @ e[fit.clean]))
            moved = replace(
                fit,
                resid0=e[fit.clean] - fit.Z0 @ theta,
                tau=e[fit.target] / root[fit.target] - fit.Z1 @ theta,
            )
            s2 = _bjs.scores(moved, sc.w, cells, cluster, G, cr2=True, scale=sc.scale)[:, 0]
            got = C[fit.clean].T @ e[fit.clean] + C[fit.target].T @ e[fit.target]
            np.testing.assert_allclose(got, s2, rtol=0, atol=1e-10 * np.abs(s2).max())


def duplicated_panel(sim, frame: pd.DataFrame, pop: pd.Series) -> Panel:
    """Unit ``u`` of weight ``k`` becomes ``k`` units of weight one: ``u``, ``u_c1``, ...
    with the same rows, region and coordinates; every adjacency link ``(a, b)`` of the
    simulator is copied to every pair of copies of ``a`` and ``b`` (the simulator links
    units, not locations, so copies are not linked to each other)."""
    copies = {u: [u] + [f"{u}_c{j}" for j in range(1, int(k))] for u, k in pop.items()}
    frames = [frame.assign(pop=1.0)]
    geos = [sim.geography]
    for j in (1, 2):
        rename = {u: f"{u}_c{j}" for u in pop.index[pop > j]}
        part = frame[frame["unit"].isin(rename)]
        frames.append(part.assign(unit=part["unit"].map(rename), pop=1.0))
        g = sim.geography[sim.geography["unit"].isin(rename)]
        geos.append(g.assign(unit=g["unit"].map(rename)))
    links = [
        (a2, b2)
        for a, b in zip(sim.adjacency["unit"], sim.adjacency["neighbour"], strict=True)
        for a2 in copies[a]
        for b2 in copies[b]
    ]
    adjacency = pd.DataFrame(links, columns=["unit", "neighbour"])
    return make_panel(pd.concat(frames, ignore_index=True), pd.concat(geos), adjacency)


def test_integer_weights_equal_duplicated_units():
    sim, frame, pop = weighted_sim()
    p = make_panel(frame, sim.geography, sim.adjacency)
    weighted = spillover.fit(p, outcome="fdi", n_boot=0, weights="pop")
    dup = spillover.fit(duplicated_panel(sim, frame, pop), outcome="fdi", n_boot=0)
    unweighted = terms(spillover.fit(p, outcome="fdi", n_boot=0))
    w, d = terms(weighted), terms(dup)
    # weighted least squares with integer weights and least squares on duplicated units
    # solve the same normal equations; the region totals sum the same values: 1e-10
    np.testing.assert_allclose(
        w.loc[POINT_TERMS, "estimate"], d.loc[POINT_TERMS, "estimate"], rtol=1e-10
    )
    # the weights matter here (a test that cannot fail otherwise): totals move by > 50%
    assert abs(w.loc["net", "estimate"] / unweighted.loc["net", "estimate"] - 1) > 0.5
    pw = weighted.pieces.set_index("piece")
    pd_ = dup.pieces.set_index("piece")
    # the pieces' target weight is the duplicated panel's number of target unit-periods
    pieces = ["direct", "spillover:adjacent", "naive"]
    np.testing.assert_array_equal(
        pw.loc[pieces, "target_weight"], pd_.loc[pieces, "n_target_unit_periods"]
    )
    assert weighted.info["weights"] == "pop" and dup.info["weights"] == ""


def test_each_piece_equals_weighted_imputation_on_its_panel():
    sim, frame, _ = weighted_sim()
    p = make_panel(frame, sim.geography, sim.adjacency)
    res = spillover.fit(
        p, outcome="fdi", n_boot=0, weights="pop", small_sample="none", aux_partition="onset_event"
    )
    t = terms(res)
    direct, spill = res.exposure.panels(p)
    # same weighted step 1, same estimand weights w_i / sum w, same clusters (regions),
    # cells (cohort x event; the spillover pieces' intensity split is off) and leave-out:
    # two implementations (batched sparse LU with
    # sqrt(w)-scaled rows here, the Schur complement of Z'WZ there) agree to rounding
    ref = imputation.fit(direct, outcome="fdi", weights="pop", cluster="region", leave_out=True)
    assert t.loc["direct", "estimate"] == pytest.approx(ref.coef("att"), rel=1e-10)
    assert t.loc["direct", "se"] == pytest.approx(ref.se, rel=1e-10)
    for ring, sp in spill.items():
        ref = imputation.fit(sp, outcome="fdi", weights="pop", cluster="region", leave_out=True)
        assert t.loc[f"spillover:{ring}", "estimate"] == pytest.approx(ref.coef("att"), rel=1e-10)
        assert t.loc[f"spillover:{ring}", "se"] == pytest.approx(ref.se, rel=1e-10)
    ref = imputation.fit(p, outcome="fdi", weights="pop")
    assert t.loc["naive", "estimate"] == pytest.approx(ref.coef("att"), rel=1e-10)
    # the weights are used: the unweighted fit differs by far more than the 1e-10 above
    plain = imputation.fit(direct, outcome="fdi")
    assert abs(plain.coef("att") - t.loc["direct", "estimate"]) > 1e-3


def test_callaway_santanna_base_equals_weighted_cs_on_each_piece():
    sim, frame, _ = weighted_sim()
    p = make_panel(frame, sim.geography, sim.adjacency)
    res = spillover.fit(
        p, outcome="fdi", n_boot=0, weights="pop", base_estimator="callaway_santanna"
    )
    t = terms(res)
    direct, spill = res.exposure.panels(p)
    opts = dict(outcome="fdi", est_method="dr", bootstrap=False, weights="pop")
    # zone units exposed before their own zone enter the direct piece as the cohort of
    # their exposure onset (their rows from it until their zone are dropped, so their
    # targets are long differences from their last unexposed year): rebuilt here by hand
    roles = res.exposure.roles_of(direct.data["unit"].unique())
    d = direct.data
    onset = roles["exposure_onset"].reindex(d["unit"]).to_numpy(float)
    early = (roles["role"].reindex(d["unit"]) == "direct").to_numpy() & (onset < d["cohort"])
    assert early.any()  # the world has such units: the rebase is exercised
    rebased = direct.replace(data=d.assign(cohort=np.where(early, onset, d["cohort"])))
    ref = callaway_santanna.fit(rebased, **opts)
    # the same call on the same panel: equal to rounding. The piece is unbalanced in its
    # cells (rebased units join a cell only from their own zone), so the direct effect is
    # the cells' ATT weighted by their targets' weight sums, not CS's cohort-share att
    d = rebased.data
    mass = d[(d["time"] >= d["cohort"]) & d["fdi"].notna()].groupby(["cohort", "time"])["pop"]
    mass = mass.sum()
    cell = ref.att_gt.set_index(["cohort", "time"])["estimate"]
    want = float((cell.reindex(mass.index).to_numpy() * mass.to_numpy()).sum())
    assert t.loc["direct_total", "estimate"] == pytest.approx(want, rel=1e-12)
    assert t.loc["direct", "estimate"] == pytest.approx(want / mass.sum(), rel=1e-12)
    for ring, sp in spill.items():
        ref = callaway_santanna.fit(sp, **opts)
        assert t.loc[f"spillover:{ring}", "estimate"] == pytest.approx(ref.coef("att"), rel=1e-12)
    unweighted = callaway_santanna.fit(rebased, **{**opts, "weights": None})
    assert abs(unweighted.coef("att") - t.loc["direct", "estimate"]) > 1e-3
    # spillover on zones: CS on its own panel, each cell weighted by its targets' weight
    # sum (its units leave at their own zone, so cells differ in size within a cohort)
    zp, n = spillover.zones_exposed_panel(p, "fdi", res.exposure, "not_yet_exposed")
    ref = callaway_santanna.fit(zp, **opts)
    d = zp.data
    mass = d[(d["time"] >= d["cohort"]) & d["fdi"].notna()].groupby(["cohort", "time"])["pop"]
    cell = ref.att_gt.set_index(["cohort", "time"])["estimate"]
    mass = mass.sum()
    want = float((cell.reindex(mass.index).to_numpy() * mass.to_numpy()).sum())
    assert n > 0 and mass.sum() > 0
    assert t.loc["spillover_on_zones_total", "estimate"] == pytest.approx(want, rel=1e-12)
    assert t.loc["spillover_on_zones", "estimate"] == pytest.approx(want / mass.sum(), rel=1e-12)
    with pytest.raises(SpecError, match="weights="):
        spillover.fit(
            p,
            outcome="fdi",
            base_estimator="callaway_santanna",
            base_options={"weights": "pop"},
        )


def test_weighted_estimator_recovers_the_weighted_truth():
    # effects 2.5 times larger in "big" units, whose weights are 3-6 against 0.5-1.5
    # (benchmarks/mc_spillover_weights.py; 150 replications in benchmarks/RESULTS.md:
    # weighted |bias| 0.2% (direct), 0.2% (spillover), 0.8% (net) of the weighted truth;
    # unweighted 26.5%, 26.7%, 65%). With 12 replications the MC SD of a mean bias is
    # ~1-2% of the truth, so a 5% bound passes a correct weighted estimator and the
    # unweighted gap (> 15%) cannot pass it. Coverage: BJS's variance is conservative
    # when effects vary within cohort x event cells (here by type): SE/SD ~2 at full size.
    reps = mc_reps(12, 200)
    tab = mc_spillover_weights.run(reps).set_index(["estimator", "quantity"])
    for q in ("direct", "spillover", "net"):
        assert tab.loc[("weighted", q), "bias_pct"] < 5.0, q
        assert tab.loc[("unweighted", q), "bias_pct"] > 15.0, q
    assert tab.loc[("weighted", "displacement_share"), "bias"] == pytest.approx(0, abs=0.05)
    assert (tab.loc["weighted", "coverage"] >= 0.75).all()


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0.0, EstimationError, r"'w' must be positive and finite; unit 'u0000', period 2002"),
        (-1.0, EstimationError, r"'w' must be positive and finite; unit 'u0000'"),
        (np.nan, EstimationError, r"'w' must be positive and finite; unit 'u0000'"),
        # the two differing values, as plain numbers
        ("varies", EstimationError, r"'w' varies within unit 'u0000' \(from 1\.0 to 2\.0\)"),
    ],
)
def test_bad_weights_are_refused(value, error, message):
    sim, frame, _ = weighted_sim()
    frame = frame.assign(w=1.0)
    first = frame.index[frame["unit"] == "u0000"]
    if value == "varies":
        frame.loc[first[1:], "w"] = 2.0
    else:
        frame.loc[first[0], "w"] = value
    p = Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi"],
        covariates=["w"],
        geography=sim.geography,
        adjacency=sim.adjacency,
    )
    for base in ("imputation", "callaway_santanna"):
        with pytest.raises(error, match=message):
            spillover.fit(p, outcome="fdi", n_boot=0, weights="w", base_estimator=base)
    assert issubclass(error, ZoneImpactError)


def test_missing_weight_column_is_refused():
    sim, frame, _ = weighted_sim()
    # an infinite weight is refused when the panel is built (before any estimator)
    bad = frame.assign(pop=np.where(frame["unit"] == "u0000", np.inf, frame["pop"]))
    with pytest.raises(PanelError, match=r"'pop' has an infinite value at unit 'u0000'"):
        make_panel(bad, sim.geography, sim.adjacency)
    p = make_panel(frame, sim.geography, sim.adjacency)
    with pytest.raises(SpecError, match=r"Weight column 'popu' is not in the panel.*'pop'"):
        spillover.fit(p, outcome="fdi", n_boot=0, weights="popu")
