"""Small-sample (Hotelling T^2) reference of the pre-trend Wald test with few clusters.

With ``G`` clusters the cluster-robust Wald statistic ``W`` of ``L`` leads is Hotelling's
``T^2`` (CR1 covariance) or ``G/(G-1) T^2`` (CR0), and ``(G-L)/(L(G-1)) T^2 ~ F(L, G-L)``
(Hotelling 1931; Pustejovsky & Tipton 2018, JBES 36(4)). Referring ``W`` to ``chi2_L``
rejected 60% of true nulls at ``G = 10``, ``L = 6``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import twfe
from zoneimpact.inference.diagnostics import event_study_diagnostics, wald_reference
from zoneimpact.inference.pretrends import pretrend_wald
from zoneimpact.results import EstimationResult, terms_frame
from zoneimpact.simulate import simulate

LEADS = [f"event:-{k}" for k in range(6, 0, -1)]


def _leads_terms(b: np.ndarray) -> pd.DataFrame:
    return terms_frame([*LEADS, "event:0"], [*b, 0.5], [0.1] * (len(b) + 1))


def test_hotelling_reference_by_hand():
    b = np.array([0.02, -0.01, 0.03, 0.0, 0.01, -0.02])
    v = 1e-4 * (np.eye(6) + 0.3)  # equicorrelated leads, positive definite
    w = float(b @ np.linalg.solve(v, b))
    g = 10
    cr1 = pretrend_wald(_leads_terms(b), vcov=v, n_clusters=g)
    f1 = (g - 6) / (6 * (g - 1)) * w
    assert cr1["reference"] == "F" and cr1["df"] == 6 and cr1["df2"] == 4
    assert cr1["statistic"] == pytest.approx(w, rel=1e-12)
    assert cr1["f_statistic"] == pytest.approx(f1, rel=1e-12)
    assert cr1["p_value"] == pytest.approx(stats.f.sf(f1, 6, 4), rel=1e-10)
    # CR0 (no G/(G-1) factor in V): T^2 = W (G-1)/G, so F = (G-L)/(L G) W
    cr0 = pretrend_wald(_leads_terms(b), vcov=v, n_clusters=g, vcov_type="CR0")
    assert cr0["f_statistic"] == pytest.approx((g - 6) / (6 * g) * w, rel=1e-12)
    # without G the old chi2 reference is unchanged (backward compatible)
    old = pretrend_wald(_leads_terms(b), vcov=v)
    assert old["reference"] == "chi2" and old["df2"] is None
    assert old["p_value"] == pytest.approx(stats.chi2.sf(w, 6), rel=1e-10)


def test_too_many_leads_for_the_clusters_is_nan_not_a_subspace_test():
    rng = np.random.default_rng(0)
    # 6 leads from 5 centred cluster scores: the CR0 covariance has rank 4
    x = rng.normal(size=(5, 6))
    x -= x.mean(0)
    v = x.T @ x / 25
    b = rng.normal(size=6) * 0.1
    assert np.linalg.matrix_rank(v) == 4
    with pytest.warns(RuntimeWarning, match="6 leads with 5 clusters"):
        out = pretrend_wald(_leads_terms(b), vcov=v, n_clusters=5, vcov_type="CR0")
    assert np.isnan(out["p_value"]) and out["df2"] is None and "rank 4" in out["note"]
    # L = G with a (diagonal) nonsingular covariance: still no test
    with pytest.warns(RuntimeWarning):
        assert np.isnan(pretrend_wald(_leads_terms(b), n_clusters=6)["p_value"])
    # enough clusters but a singular covariance of the leads: no test either
    with pytest.warns(RuntimeWarning, match="rank 4"):
        assert np.isnan(pretrend_wald(_leads_terms(b), vcov=v, n_clusters=50)["p_value"])


def test_exact_size_with_normal_cluster_scores():
    # location model: G i.i.d. normal cluster scores of 6 correlated leads, true mean 0;
    # b = score mean, V = CR1 = sample covariance / G. Hotelling's F is exact here: the
    # rejection rate over 1500 seeded draws is 5% +- 1.4% (2.5 binomial SEs; this seed: 5.8%);
    # chi2 rejects 57%
    rng = np.random.default_rng(20260101)
    g, reps = 10, 1500
    chol = np.linalg.cholesky(0.5 * np.eye(6) + 0.5)
    p_f, p_chi = np.empty(reps), np.empty(reps)
    for r in range(reps):
        x = rng.normal(size=(g, 6)) @ chol.T
        b = x.mean(0)
        v = np.cov(x, rowvar=False) / g
        p_f[r] = pretrend_wald(_leads_terms(b), vcov=v, n_clusters=g)["p_value"]
        p_chi[r] = pretrend_wald(_leads_terms(b), vcov=v)["p_value"]
    assert 0.036 < np.mean(p_f < 0.05) < 0.064
    assert np.mean(p_chi < 0.05) > 0.4  # the old chi2 reference
    # and the p-values are uniform (Kolmogorov-Smirnov)
    assert stats.kstest(p_f, "uniform").pvalue > 0.01


def _cs_region_panel(seed: int, n_regions: int) -> Panel:
    # exact parallel trends, treatment drawn per unit; 10 years, cohorts 2008 / 2010
    rng = np.random.default_rng(seed)
    n, years = 120, np.arange(2003, 2013)
    g = rng.choice([0, 2008, 2010], size=n)
    df = pd.DataFrame([(i, t) for i in range(n) for t in years], columns=["unit", "year"])
    df["cohort"] = g[df.unit]
    df["y"] = rng.normal(size=n)[df.unit] + 0.3 * (df.year - 2003) + rng.normal(size=len(df))
    geo = pd.DataFrame({"unit": np.arange(n), "region": np.arange(n) % n_regions})
    return Panel.from_frame(
        df, unit="unit", time="year", outcomes="y", cohort="cohort", geography=geo
    )


def test_callaway_santanna_ten_regions_size():
    # Reduced version of /tmp/fixP/mc.py (1000 reps: chi2 59.5%, Hotelling CR0 5.6%):
    # 150 seeded replications, 6 leads, 10 region clusters, nominal 5%. The bound 0.11
    # is 5% + 3 binomial SEs (sd 1.8%); the old chi2 reference rejects ~60% (> 0.4).
    rej_f, rej_chi = [], []
    for seed in range(150):
        res = cs.fit(
            _cs_region_panel(seed, 10),
            outcome="y",
            bootstrap=False,
            cluster="region",
            aggregations=("dynamic",),
        )
        g, kind = wald_reference(res)
        assert (g, kind) == (10, "CR0")
        new = pretrend_wald(res, n_clusters=g, vcov_type=kind)
        assert new["df"] == 6 and new["df2"] == 4
        rej_f.append(new["p_value"] < 0.05)
        rej_chi.append(pretrend_wald(res)["p_value"] < 0.05)
    assert np.mean(rej_f) < 0.11
    assert np.mean(rej_chi) > 0.4


def test_diagnostics_use_the_cluster_count():
    sim = simulate(
        rng=3,
        n_units=120,
        n_regions=12,
        first_year=2000,
        last_year=2014,
        waves={2005: 0.5, 2009: 0.5},
        displacement_share=0.0,
    )
    es = twfe.fit_event_study(sim.panel, outcome="fdi", leads=4, lags=4)
    g = es.info["n_clusters"]
    assert wald_reference(es) == (g, "CR1")  # fixest-style G/(G-1) covariance
    row = event_study_diagnostics({"es": es}).iloc[0]
    want = pretrend_wald(es, n_clusters=g, vcov_type="CR1")
    assert want["reference"] == "F" and want["df2"] == g - 3
    assert row["wald_p"] == pytest.approx(want["p_value"], rel=1e-12)
    assert row["wald_p"] != pytest.approx(pretrend_wald(es)["p_value"], rel=1e-6)
    # an unclustered influence-function covariance: each unit is a cluster
    cs_res = cs.fit(_cs_region_panel(0, 10), outcome="y", bootstrap=False)
    assert wald_reference(cs_res) == (120, "CR0")
    # too many leads for the clusters: NaN and a note in the table, no warning
    few = EstimationResult(
        "event_study",
        "y",
        _leads_terms(np.full(6, 0.01)),
        vcov=np.eye(7) * 0.01,
        info={"cluster": "region", "n_clusters": 4},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = event_study_diagnostics({"few": few})
    assert np.isnan(table.iloc[0]["wald_p"]) and "6 leads with 4 clusters" in table.iloc[0]["note"]


def test_imputation_leads_are_cr1_and_dcdh_fit_records_its_clusters():
    # imputation's Test 1 leads carry fixest's G/(G-1)(n0-1)/(n0-K): read as CR0 the F
    # statistic shrank by (G-1)/G (a reviewer's 2,000 worlds at G = 10, 3 leads: 3.95%
    # rejection at 5% against 4.65% with CR1)
    from zoneimpact.estimators import chaisemartin, imputation

    sim = simulate(
        rng=3, n_units=120, n_regions=12, first_year=2000, last_year=2014,
        waves={2005: 0.5, 2009: 0.5}, displacement_share=0.0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = imputation.fit(sim.panel, outcome="fdi", pretrends=3, cluster="region")
        assert wald_reference(imp) == (12, "CR1")
        # dCDH's fit with a cluster recorded no n_clusters (chi2 reference, verdict df inf)
        # where with_inference(cluster=) records it: both now give G
        f = sim.frame.assign(region_c=pd.factorize(sim.frame["region"])[0].astype(float))
        p = Panel.from_frame(
            f, unit="unit", time="year", cohort="cohort", outcomes=["fdi"],
            covariates=["region_c"],
        )  # fmt: skip
        dc = chaisemartin.fit(p, outcome="fdi", cluster="region_c", effects=2, placebo=2)
        again = chaisemartin.fit(p, outcome="fdi", effects=2, placebo=2)
        again = again.with_inference(cluster="region_c")
    assert dc.info["n_clusters"] == again.info["n_clusters"] == 12
    assert wald_reference(dc) == (12, "CR0")
