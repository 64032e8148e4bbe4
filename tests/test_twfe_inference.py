"""TWFE variances without refitting (issue 13): clustering on any column, one or two ways,
and the wild cluster bootstrap, from the design the fit keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_wild_cluster import panel as wild_panel

from zoneimpact import Panel
from zoneimpact.errors import SpecError
from zoneimpact.estimators import twfe
from zoneimpact.simulate import simulate

REF = json.loads((Path(__file__).parents[1] / "benchmarks/reference/wild_cluster.json").read_text())


@pytest.fixture(scope="module")
def prov_panel() -> Panel:
    # benchmarks/reference/wild_cluster_reference.py's panel: y ~ d + x | unit + t, where
    # d switches on at 4 or 5 in provinces 0, 3, 6, 9 (a staggered cohort)
    df = wild_panel()
    cohort = df.groupby("unit")["d"].transform(
        lambda d: float(df.loc[d.index, "t"][d.to_numpy() == 1].min()) if d.any() else 0.0
    )
    return Panel.from_frame(
        df.assign(cohort=cohort),
        unit="unit",
        time="t",
        outcomes=["y"],
        cohort="cohort",
        covariates=["x", "prov"],
    )


@pytest.fixture(scope="module")
def fitted(prov_panel):
    return twfe.fit(prov_panel, outcome="y", covariates=["x"], ssc="fixest")


def test_same_clustering_reproduces_the_fit(fitted) -> None:
    again = fitted.with_inference("cluster")
    np.testing.assert_allclose(again.terms["se"], fitted.terms["se"], rtol=1e-13)
    np.testing.assert_allclose(again.vcov, fitted.vcov, rtol=1e-13)


def test_one_way_on_a_column_equals_refit_and_pyfixest(prov_panel, fitted) -> None:
    redone = fitted.with_inference("cluster", cluster="prov")
    refit = twfe.fit(prov_panel, outcome="y", covariates=["x"], ssc="fixest", cluster="prov")
    np.testing.assert_allclose(redone.terms["se"], refit.terms["se"], rtol=1e-13)
    # pyfixest 0.60 feols(y ~ d + x | unit + t, vcov={"CRV1": "prov"})
    ref = REF["pyfixest_crv1"]
    assert redone.se == pytest.approx(ref["d"]["se"], rel=1e-10)
    assert redone.terms.set_index("term").loc["x", "se"] == pytest.approx(ref["x"]["se"], rel=1e-10)
    # the same labels as a user Series by unit (a column the panel need not carry)
    by_unit = prov_panel.data.groupby("unit")["prov"].first().rename("province")
    from_series = fitted.with_inference("cluster", cluster=by_unit)
    np.testing.assert_allclose(from_series.terms["se"], redone.terms["se"], rtol=1e-13)
    assert from_series.info["cluster"] == "province" and from_series.info["n_clusters"] == 10


def test_two_way_matches_pyfixest(fitted) -> None:
    two = fitted.with_inference("cluster", cluster=["prov", "time"])
    ref = REF["pyfixest_crv1_two_way"]
    # pyfixest 0.60 vcov={"CRV1": "prov+t"}: CGM 2011 with min(G) in the factor; 1e-10
    assert two.se == pytest.approx(ref["d"]["se"], rel=1e-10)
    assert two.terms.set_index("term").loc["x", "se"] == pytest.approx(ref["x"]["se"], rel=1e-10)
    assert two.info["n_clusters"] == 8  # min(10 provinces, 8 periods)


def test_wild_bootstrap_matches_wildboottest(fitted) -> None:
    wild = fitted.with_inference("wild", cluster="prov", n_boot=9999)
    row = wild.terms.set_index("term").loc["att"]
    # wildboottest 0.3.2, full enumeration of the 1,024 sign vectors: p = 0.18359375
    assert row["p_value"] == REF["tests"]["d"]["p_value"]
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    # the CR1 standard error stays beside the bootstrap p-value and interval
    assert row["se"] == pytest.approx(REF["pyfixest_crv1"]["d"]["se"], rel=1e-10)
    with pytest.raises(SpecError, match="one way"):
        fitted.with_inference("wild", cluster=["prov", "time"])


def test_event_study_reclustering_equals_refit() -> None:
    sim = simulate(rng=3)
    es = twfe.fit_event_study(sim.panel, outcome="fdi", leads=3, lags=3, bin_endpoints=True)
    redone = es.with_inference("cluster", cluster="region")
    refit = twfe.fit_event_study(
        sim.panel, outcome="fdi", leads=3, lags=3, bin_endpoints=True, cluster="region"
    )
    # the averaged att term too (its variance goes through the same linear combination)
    np.testing.assert_allclose(redone.terms["se"], refit.terms["se"], rtol=1e-12)
    assert list(redone.terms["term"]) == list(refit.terms["term"])


def test_bad_cluster_is_named(fitted) -> None:
    with pytest.raises(SpecError, match="no value for unit"):
        fitted.with_inference("cluster", cluster=pd.Series({0: "a"}, name="s"))
    with pytest.raises(SpecError):
        fitted.with_inference("sandwich")


def test_result_api_reads_the_bootstrap_p_and_interval(fitted) -> None:
    wild = fitted.with_inference("wild", cluster="prov", n_boot=9999)
    row = wild.terms.set_index("term").loc["att"]
    assert wild.pvalues["att"] == row["p_value"]
    ci = wild.conf_int()
    assert (ci.loc["att", "lower"], ci.loc["att", "upper"]) == (row["ci_low"], row["ci_high"])
    # at another level the stored interval does not apply: the t interval is used
    assert wild.conf_int(0.10).loc["att", "lower"] != row["ci_low"]
    assert wild.tidy()["p_value"].iloc[0] == row["p_value"]
    # a result rebuilt at 90% does not relabel the 95% inversion: it gives the t interval
    # of the same CR1 SE, exactly what conf_int(0.10) gave above
    at90 = wild.with_terms(wild.terms, alpha=0.10)
    assert wild.info["ci_alpha"] == 0.05
    pd.testing.assert_frame_equal(at90.conf_int(), wild.conf_int(0.10))
    assert at90.tidy().set_index("term").loc["att", "conf_low"] != row["ci_low"]


def test_conley_spatial_hac_by_hand_and_limits() -> None:
    # Conley (1999) with unit scores: V = B (S' K S) B, K the Bartlett kernel of distances
    # (then the uniform kernel, the default)
    sim = simulate(
        rng=5,
        n_units=60,
        n_regions=6,
        first_year=2000,
        last_year=2008,
        waves={2003: 0.5, 2006: 0.5},
    )
    res = twfe.fit(sim.panel, outcome="fdi")
    con = res.with_inference("conley", conley_km=300.0, conley_kernel="bartlett")
    geo = sim.panel.geography
    frame = sim.frame
    # the regression by hand: y on d with unit and year dummies (statsmodels-free OLS)
    Xfull = pd.get_dummies(frame[["unit", "year"]].astype(str), drop_first=True, dtype=float)
    d = ((frame["cohort"] > 0) & (frame["year"] >= frame["cohort"])).astype(float)
    X = np.column_stack([d.to_numpy(), np.ones(len(frame)), Xfull.to_numpy()])
    y = frame["fdi"].to_numpy(float)
    bread = np.linalg.inv(X.T @ X)
    u = y - X @ (bread @ (X.T @ y))
    units = frame["unit"].to_numpy()
    order = pd.Index(pd.unique(units))
    S = np.zeros((len(order), X.shape[1]))
    np.add.at(S, order.get_indexer(units), X * u[:, None])
    lat = geo.reindex(order)["lat"].to_numpy(float)
    lon = geo.reindex(order)["lon"].to_numpy(float)
    from zoneimpact.geo import haversine_km

    K = np.clip(1 - haversine_km(lat[:, None], lon[:, None], lat[None], lon[None]) / 300.0, 0, None)
    lam, Q = np.linalg.eigh(K)
    Kpsd = (Q * np.clip(lam, 0, None)) @ Q.T  # the estimator drops negative eigenvalues
    V = bread @ S.T @ Kpsd @ S @ bread
    # exact linear algebra on a 540-row design: agreement to 1e-8 relative
    assert con.se == pytest.approx(np.sqrt(V[0, 0]), rel=1e-8)
    assert con.estimate == res.estimate and con.info["se_type"] == "Conley spatial HAC"
    # the uniform kernel (R fixest's vcov_conley): weight 1 within the cutoff, same by-hand
    # sandwich with that kernel's positive part (1e-8 as above)
    lam_u, Q_u = np.linalg.eigh(
        (haversine_km(lat[:, None], lon[:, None], lat[None], lon[None]) <= 300.0).astype(float)
    )
    V_u = bread @ S.T @ ((Q_u * np.clip(lam_u, 0, None)) @ Q_u.T) @ S @ bread
    uni = res.with_inference("conley", conley_km=300.0)  # the default kernel
    assert uni.info["cluster"] == "Conley (Uniform kernel, 300 km)"
    assert uni.info["conley_kernel"] == "uniform"
    assert uni.se == pytest.approx(np.sqrt(V_u[0, 0]), rel=1e-8)
    assert abs(uni.se - con.se) > 1e-3 * con.se  # the kernels differ on this design
    with pytest.raises(SpecError, match="conley_kernel"):
        res.with_inference("cluster", conley_kernel="uniform")
    # a cutoff below every distance leaves each unit on its own: unit-clustered, no factor
    tiny = res.with_inference("conley", conley_km=1e-6)
    hc = bread @ S.T @ S @ bread
    assert tiny.se == pytest.approx(np.sqrt(hc[0, 0]), rel=1e-8)
    assert tiny.se < res.with_inference("cluster").se  # CR1 has a small-sample factor
    with pytest.raises(SpecError, match="conley_km"):
        res.with_inference("conley")
    with pytest.raises(SpecError, match="positive distance"):
        res.with_inference("conley", conley_km=-5)
