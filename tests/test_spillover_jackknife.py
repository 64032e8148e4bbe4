"""Delete-one-cluster jackknife of the spillover decomposition's CS base
(``SpilloverResult.with_inference("jackknife")``, :mod:`zoneimpact.estimators._spillover_jackknife`).

Checked against CV3 written out from ``callaway_santanna.fit`` refitted on every piece's
panel without each region (a different path: CS's full fit and its ATT(g,t) table, not the
cells-only refit), with the terms' totals, net and share formed by hand; against
invariances (unit and region labels, row order, a constant, scale); and for its refusals
and its NaN where a deletion leaves a piece without an estimate. Its calibration in the
simulated worlds is ``benchmarks/mc_spillover.py --base callaway_santanna --inference
jackknife`` (``benchmarks/RESULTS.md``, session 33).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_spillover import TEN_REGIONS

from zoneimpact.errors import SpecError
from zoneimpact.estimators import callaway_santanna, spillover
from zoneimpact.estimators._spillover_jackknife import piece_mean
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

set_progress(False)

pytestmark = pytest.mark.filterwarnings(
    "ignore:base_estimator='callaway_santanna' reports",
    "ignore:.*ATT\\(g,t\\) cell\\(s\\) could not",
)


def _world(rng: int = 4, **kw) -> Panel:
    design = dict(TEN_REGIONS, region_shock_sd=10.0, covariate_trend=2.0, zero_share=0.0)
    # four zone-free regions: the region check is identified
    design.update(zone_region_share=0.6)
    design.update(kw)
    return simulate(rng=rng, **design).panel


def _cs(panel: Panel, outcome: str = "fdi", **kw) -> spillover.SpilloverResult:
    """The CS base with its analytic SEs (``small_sample="none"``), which the explicit
    jackknife then replaces; ``small_sample="cr2"`` gives the default (the jackknife)."""
    return spillover.fit(
        panel,
        outcome=outcome,
        rng=1,
        covariates=["x"],
        base_estimator="callaway_santanna",
        **{"small_sample": "none", "n_boot": 0, **kw},
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[Panel, spillover.SpilloverResult, spillover.SpilloverResult]:
    panel = _world()
    res = _cs(panel)
    return panel, res, res.with_inference("jackknife")


def _written_out_mean(sub: Panel, options: dict, naive: bool = False) -> float:
    """A piece's target-weighted mean from ``callaway_santanna.fit``'s ATT(g,t) table (the
    naive comparison: CS's own ``att``, as the fit reports it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = callaway_santanna.fit(sub, outcome="fdi", bootstrap=False, **options)
    if naive:
        return f.coef("att")
    gt = f.att_gt
    post = gt[(gt["time"] >= gt["cohort"]) & gt["estimate"].notna()]
    d = sub.data
    rows = d[(d["time"] >= d["cohort"]) & d["fdi"].notna()]
    n = rows.groupby(["cohort", "time"]).size().rename("n").reset_index()
    m = post.merge(n, on=["cohort", "time"])
    return float((m["estimate"] * m["n"]).sum() / m["n"].sum())


def _unbalanced(panel: Panel, seed: int = 0) -> Panel:
    """The panel with 8% of its rows dropped at random."""
    d = panel.data
    keep = np.random.default_rng(seed).uniform(size=len(d)) > 0.08
    return panel.replace(data=d.loc[keep].reset_index(drop=True))


def _weighted(panel: Panel) -> Panel:
    """The panel with a unit weight of 1, 2 or 3 (constant within unit)."""
    codes = pd.Series(np.arange(len(panel.units)) % 3 + 1.0, index=list(panel.units))
    return panel.with_outcome("pop", panel.data["unit"].map(codes).to_numpy())


# the unbalanced panel leaves exposed unit-periods without an outcome (said at the fit)
@pytest.mark.filterwarnings("ignore:.*exposed unit-period\\(s\\) have no outcome")
@pytest.mark.parametrize(
    "case", ["balanced", "unbalanced", "weights", "not_yet_treated_universal_base"]
)
def test_piece_means_on_the_full_panels_are_the_fits(fitted, case):
    # before any deletion the refit's mean must be the fit's own estimate of every piece:
    # the target-weighted mean, or CS's own att for the naive comparison, which differ on
    # unbalanced panels (a reviewer's world: 74.56 vs 74.22); the same cells summed in
    # another order, 1e-12 relative on means of order 10-100
    if case == "balanced":
        res = fitted[1]
    else:
        panel = _unbalanced(fitted[0]) if case == "unbalanced" else fitted[0]
        kw: dict = {}
        if case == "weights":
            panel, kw = _weighted(panel), {"weights": "pop"}
        if case == "not_yet_treated_universal_base":
            kw = {"base_options": {"control_group": "notyettreated", "base_period": "universal"}}
        res = _cs(panel, **kw)
    for name, cs_res in res.base_results.items():
        options = cs_res.settings["fit_options"]
        mean = piece_mean(cs_res._panel(), "fdi", options, own_att=name == "naive")
        assert mean == pytest.approx(res.fitted.fits[name].estimate, rel=1e-12), name
    if case == "unbalanced":
        # the naive comparison's two means do differ here, so the test tells them apart
        naive = res.base_results["naive"]
        other = piece_mean(naive._panel(), "fdi", naive.settings["fit_options"])
        assert abs(other - res.coef("naive")) > 0.01


def test_jackknife_is_cv3_written_out_from_cs_refits_by_region(fitted):
    panel, res, jk = fitted
    region = panel.geography["region"]
    regions = sorted(region.unique())
    G = len(regions)
    names = list(res.base_results)
    theta = np.empty((G, len(names)))
    for j, name in enumerate(names):
        cs_res = res.base_results[name]
        pp = cs_res._panel()
        for i, r in enumerate(regions):
            keep = pp.data["unit"].map(region) != r
            sub = pp.replace(data=pp.data.loc[keep].reset_index(drop=True))
            options = dict(cs_res.settings["fit_options"])
            theta[i, j] = _written_out_mean(sub, options, naive=name == "naive")
    fits = res.fitted.fits
    est = np.array([fits[k].estimate for k in names])
    size = np.array([fits[k].size for k in names])
    # the terms as the decomposition forms them: totals hold the target counts fixed
    spill = [k for k in names if k.startswith("spillover:")]
    assert spill == ["spillover:adjacent"]
    lost = [*spill, "spillover_on_zones"]
    combos = {
        "direct": {"direct": 1.0},
        "spillover": {"spillover:adjacent": 1.0},
        "spillover_on_zones": {"spillover_on_zones": 1.0},
        "direct_total": {"direct": size[names.index("direct")]},
        "net": {"direct": size[names.index("direct")], **{k: size[names.index(k)] for k in lost}},
        "naive": {"naive": 1.0},
    }
    se = jk.terms.set_index("term")["se"]
    for term, w in combos.items():
        c = np.array([w.get(k, 0.0) for k in names])
        dev = (theta - est) @ c
        cv3 = np.sqrt((G - 1) / G * np.sum(dev**2))
        # the same refits by another path: 1e-9 relative (cell estimates agree to about
        # 1e-12, and a deviation is a difference of two means of order 10-100)
        assert se[term] == pytest.approx(cv3, rel=1e-9), term
    # the share's delta-method SE (n_boot=0) from the same jackknife covariance
    i_d, i_n = list(combos).index("direct_total"), list(combos).index("net")
    C = np.column_stack([np.array([w.get(k, 0.0) for k in names]) for w in combos.values()])
    dev = (theta - est) @ C
    V = (G - 1) / G * dev.T @ dev
    d_tot, n_tot = jk.coef("direct_total"), jk.coef("net")
    grad = np.array([n_tot / d_tot**2, -1.0 / d_tot])
    sub = V[np.ix_([i_d, i_n], [i_d, i_n])]
    assert se["displacement_share"] == pytest.approx(np.sqrt(grad @ sub @ grad), rel=1e-9)
    df = jk.terms.set_index("term")["df"]
    assert set(df[list(combos)]) == {G - 1}
    assert jk.info["jackknife_clusters"] == G and jk.info["jackknife_undefined"] == {}


def test_jackknife_keeps_estimates_and_moves_only_the_cs_pieces_inference(fitted):
    _, res, jk = fitted
    a, b = res.terms.set_index("term"), jk.terms.set_index("term")
    pd.testing.assert_series_equal(a["estimate"], b["estimate"])
    # the region check keeps its own CR2 scores and Bell-McCaffrey df
    assert b.at["net_region_did", "se"] == a.at["net_region_did", "se"]
    assert b.at["net_region_did", "df"] == a.at["net_region_did", "df"]
    # the CS pieces' SEs do change: the refits are not the linearisation
    assert not np.isclose(b.at["direct", "se"], a.at["direct", "se"], rtol=1e-3)
    assert jk.info["inference"].startswith("delete-one-cluster jackknife")
    # analytic again after a jackknife: the fit's own numbers, the jackknife notes gone
    back = jk.with_inference("cluster")
    np.testing.assert_allclose(back.terms["se"], res.terms["se"], rtol=1e-12)
    assert "jackknife_clusters" not in back.info


def _relabelled(p: Panel, seed: int) -> Panel:
    """The same data with units and regions renamed by a permutation, rows shuffled."""
    units = list(p.units)
    regions = sorted(p.geography["region"].unique())
    rng = np.random.default_rng(seed)
    perm, rperm = rng.permutation(len(units)), rng.permutation(len(regions))
    f = {u: f"id{perm[i]:03d}" for i, u in enumerate(units)}
    g = {r: f"R{rperm[i]}" for i, r in enumerate(regions)}
    d = p.data.assign(unit=p.data["unit"].map(f)).sample(frac=1, random_state=seed)
    geo = p.geography.reset_index()
    geo = geo.assign(unit=geo["unit"].map(f), region=geo["region"].map(g))
    adj = p.adjacency.assign(
        unit=p.adjacency["unit"].map(f), neighbour=p.adjacency["neighbour"].map(f)
    )
    return Panel.from_frame(
        d, unit="unit", time="time", cohort="cohort", outcomes=["fdi"], covariates=["x"],
        geography=geo, adjacency=adj.sample(frac=1, random_state=seed),
    )  # fmt: skip


def test_jackknife_invariances(fitted):
    panel, _, jk = fitted
    terms = ["direct", "spillover", "net", "displacement_share", "spillover_on_zones"]
    ref = jk.terms.set_index("term").loc[terms, "se"]
    relab = _cs(_relabelled(panel, 3)).with_inference("jackknife")
    # the same refits on reordered rows: 1e-8 relative (logit and least-squares solves in
    # another row order)
    np.testing.assert_allclose(relab.terms.set_index("term").loc[terms, "se"], ref, rtol=1e-8)
    y = panel.data["fdi"].to_numpy()
    shifted = _cs(panel.with_outcome("fdi_s", y + 1000.0), "fdi_s").with_inference("jackknife")
    np.testing.assert_allclose(shifted.terms.set_index("term").loc[terms, "se"], ref, rtol=1e-8)
    scaled = _cs(panel.with_outcome("fdi_x", y * 10.0), "fdi_x").with_inference("jackknife")
    got = scaled.terms.set_index("term").loc[terms, "se"]
    lin = terms[:3] + terms[4:]
    np.testing.assert_allclose(got[lin], 10 * ref[lin], rtol=1e-8)
    assert got["displacement_share"] == pytest.approx(ref["displacement_share"], rel=1e-8)


def _clean_in_one_cluster(panel: Panel, res: spillover.SpilloverResult) -> pd.Series:
    """Ten clusters by unit order, but the ring piece's clean units all in cluster 99."""
    codes = pd.Series(np.arange(len(panel.units)) % 10, index=list(panel.units))
    spill_units = set(res.base_results["spillover:adjacent"]._panel().data["unit"])
    clean = res.exposure.table.query("role == 'clean'").index
    lab = codes.copy()
    lab[[u for u in clean if u in spill_units]] = 99
    return lab


def test_a_deletion_that_leaves_a_piece_without_controls_gives_nan_and_says_so():
    # every clean unit in one cluster: deleting it leaves the direct and ring pieces (CS
    # with never-treated comparisons) no comparison for any cell; the naive piece, whose
    # comparisons are all units without a zone, keeps its SE
    panel = _world(6)
    res = _cs(panel)
    lab = _clean_in_one_cluster(panel, res)
    with pytest.warns(UserWarning, match="Deleting a cluster leaves") as caught:
        jk = res.with_inference("jackknife", cluster=lab)
    # said at the caller's line
    assert [w.filename for w in caught if "Deleting" in str(w.message)] == [__file__]
    se = jk.terms.set_index("term")["se"]
    assert np.isnan(se[["direct", "spillover", "net", "displacement_share"]]).all()
    assert np.isfinite(se["naive"])
    undefined = jk.info["jackknife_undefined"]
    assert {"direct", "spillover:adjacent"} <= set(undefined) and "naive" not in undefined
    # named by a unit of the deleted cluster, with CS's reason
    first = min(lab.index[lab == 99])
    assert len(undefined["direct"]) == 1
    assert undefined["direct"][0].startswith(f"the cluster of unit {first} (")
    assert "No post-treatment ATT(g,t) could be estimated" in undefined["direct"][0]


def _pieces(res: spillover.SpilloverResult) -> pd.DataFrame:
    """Every term but the region check (whose CR2 follows ``small_sample``)."""
    return res.terms.set_index("term").drop(index="net_region_did")


def test_the_default_is_the_jackknife_without_its_warning(fitted):
    # small_sample="cr2" (the default) with 10 region clusters: the fit reports the
    # jackknife, not the analytic SEs the Monte Carlo found short, and does not warn; the
    # numbers are the explicit jackknife's (the same refits and draws: exact)
    panel, _, jk = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", ".*ATT\\(g,t\\) cell\\(s\\) could not")
        default = _cs(panel, small_sample="cr2", n_boot=199)
    explicit = _cs(panel, n_boot=199).with_inference("jackknife")
    pd.testing.assert_frame_equal(_pieces(default), _pieces(explicit))
    # and the fixture's (no draws): the same SEs but the share's (delta method there)
    lin = _pieces(jk).index != "displacement_share"
    np.testing.assert_allclose(_pieces(jk)["se"][lin], _pieces(default)["se"][lin], rtol=1e-12)
    assert default.info["inference"].startswith("delete-one-cluster jackknife")
    assert default.info["small_sample"] == "cv3" and default.info["jackknife_clusters"] == 10
    # the fit's own draws (replayed), so the share's bootstrap SE is the explicit one's
    without = ["net_region_did"]
    pd.testing.assert_frame_equal(default.draws.drop(columns=without),
                                  explicit.draws.drop(columns=without))  # fmt: skip
    # re-inference on the same clusters is the fit's (as a refit with cluster= would be)
    pd.testing.assert_frame_equal(default.with_inference("cluster").terms, default.terms)


def test_the_default_keeps_the_analytic_ses_above_the_cluster_cap(fitted, monkeypatch):
    # more clusters than CS_JACKKNIFE_MAX_CLUSTERS (here lowered to 5 for a 10-region
    # world): the analytic SEs, with the warning, as small_sample="none" gives them
    panel, res, _ = fitted
    monkeypatch.setattr(spillover, "CS_JACKKNIFE_MAX_CLUSTERS", 5)
    with pytest.warns(UserWarning, match="more than 5 clusters") as caught:
        capped = _cs(panel, small_sample="cr2")
    assert [w.filename for w in caught if "more than 5" in str(w.message)] == [__file__]
    np.testing.assert_allclose(_pieces(capped)["se"], _pieces(res)["se"], rtol=1e-12)
    assert capped.info["small_sample"] == "none"
    assert capped.info["inference"].startswith("joint cluster scores")


def test_re_inference_that_lands_on_the_analytic_ses_says_so(fitted):
    # Conley SEs on a fit whose default was the jackknife: CS's analytic scores, with the
    # warning a refit with conley_km= gives, at the caller's line
    default = _cs(fitted[0], small_sample="cr2")
    with pytest.warns(UserWarning, match="reports the analytic influence-function") as caught:
        conley = default.with_inference("conley", conley_km=300.0)
    assert [w.filename for w in caught if "analytic influence" in str(w.message)] == [__file__]
    assert conley.info["small_sample"] == "none"
    assert conley.info["inference"].startswith("joint cluster scores")


def test_a_default_jackknife_that_cannot_be_computed_falls_back_and_says_so():
    # the cluster of every clean unit deleted leaves the direct piece without comparisons
    # (the test above this one's world): the default reports the analytic SEs, not NaN,
    # and says why, naming the pieces and a unit of the cluster
    panel = _world(6)
    default = _cs(panel, small_sample="cr2")
    res = _cs(panel)
    lab = _clean_in_one_cluster(panel, res)
    with pytest.warns(UserWarning, match="jackknife of the CS pieces cannot be computed") as w:
        back = default.with_inference("cluster", cluster=lab)
    assert [x.filename for x in w if "cannot be computed" in str(x.message)] == [__file__]
    analytic = res.with_inference("cluster", cluster=lab)
    np.testing.assert_allclose(_pieces(back)["se"], _pieces(analytic)["se"], rtol=1e-12)
    assert np.isfinite(_pieces(back).loc[["direct", "spillover", "net"], "se"]).all()
    assert {"direct", "spillover:adjacent"} <= set(back.info["jackknife_undefined"])
    assert back.info["small_sample"] == "none"


def test_a_one_cluster_piece_keeps_its_analytic_scores_and_net_its_se(fitted):
    # every target unit of spillover_on_zones in one cluster: the piece has no SE under
    # either inference (one-cluster rule), and net, which adds it to pieces that span
    # clusters, keeps an SE without its part, as the analytic inference does; its
    # deletion would otherwise leave the piece undefined and blank net
    panel, res, _ = fitted
    codes = pd.Series(np.arange(len(panel.units)) % 10, index=list(panel.units))
    lab = codes.copy()
    lab[list(res.fitted.fits["spillover_on_zones"].target_units)] = 99
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        an = res.with_inference("cluster", cluster=lab)
        jk = res.with_inference("jackknife", cluster=lab)
    a, b = an.terms.set_index("term")["se"], jk.terms.set_index("term")["se"]
    assert np.isnan(a["spillover_on_zones"]) and np.isnan(b["spillover_on_zones"])
    assert np.isfinite(a["net"]) and np.isfinite(b["net"]) and b["net"] != a["net"]
    assert jk.info["jackknife_undefined"] == {}


def test_jackknife_refusals(fitted):
    panel, _, _ = fitted
    imp = spillover.fit(panel, outcome="fdi", rng=1, n_boot=0, covariates=["x"])
    with pytest.raises(SpecError, match="base is the imputation estimator"):
        imp.with_inference("jackknife")
    _, res, _ = fitted
    with pytest.raises(SpecError, match="applies to method='conley'"):
        res.with_inference("jackknife", conley_km=200.0)
    with pytest.raises(SpecError, match="n_jobs must be a whole number other than 0"):
        res.with_inference("jackknife", n_jobs=0)


def test_jackknife_does_not_depend_on_n_jobs(fitted, monkeypatch):
    _, res, _ = fitted
    # the refits (a deletion the batch cannot stand for) in worker processes, returned in
    # cluster order: identical numbers
    monkeypatch.setattr(callaway_santanna, "_JACKKNIFE_BATCHED", False)
    one = res.with_inference("jackknife", n_jobs=1)
    two = res.with_inference("jackknife", n_jobs=2)
    pd.testing.assert_frame_equal(two.terms, one.terms)


# the unbalanced panel leaves exposed unit-periods without an outcome (said at the fit)
@pytest.mark.filterwarnings("ignore:.*exposed unit-period\\(s\\) have no outcome")
def test_pieces_batched_across_deletions_equal_their_refits(monkeypatch) -> None:
    # every piece's cells estimated for all ten deletions at once (cs.cells_without) give
    # the scores of CS refitted once per deletion: SEs of every term at 1e-10 (two
    # summation orders of the same sums), on an unbalanced, weighted panel with
    # not-yet-treated controls
    panel = _weighted(_unbalanced(_world()))
    res = _cs(panel, weights="pop", base_options={"control_group": "notyettreated"})
    out = []
    for batched in (True, False):
        monkeypatch.setattr(callaway_santanna, "_JACKKNIFE_BATCHED", batched)
        callaway_santanna._clear_logit_memo()
        out.append(res.with_inference("jackknife").terms.set_index("term")["se"])
    assert out[0].notna().sum() >= 6
    np.testing.assert_allclose(out[0].to_numpy(), out[1].to_numpy(), rtol=1e-10, equal_nan=True)


@pytest.mark.parametrize("factor", [1e160, 1e-160])
def test_the_default_jackknife_is_scale_equivariant_at_the_float_limits(fitted, factor):
    # the fit rescales such outcomes by a power of two before estimating (exact) and the
    # default jackknife runs inside that rescaling: every SE scales with the outcome; 1e-10
    # relative (measured 1e-14: the outcome's own product with the factor rounds)
    panel = fitted[0]
    y = panel.data["fdi"].to_numpy()
    ref = _pieces(_cs(panel, small_sample="cr2"))
    got = _pieces(_cs(panel.with_outcome("fdi_c", y * factor), "fdi_c", small_sample="cr2"))
    lin = ref.index != "displacement_share"
    np.testing.assert_allclose(got["se"][lin] / factor, ref["se"][lin], rtol=1e-10)
    assert got.at["displacement_share", "se"] == pytest.approx(
        ref.at["displacement_share", "se"], rel=1e-10
    )
