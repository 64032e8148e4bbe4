"""SpilloverResult.with_inference: another clustering or Conley spatial HAC for the joint
inference (direct, spillover rings, totals, net, net per treated, displacement share)
without refitting the pieces, equal to a refit with ``cluster=`` / ``conley_km=``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError, ZoneImpactError
from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

set_progress(False)
SMALL = dict(
    n_units=150,
    n_regions=30,
    first_year=2002,
    last_year=2016,
    waves={2006: 0.4, 2010: 0.3, 2013: 0.3},
)


@pytest.fixture(scope="module")
def panel() -> Panel:
    """The simulated zone world with two more unit-level cluster variables: ``province``
    (ten groups of three regions) in the geography, and its numeric code ``prov_code``
    as a panel column (constant within unit)."""
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    geo = sim.geography.copy()
    geo["province"] = "p" + (geo["region"].str[1:].astype(int) // 3).astype(str)
    frame = sim.frame.copy()
    frame["prov_code"] = (
        geo.set_index("unit")["province"].str[1:].astype(float).reindex(frame["unit"]).to_numpy()
    )
    return Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi", "patents"],
        covariates=["x", "prov_code"],
        geography=geo,
        adjacency=sim.adjacency,
    )


@pytest.fixture(scope="module")
def fitted(panel: Panel) -> spillover.SpilloverResult:
    # regional clusters (the default), CR2 and the region check in the joint scores
    return spillover.fit(panel, outcome="fdi", rng=11, n_boot=50)


def _same(a: spillover.SpilloverResult, b: spillover.SpilloverResult, rtol: float) -> None:
    ta, tb = a.terms.set_index("term"), b.terms.set_index("term")
    assert list(ta.index) == list(tb.index)
    for col in ("estimate", "se", "df"):
        np.testing.assert_allclose(ta[col], tb[col], rtol=rtol, atol=0, err_msg=col)
    pd.testing.assert_frame_equal(a.draws, b.draws, check_exact=False, rtol=rtol, atol=1e-9)
    assert a.info["cluster"] == b.info["cluster"]
    assert a.info["n_clusters"] == b.info["n_clusters"]


def test_own_clustering_reproduces_every_term(fitted):
    # the fit's own clusters re-scored from the kept pieces: every term's estimate, SE and
    # degrees of freedom and the bootstrap draws (same seed) to 1e-12 — the same
    # arithmetic on the same numbers, so only summation order could differ
    terms = set(fitted.terms["term"])
    assert {"direct", "spillover", "net", "net_per_treated", "displacement_share"} <= terms
    assert "net_region_did" in terms
    again = fitted.with_inference("cluster", cluster="region", rng=11)
    _same(again, fitted, 1e-12)
    _same(fitted.with_inference(rng=11), fitted, 1e-12)


def test_another_cluster_column_equals_a_refit(panel, fitted):
    # provinces (a geography column of strings) re-scored = a refit with cluster="province"
    # (BJS leave-out averages and CR2 recomputed for the new clusters); the region check
    # then keeps its own regional SE. 1e-10: identical arithmetic, order of sums aside.
    refit = spillover.fit(panel, outcome="fdi", rng=11, n_boot=50, cluster="province")
    got = fitted.with_inference("cluster", cluster="province", rng=11)
    _same(got, refit, 1e-10)
    assert got.info["n_clusters"] == 10
    se = got.terms.set_index("term")["se"]
    assert not np.isclose(se["direct"], fitted.terms.set_index("term")["se"]["direct"])
    # the same partition as a numeric panel column or as a Series indexed by unit
    num = fitted.with_inference(cluster="prov_code", rng=11)
    np.testing.assert_allclose(num.terms["se"], got.terms["se"], rtol=1e-12)
    labels = panel.geography["province"]
    ser = fitted.with_inference(cluster=labels, rng=11)
    np.testing.assert_allclose(ser.terms["se"], got.terms["se"], rtol=1e-12)
    # and back to the regions: the joint region check returns
    back = got.with_inference(cluster="region", rng=11)
    _same(back, fitted, 1e-12)


def test_unit_clusters_and_callaway_santanna_base_equal_refits(panel):
    # the CS base re-sums its per-unit influence functions; unit clusters by a refit
    cs = spillover.fit(panel, outcome="fdi", rng=5, n_boot=20, base_estimator="callaway_santanna")
    refit = spillover.fit(
        panel, outcome="fdi", rng=5, n_boot=20, base_estimator="callaway_santanna", cluster="unit"
    )
    _same(cs.with_inference(cluster="unit", rng=5), refit, 1e-10)


def test_conley_equals_a_refit(panel, fitted):
    # unit scores (CR2 on unit clusters, as the fit does) times the Bartlett-kernel root
    refit = spillover.fit(panel, outcome="fdi", rng=11, n_boot=50, conley_km=300.0)
    got = fitted.with_inference("conley", conley_km=300.0, rng=11)
    _same(got, refit, 1e-10)
    assert got.info["cluster"].startswith("Conley")
    assert np.isinf(got.terms["df"].iloc[0])


def test_original_result_is_unchanged(fitted):
    terms, draws, info = fitted.terms, fitted.draws, dict(fitted.info)
    new = fitted.with_inference("cluster", cluster="unit", rng=3, n_boot=10)
    assert new is not fitted and len(new.draws) == 10
    pd.testing.assert_frame_equal(fitted.terms, terms)
    pd.testing.assert_frame_equal(fitted.draws, draws)
    assert dict(fitted.info) == info
    assert fitted.info["cluster"] == "region" and new.info["cluster"] == "unit"


def test_bad_requests_name_what_was_wrong(fitted):
    with pytest.raises(ZoneImpactError, match="nope"):
        fitted.with_inference(cluster="nope")
    with pytest.raises(ZoneImpactError, match="conley_km"):
        fitted.with_inference("conley")
    with pytest.raises(ZoneImpactError, match="conley_km"):
        fitted.with_inference("cluster", conley_km=100.0)
    with pytest.raises(ZoneImpactError, match="conley_km"):
        fitted.with_inference("conley", conley_km=-5.0)
    with pytest.raises(ZoneImpactError, match="method"):
        fitted.with_inference("hac")
    with pytest.raises(ZoneImpactError, match="fdi"):  # varies within unit
        fitted.with_inference(cluster="fdi")
    with pytest.raises(ZoneImpactError, match="n_boot"):
        fitted.with_inference(n_boot=-1)
    # a result whose kept scores are on another scale refuses rather than mislead
    with pytest.raises(EstimationError, match="refit"):
        fitted.rescaled(4.0).with_inference(cluster="unit")
