"""Synthetic DiD / SC / DID (Arkhangelsky et al. 2021) against R synthdid on Prop 99."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import PEERS, mc_reps

from zoneimpact.errors import EstimationError, PanelError, SpecError
from zoneimpact.estimators import synthetic_did as sdid
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)

# R synthdid 0.0.9 on california_prop99 (synthdid_estimate / sc_estimate / did_estimate),
# printed to 3 decimals in the package README and in the paper's Table 1 replication.
R_SYNTHDID = {"sdid": -15.604, "sc": -19.620, "did": -27.349}


def prop99_frame(canonical) -> pd.DataFrame:
    return pd.read_csv(canonical / "california_prop99.csv", sep=";")


def prop99(frame: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        frame, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_matches_r_synthdid(canonical, method):
    r = sdid.fit(
        prop99(prop99_frame(canonical)), outcome="PacksPerCapita", method=method, se_method=None
    )
    # Same algorithm (Frank-Wolfe path, sparsification, stopping rule) as R: agreement to
    # the 3 printed decimals (half a unit of the last digit).
    assert r.estimate == pytest.approx(R_SYNTHDID[method], abs=5e-4)
    assert r.unit_weights.sum() == pytest.approx(1.0)
    if method == "sc":
        assert np.all(r.time_weights == 0)


def test_sdid_weights_are_sparse_and_known(canonical):
    r = sdid.fit(prop99(prop99_frame(canonical)), outcome="PacksPerCapita", se_method=None)
    # R synthdid: time weights concentrate on 1986-1988 (synthdid_plot shows these three).
    lam = r.time_weights[r.time_weights > 0.01]
    assert set(lam.index) == {1986, 1987, 1988}
    assert r.info["zeta_omega"] == pytest.approx((12**0.25) * r.info["noise_level"])


def test_placebo_se_close_to_paper(canonical):
    r = sdid.fit(
        prop99(prop99_frame(canonical)),
        outcome="PacksPerCapita",
        rng=np.random.default_rng(20261122),
        se_method="placebo",
        n_reps=200,
    )
    # Paper Table 1: 8.4 (R's own 200 placebo draws). With 3000 draws ours converges to
    # 9.42; 200-draw SEs over 15 disjoint sets of draws ranged 8.1-11.2 (sd 0.75: the
    # placebo distribution has a few extreme donor states), so a 200-draw SE is checked
    # within 3 sd of the converged value, a band that also holds the paper's 8.4.
    assert abs(r.se - 9.42) < 3 * 0.75
    assert abs(8.4 - 9.42) < 3 * 0.75
    assert len(r.placebo_estimates) == 200
    # Reproducible with the same seed.
    r2 = sdid.fit(
        prop99(prop99_frame(canonical)),
        outcome="PacksPerCapita",
        rng=np.random.default_rng(20261122),
        se_method="placebo",
        n_reps=200,
    )
    assert r2.se == r.se


def test_resampling_draws_do_not_depend_on_unit_labels(mpdta_frame):
    # the same seed must give the same placebo and bootstrap draws whatever the units are
    # called: units are drawn in an order fixed by their data (Panel.canonical_order).
    # Relabelling only reorders floating-point sums: 1e-12.
    m = mpdta_frame[mpdta_frame["first.treat"].isin([0, 2006])]
    ids = m["countyreal"].unique()
    relabel = dict(zip(ids, np.random.default_rng(0).permutation(len(ids)) * 7 + 1000, strict=True))
    kw = dict(unit="countyreal", time="year", outcomes="lemp", cohort="first.treat")
    a = Panel.from_frame(m, **kw)
    b = Panel.from_frame(m.assign(countyreal=m["countyreal"].map(relabel)), **kw)
    for method in ("placebo", "bootstrap"):
        ra = sdid.fit(a, outcome="lemp", rng=5, se_method=method, n_reps=20)
        rb = sdid.fit(b, outcome="lemp", rng=5, se_method=method, n_reps=20)
        assert rb.estimate == pytest.approx(ra.estimate, rel=1e-12)
        assert rb.se == pytest.approx(ra.se, rel=1e-12), method


def test_invariances(canonical):
    df = prop99_frame(canonical)
    base = {
        m: sdid.fit(prop99(df), outcome="PacksPerCapita", method=m, se_method=None).estimate
        for m in ("sdid", "did")
    }
    shuffled = df.sample(frac=1.0, random_state=3)
    shifted = df.assign(PacksPerCapita=df["PacksPerCapita"] + 100.0)
    scaled = df.assign(PacksPerCapita=df["PacksPerCapita"] * 2.0)
    for m, b in base.items():
        # Row/donor order and a common level shift leave the estimate unchanged (the
        # intercepts absorb levels; the noise level is shift invariant); scaling the
        # outcome scales zeta and the estimate. 1e-6: floating-point paths differ.
        assert sdid.fit(
            prop99(shuffled), outcome="PacksPerCapita", method=m, se_method=None
        ).estimate == pytest.approx(b, abs=1e-6)
        assert sdid.fit(
            prop99(shifted), outcome="PacksPerCapita", method=m, se_method=None
        ).estimate == pytest.approx(b, abs=1e-6)
        assert sdid.fit(
            prop99(scaled), outcome="PacksPerCapita", method=m, se_method=None
        ).estimate == pytest.approx(2 * b, abs=1e-5)


def factor_panel(rng, n_donors=30, n_treated=1, T=30, T0=20, effect=5.0, cohorts=None):
    """Two-factor model; treated loadings are averages of donor loadings (in the hull)."""
    N = n_donors + n_treated
    load = rng.uniform(0, 1, size=(n_donors, 2))
    tr_load = np.vstack(
        [load[rng.choice(n_donors, 3, replace=False)].mean(axis=0) for _ in range(n_treated)]
    )
    L = np.vstack([load, tr_load])
    F = np.cumsum(rng.normal(0, 2.0, size=(T, 2)), axis=0) + np.linspace(0, 20, T)[:, None]
    alpha = rng.normal(0, 5, size=N)
    Y = alpha[:, None] + L @ F.T + rng.normal(0, 1, size=(N, T))
    cohort = np.zeros(N)
    if cohorts is None:
        cohort[n_donors:] = T0
    else:
        cohort[n_donors:] = cohorts
    years = np.arange(T)
    D = (years[None, :] >= cohort[:, None]) & (cohort[:, None] > 0)
    Y = Y + effect * D
    units = [f"u{i:03d}" for i in range(N)]
    df = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "time": np.tile(years, N),
            "y": Y.ravel(),
            "g": np.repeat(cohort, T),
        }
    )
    return df


def test_staggered_cohort_aggregation():
    rng = np.random.default_rng(5)
    df = factor_panel(
        rng,
        n_donors=25,
        n_treated=4,
        cohorts=[
            18,
            18,
            22,
            22,
        ][:4],
    )
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    r = sdid.fit(p, outcome="y", se_method=None)
    ce = r.cohort_estimates
    # Cohort weights: treated unit-periods, 2 x 12 and 2 x 8 (Stata sdid).
    assert ce["weight"].to_numpy() == pytest.approx([24 / 40, 16 / 40])
    assert r.estimate == pytest.approx(float(ce["weight"] @ ce["estimate"]))
    # Each cohort term equals a separate single-cohort SDID on that cohort.
    keep = df[(df.g == 0) | (df.g == 18)]
    one = sdid.fit(
        Panel.from_frame(keep, unit="unit", time="time", outcomes="y", cohort="g"),
        outcome="y",
        se_method=None,
    )
    assert r.coef("cohort:18") == pytest.approx(one.estimate, abs=1e-10)
    assert r.estimate == pytest.approx(5.0, abs=1.0)


def test_bootstrap_and_jackknife_several_treated():
    rng = np.random.default_rng(11)
    df = factor_panel(rng, n_donors=25, n_treated=5)
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    jk = sdid.fit(p, outcome="y", se_method="jackknife")
    bs = sdid.fit(p, outcome="y", se_method="bootstrap", n_reps=60, rng=np.random.default_rng(1))
    assert jk.estimate == bs.estimate
    assert 0 < jk.se < 5 and 0 < bs.se < 5
    # Both estimate the same sampling sd: within a factor of 2.5 with 60 bootstrap draws.
    assert 0.4 < bs.se / jk.se < 2.5
    assert len(jk.placebo_estimates) == 30


def test_jackknife_matches_r_synthdid_via_diff_diff():
    # diff-diff 3.13 SyntheticDiD(variance_method="jackknife"), which follows R synthdid's
    # vcov(method = "jackknife") (Algorithm 3: leave one unit out, weights fixed, factor
    # (n-1)/n), on this five-treated panel; from peers.json (generator:
    # benchmarks/reference/peer_references.py). The same computation, so 1e-9 relative;
    # dropping (n-1)/n would move the SE by 1.7% here.
    ref = PEERS["sdid_jackknife_factor_panel"]
    df = factor_panel(np.random.default_rng(11), n_donors=25, n_treated=5)
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    jk = sdid.fit(p, outcome="y", se_method="jackknife")
    assert jk.estimate == pytest.approx(ref["att"], rel=1e-9)
    assert jk.se == pytest.approx(ref["se"], rel=1e-9)


def test_errors(canonical):
    df = prop99_frame(canonical)
    gap = df.drop(df[(df.State == "Utah") & (df.Year == 1980)].index)
    with pytest.raises(PanelError, match=r"Utah.*1980"):
        sdid.fit(prop99(gap), outcome="PacksPerCapita", se_method=None)
    with pytest.raises(EstimationError, match="single treated unit"):
        sdid.fit(prop99(df), outcome="PacksPerCapita", se_method="jackknife")
    with pytest.raises(SpecError, match="method"):
        sdid.fit(prop99(df), outcome="PacksPerCapita", method="synth")
    only = df[df.State == "California"].copy()
    other = df[df.State == "Utah"].assign(treated=lambda d: (d.Year >= 1995).astype(int))
    with pytest.raises(EstimationError, match="No donor"):
        sdid.fit(prop99(pd.concat([only, other])), outcome="PacksPerCapita", se_method=None)


def test_monte_carlo_unbiased():
    reps = mc_reps(40, 500)
    rng = np.random.default_rng(2026)
    est = {"sdid": [], "sc": []}
    sds = []
    for _ in range(reps):
        df = factor_panel(rng)
        sds.append(df["y"].std())
        p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
        for m in est:
            est[m].append(sdid.fit(p, outcome="y", method=m, se_method=None).estimate)
    sd_y = float(np.mean(sds))
    for m, v in est.items():
        bias = np.mean(v) - 5.0
        # Criterion of the brief: |bias| < 0.05 outcome SD (sd_y ~ 10 here, MC error ~0.1).
        assert abs(bias) < 0.05 * sd_y, (m, bias, sd_y)


def test_placebo_draws_solve_each_placebo_set_once_and_equal_solving_every_draw():
    # Algorithm 4 with one treated unit and 9 controls: 60 draws repeat the 9 possible
    # placebo units. Each set is solved once (in its first draw's order); the draws must
    # equal solving all 60 problems one by one in their own orders. The control order
    # changes the order of floating-point sums, which moves a Frank-Wolfe path stopped at
    # its tolerance: 2e-7 here with min_decrease 1e-8 (8.5e-12 on Prop 99 with R's
    # defaults), against differences of order 1 between placebo units
    from zoneimpact.parallel import replicate

    rng = np.random.default_rng(3)
    N0, T0, T = 9, 8, 12
    Y = rng.normal(size=(N0 + 1, T)).cumsum(axis=1) + rng.normal(size=(N0 + 1, 1)) * 3
    opts = sdid.SdidOptions(
        zeta_omega=0.3, zeta_lambda=1e-6, omega_intercept=True, lambda_intercept=True,
        update_omega=True, update_lambda=True, min_decrease=1e-8, max_iter=2_000,
    )  # fmt: skip
    omega, lam = sdid.solve_weights(Y, N0, T0, opts)
    draws = sdid._placebo_draws(Y, N0, T0, opts, omega, lam, 60, 11, 1)
    perms = np.vstack(replicate(lambda _i, g: g.permutation(N0), 60, rng=11, progress=False))
    each = [
        sdid.estimate_block(Y[:N0][p], N0 - 1, T0, opts, sdid.sum_normalize(omega[p[:-1]]), lam)[0]
        for p in perms
    ]
    np.testing.assert_allclose(draws, each, rtol=0, atol=1e-6)
    assert np.ptp(draws) > 1
    assert len(np.unique(perms[:, -1])) == 9  # every placebo unit drawn, each several times
    # draws of the same placebo unit share one solve: identical to the last bit
    for u in range(N0):
        assert len(set(draws[perms[:, -1] == u].tolist())) == 1
