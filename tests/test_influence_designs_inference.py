"""``with_inference`` of the estimators built from unit-level (or, for repeated
cross-sections, observation-level) influence functions: the variance is re-summed from the
influence functions kept on the result, without refitting.

Tolerances: re-summing the same influence functions reproduces the fit's covariance up to
the order of floating-point sums (observed ~1e-16), so the fit's own clustering is checked
to 1e-12; another clustering against a refit with ``cluster=`` that column (the refit
re-estimates the same cells, identical to the last bit, and sums them in the same way)
to 1e-10.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators import (
    chaisemartin,
    continuous_did,
    cs_repeated_cross_section,
    triple_difference,
)
from zoneimpact.inference.bootstrap import cluster_sums
from zoneimpact.panel import Panel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import mc_designs  # noqa: E402


def _se(res) -> np.ndarray:
    return res.terms["se"].to_numpy(float)


def _hand_vcov(psi: np.ndarray, amat: np.ndarray, n: float, *labels: np.ndarray) -> np.ndarray:
    """``A' (S'S / n^2) A`` written out: one-way cluster sums, or V1 + V2 - V12."""

    def v(lab: np.ndarray) -> np.ndarray:
        s = pd.DataFrame(psi).groupby(lab).sum().to_numpy() @ amat
        return s.T @ s / n**2

    if len(labels) == 1:
        return v(labels[0])
    both = pd.Series(labels[0]).astype(str) + "|" + pd.Series(labels[1]).astype(str)
    return v(labels[0]) + v(labels[1]) - v(both.to_numpy())


# ------------------------------------------------------------ repeated cross-sections
@pytest.fixture(scope="module")
def rc() -> Panel:
    df = mc_designs.simulate_rc(np.random.default_rng(7), n_per_period=300)
    df["region"] = (df["id"] * 7919) % 23  # numeric clusters
    df["province"] = df["id"] % 11  # numeric codes; the string labels come as a Series
    return Panel.from_frame(
        df,
        unit="id",
        time="time",
        cohort="g",
        outcomes="y",
        covariates=["x", "w", "region", "province"],
    )


RC_OPTS = {"covariates": ["x"], "weights": "w"}


def test_rc_own_clustering_reproduces_fit(rc: Panel) -> None:
    for cluster in (None, "region"):
        res = cs_repeated_cross_section.fit(rc, outcome="y", cluster=cluster, **RC_OPTS)
        again = res.with_inference("analytic", cluster=cluster)
        np.testing.assert_allclose(_se(again), _se(res), rtol=1e-12, atol=0)
        np.testing.assert_allclose(again.att_gt["se"], res.att_gt["se"], rtol=1e-12)
        np.testing.assert_allclose(again.vcov, res.vcov, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("cluster", ["region", "province"])
def test_rc_other_cluster_equals_refit(rc: Panel, cluster: str) -> None:
    res = cs_repeated_cross_section.fit(rc, outcome="y", **RC_OPTS)
    refit = cs_repeated_cross_section.fit(rc, outcome="y", cluster=cluster, **RC_OPTS)
    new = res.with_inference("analytic", cluster=cluster)
    np.testing.assert_allclose(_se(new), _se(refit), rtol=1e-10)
    np.testing.assert_allclose(new.att_gt["se"], refit.att_gt["se"], rtol=1e-10)
    assert new.info["cluster"] == cluster and new.info["n_clusters"] == refit.info["n_clusters"]
    # clustering changes the SEs (the test could fail): 23 or 11 clusters, not 1,800 rows
    assert not np.allclose(_se(new), _se(res), rtol=1e-3)


def test_rc_string_series_by_unit_equals_column(rc: Panel) -> None:
    """Covariates are numeric; string labels (any column of the user's data) come as a
    Series indexed by unit (the respondent id)."""
    res = cs_repeated_cross_section.fit(rc, outcome="y", **RC_OPTS)
    by_unit = "p" + rc.data.set_index("unit")["province"].astype(int).astype(str)
    np.testing.assert_allclose(
        _se(res.with_inference(cluster=by_unit)),
        _se(res.with_inference(cluster="province")),
        rtol=1e-12,
    )


def test_rc_two_way_is_v1_plus_v2_minus_v12(rc: Panel) -> None:
    res = cs_repeated_cross_section.fit(rc, outcome="y", **RC_OPTS)
    new = res.with_inference("analytic", cluster=["region", "province"])
    b = res.blocks
    frame = b.frame
    hand = _hand_vcov(
        np.asarray(b.psi),
        np.asarray(b.amat),
        b.n,
        frame["region"].to_numpy(),
        frame["province"].to_numpy(),
    )
    np.testing.assert_allclose(new.vcov.to_numpy(), hand, rtol=1e-10, atol=1e-14)
    assert new.info["cluster"] == "region+province"


def test_rc_bootstrap_reproduces_fit(rc: Panel) -> None:
    """Same seed, same clusters: the same multiplier draws, SEs and sup-t bands."""
    fitted = cs_repeated_cross_section.fit(
        rc,
        outcome="y",
        cluster="region",
        bootstrap=True,
        n_boot=199,
        rng=np.random.default_rng(3),
        **RC_OPTS,
    )
    res = cs_repeated_cross_section.fit(rc, outcome="y", **RC_OPTS)
    new = res.with_inference("bootstrap", cluster="region", n_boot=199, rng=3)
    for col in ("se", "band_low", "band_high"):
        np.testing.assert_allclose(new.terms[col], fitted.terms[col], rtol=1e-12)
    np.testing.assert_allclose(new.att_gt["se"], fitted.att_gt["se"], rtol=1e-12)
    assert new.info["crit_event"] == pytest.approx(fitted.info["crit_event"], rel=1e-12)
    with pytest.raises(ZoneImpactError, match="two-way"):
        res.with_inference("bootstrap", cluster=["region", "province"])


def test_rc_original_unchanged_and_bad_column(rc: Panel) -> None:
    res = cs_repeated_cross_section.fit(rc, outcome="y", **RC_OPTS)
    before = (res.terms.copy(), res.att_gt.copy(), res.vcov.copy(), dict(res.info))
    res.with_inference("analytic", cluster="province")
    pd.testing.assert_frame_equal(res.terms, before[0])
    pd.testing.assert_frame_equal(res.att_gt, before[1])
    pd.testing.assert_frame_equal(res.vcov, before[2])
    assert dict(res.info) == before[3]
    with pytest.raises(ZoneImpactError, match="no_such_col"):
        res.with_inference("analytic", cluster="no_such_col")
    with pytest.raises(ZoneImpactError, match="method"):
        res.with_inference("wild")


# ------------------------------------------------------------------ triple differences
@pytest.fixture(scope="module")
def ddd() -> Panel:
    df = mc_designs.simulate_ddd(np.random.default_rng(2025), n_units=400)
    df["region"] = (df["unit"] * 31) % 17
    # a string column per unit, carried by the geography table
    geo = pd.DataFrame({"unit": df["unit"].unique()})
    geo["province"] = "p" + (geo["unit"] % 9).astype(str)
    return Panel.from_frame(
        df,
        unit="unit",
        time="time",
        cohort="g",
        outcomes="y",
        covariates=["q", "x", "region"],
        geography=geo,
    )


def test_ddd_inference(ddd: Panel) -> None:
    """The fit's own (unit) clustering is reproduced, other clusterings equal the hand
    cluster sums of the kept influence functions (one- and two-way), ``fit(cluster=)``
    equals ``with_inference`` after the fit, and the original result does not change."""
    res = triple_difference.fit(ddd, outcome="y", eligible="q", covariates=["x"])
    before = (res.terms.copy(), res.att_gt.copy())
    same = res.with_inference("analytic")
    np.testing.assert_allclose(_se(same), _se(res), rtol=1e-12)
    np.testing.assert_allclose(same.att_gt["se"], res.att_gt["se"], rtol=1e-12)
    b = res.blocks
    psi, amat = np.asarray(b.psi), np.asarray(b.amat)
    per_unit = ddd.data.groupby("unit")[["region"]].first().reindex(b.ids)
    per_unit["province"] = "p" + (per_unit.index.to_series() % 9).astype(str)
    for cluster in ("region", "province"):
        new = res.with_inference(cluster=cluster)
        hand = _hand_vcov(psi, amat, b.n, per_unit[cluster].to_numpy())
        np.testing.assert_allclose(new.vcov.to_numpy(), hand, rtol=1e-10, atol=1e-14)
        cells = cluster_sums(psi[:, : len(res.att_gt)], per_unit[cluster].to_numpy())
        cell_se = np.sqrt((cells**2).sum(axis=0)) / b.n
        defined = res.att_gt["se"].notna().to_numpy()
        np.testing.assert_allclose(new.att_gt["se"][defined], cell_se[defined], rtol=1e-10)
        assert not np.allclose(_se(new), _se(res), rtol=1e-3)
    two = res.with_inference(cluster=["region", "province"])
    direct = triple_difference.fit(
        ddd, outcome="y", eligible="q", covariates=["x"], cluster=["region", "province"]
    )
    pd.testing.assert_frame_equal(direct.terms, two.terms)
    hand2 = _hand_vcov(psi, amat, b.n, *(per_unit[c].to_numpy() for c in ("region", "province")))
    np.testing.assert_allclose(two.vcov.to_numpy(), hand2, rtol=1e-10, atol=1e-14)
    pd.testing.assert_frame_equal(res.terms, before[0])
    pd.testing.assert_frame_equal(res.att_gt, before[1])
    with pytest.raises(ZoneImpactError, match="no_such_col"):
        res.with_inference(cluster="no_such_col")
    with pytest.raises(ZoneImpactError, match="method"):
        res.with_inference("bootstrap")


# ------------------------------------------------------------------ continuous doses
@pytest.fixture(scope="module")
def doses() -> Panel:
    df = mc_designs.simulate_dose(np.random.default_rng(2024), n_units=400)
    df["region"] = (df["unit"] * 13) % 19
    geo = pd.DataFrame({"unit": df["unit"].unique()})
    geo["province"] = "p" + (geo["unit"] % 7).astype(str)
    return Panel.from_frame(
        df,
        unit="unit",
        time="time",
        cohort="g",
        outcomes="y",
        covariates=["dose", "region"],
        geography=geo,
    )


def test_continuous_did_inference(doses: Panel) -> None:
    """With the fit's seed the bootstrap redraws the fit's uniform bands exactly; other
    clusterings equal the hand cluster sums of the kept influence functions (one- and
    two-way, contribution scale ``n = 1``); ``fit(cluster=)`` is the fit followed by
    ``with_inference`` on the same generator."""
    res = continuous_did.fit(
        doses, outcome="y", dose="dose", n_boot=199, rng=np.random.default_rng(5)
    )
    before = (res.terms.copy(), res.dose_response.copy(), dict(res.info))
    same = res.with_inference("bootstrap", n_boot=199, rng=5)
    for col in ("se", "band_low", "band_high"):
        np.testing.assert_allclose(same.terms[col], res.terms[col], rtol=1e-12)
    pd.testing.assert_frame_equal(same.dose_response, res.dose_response, rtol=1e-12)
    b = res.blocks
    psi = np.asarray(b.psi)
    eye = np.eye(psi.shape[1])
    region = doses.data.groupby("unit")["region"].first().reindex(b.ids).to_numpy()
    province = ("p" + (pd.Series(b.ids) % 7).astype(str)).to_numpy()
    for cluster, lab in (("region", region), ("province", province)):
        new = res.with_inference("analytic", cluster=cluster)
        np.testing.assert_allclose(
            new.vcov.to_numpy(), _hand_vcov(psi, eye, 1.0, lab), rtol=1e-10, atol=1e-14
        )
        se = new.terms["se"].to_numpy()
        np.testing.assert_allclose(new.dose_response["att_se"], se[2 : 2 + len(new.dose_response)])
        assert not np.allclose(se, _se(res), rtol=1e-3)
        # analytic: pointwise bands
        z = stats.norm.ppf(0.975)
        np.testing.assert_allclose(
            new.terms["band_high"] - new.terms["estimate"], z * se, rtol=1e-12
        )
    boot = res.with_inference("bootstrap", cluster="region", n_boot=199, rng=5)
    assert boot.info["crit_att_d"] >= z and boot.info["n_clusters"] == 19
    g = np.random.default_rng(5)
    first = continuous_did.fit(doses, outcome="y", dose="dose", n_boot=199, rng=g)
    expected = first.with_inference("bootstrap", cluster="region", n_boot=199, rng=g)
    direct = continuous_did.fit(
        doses, outcome="y", dose="dose", n_boot=199, rng=np.random.default_rng(5), cluster="region"
    )
    pd.testing.assert_frame_equal(direct.terms, expected.terms)
    assert direct.info["n_clusters"] == 19
    two = res.with_inference(cluster=["region", "province"])
    np.testing.assert_allclose(
        two.vcov.to_numpy(), _hand_vcov(psi, eye, 1.0, region, province), rtol=1e-10, atol=1e-14
    )
    pd.testing.assert_frame_equal(res.terms, before[0])
    pd.testing.assert_frame_equal(res.dose_response, before[1])
    assert dict(res.info) == before[2]
    with pytest.raises(ZoneImpactError, match="no_such_col"):
        res.with_inference(cluster="no_such_col")


def test_continuous_did_cluster_draws_one_clustered_bootstrap(
    doses: Panel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fit(cluster=)`` draws only the clustered bootstrap (a by-unit one would be thrown
    away), with the caller's ``n_jobs``, yet equals ``fit()`` then ``with_inference`` on the
    same generator to the last bit (the draws do not depend on ``n_jobs``) and leaves that
    generator as the pair does; two-way clustering (pointwise bands) draws nothing."""
    real = continuous_did.multiplier_draws
    calls: list[tuple[bool, int]] = []

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        calls.append((kwargs.get("cluster") is not None, int(kwargs["n_jobs"])))
        return real(*args, **kwargs)

    # 250 Mammen draws: three chunks of the generator's children, not a round hundred
    opts = {"outcome": "y", "dose": "dose", "n_boot": 250, "boot_weights": "mammen"}
    g = np.random.default_rng(11)
    first = continuous_did.fit(doses, rng=g, **opts)
    expected = first.with_inference(
        "bootstrap", cluster="province", n_boot=250, rng=g, boot_weights="mammen"
    )
    monkeypatch.setattr(continuous_did, "multiplier_draws", counted)
    h = np.random.default_rng(11)
    direct = continuous_did.fit(doses, rng=h, n_jobs=2, cluster="province", **opts)
    assert calls == [(True, 2)]
    pd.testing.assert_frame_equal(direct.terms, expected.terms, check_exact=True)
    pd.testing.assert_frame_equal(direct.dose_response, expected.dose_response, check_exact=True)
    assert dict(direct.info) == dict(expected.info)
    assert direct.info["n_clusters"] == 7 and direct.info["crit_att_d"] > stats.norm.ppf(0.975)
    assert h.spawn(1)[0].random() == g.spawn(1)[0].random()
    calls.clear()
    two = continuous_did.fit(doses, rng=5, cluster=["region", "province"], **opts)
    assert calls == [] and two.info["n_boot"] == 0


# ------------------------------------------------------------- de Chaisemartin-D'Haultfoeuille
@pytest.fixture(scope="module")
def switching() -> Panel:
    sim = mc_designs.simulate_switching(np.random.default_rng(2026), n_groups=200)
    sim["region"] = (sim["unit"] * 11) % 13
    sim["state"] = sim["unit"] % 6
    return chaisemartin.switching_panel(
        sim,
        unit="unit",
        time="time",
        outcomes="y",
        treatment="d",
        covariates=["region", "state"],
    )


def test_chaisemartin_inference(switching: Panel) -> None:
    """The dCDH variance influence function depends on the clusters (cohort corrections
    count distinct clusters), so with_inference recomputes it from the kept arrays: every
    clustering equals a refit with ``cluster=`` that column."""
    opts = {"effects": 3, "placebo": 2}
    for own in (None, "region"):
        res = chaisemartin.fit(switching, outcome="y", cluster=own, **opts)
        same = res.with_inference("analytic", cluster=own)
        np.testing.assert_allclose(_se(same), _se(res), rtol=1e-12)
        np.testing.assert_allclose(same.vcov, res.vcov, rtol=1e-12, atol=1e-300)
    res = chaisemartin.fit(switching, outcome="y", **opts)
    before = (res.terms.copy(), res.effects.copy(), dict(res.info))
    for cluster in ("region", "state"):
        refit = chaisemartin.fit(switching, outcome="y", cluster=cluster, **opts)
        new = res.with_inference(cluster=cluster)
        np.testing.assert_allclose(_se(new), _se(refit), rtol=1e-10)
        np.testing.assert_allclose(new.effects["se"], refit.effects["se"], rtol=1e-10)
        assert not np.allclose(_se(new), _se(res), rtol=1e-3)
    # a string Series by unit equals the numeric column it encodes
    labels = "s" + switching.data.groupby("unit")["state"].first().astype(int).astype(str)
    np.testing.assert_allclose(
        _se(res.with_inference(cluster=labels)),
        _se(res.with_inference(cluster="state")),
        rtol=1e-12,
    )
    pd.testing.assert_frame_equal(res.terms, before[0])
    pd.testing.assert_frame_equal(res.effects, before[1])
    assert dict(res.info) == before[2]
    with pytest.raises(ZoneImpactError, match="no_such_col"):
        res.with_inference(cluster="no_such_col")
    with pytest.raises(ZoneImpactError, match="one way"):
        res.with_inference(cluster=["region", "state"])


def test_rescaled_outcome_keeps_influence_on_the_users_scale(switching: Panel) -> None:
    """An outcome beyond 2^64 is estimated on a rescaled copy (estimators._scale); the kept
    influence functions come back in the user's units, so re-clustered SEs scale by the
    same power of two (exactly)."""
    df = mc_designs.simulate_ddd(np.random.default_rng(2025), n_units=200)
    df["region"] = df["unit"] % 7
    c = 2.0**80

    def panel(scale: float) -> Panel:
        return Panel.from_frame(
            df.assign(y=df["y"] * scale),
            unit="unit",
            time="time",
            cohort="g",
            outcomes="y",
            covariates=["q", "x", "region"],
        )

    small = triple_difference.fit(panel(1.0), outcome="y", eligible="q")
    big = triple_difference.fit(panel(c), outcome="y", eligible="q")
    np.testing.assert_allclose(
        _se(big.with_inference(cluster="region")),
        c * _se(small.with_inference(cluster="region")),
        rtol=1e-12,
    )
    sw = switching.data.assign(y=switching.data["y"] * c)
    base = chaisemartin.fit(switching, outcome="y", effects=2)
    scaled = chaisemartin.fit(
        Panel.from_frame(
            sw,
            unit="unit",
            time="time",
            cohort="cohort",
            outcomes="y",
            covariates=list(switching.covariates),
        ),
        outcome="y",
        effects=2,
    )
    np.testing.assert_allclose(
        _se(scaled.with_inference(cluster="region")),
        c * _se(base.with_inference(cluster="region")),
        rtol=1e-12,
    )
