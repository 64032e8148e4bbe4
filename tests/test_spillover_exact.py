"""The spillover terms' exact t reference (``_spillover_exact``): the law of a CR2 t ratio
under the Bell-McCaffrey working model, with the ``tau~`` model chosen in every draw."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from test_spillover_weights import make_panel, weighted_sim  # noqa: E402

from zoneimpact.estimators import _bjs, spillover
from zoneimpact.estimators import _spillover_exact as ex
from zoneimpact.simulate import simulate


def _imhof_critical_value(a: np.ndarray, C: np.ndarray, alpha: float) -> float:
    """``c`` with ``P(|a'u| > c ||C'u||) = alpha``, ``u ~ N(0, I)``: ``P(u'(aa' - c^2 CC')u
    > 0)`` by Imhof's (1961) integral over the eigenvalues of ``R S R`` (``R`` the root of
    the Gram of ``[a, C]``), as ``benchmarks/mc_spillover_exact_t.py`` computes it."""
    X = np.column_stack([a, C])
    w, V = np.linalg.eigh(X.T @ X)
    R = V @ np.diag(np.sqrt(np.clip(w, 0, None))) @ V.T

    def excess(c: float) -> float:
        S = np.diag(np.r_[1.0, -np.full(C.shape[1], c * c)])
        lam = np.linalg.eigvalsh(R @ S @ R)
        lam = lam[np.abs(lam) > 1e-12 * np.abs(lam).max()]

        def f(t: float) -> float:
            theta = 0.5 * np.sum(np.arctan(lam * t))
            return np.sin(theta) / (t * np.prod((1 + (lam * t) ** 2) ** 0.25))

        return 0.5 + integrate.quad(f, 0, np.inf, limit=500)[0] / np.pi - alpha

    return optimize.brentq(excess, 0.5, 50.0)


def _toy(rng: np.random.Generator, n: int = 120, G: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """An estimate's weights ``a`` and cluster-robust vectors ``C``: cluster g's column is
    ``a`` on its own rows less its share of the whole (a cluster-robust residual), scaled
    by a cluster factor, so the variance moves with the estimate (critical values near 2.35
    for 8 clusters)."""
    cl = rng.integers(0, G, n)
    a = rng.normal(size=n) / n
    own = np.zeros((n, G))
    own[np.arange(n), cl] = a
    share = (own**2).sum(0) / (a**2).sum()
    C = (own - a[:, None] * share[None, :]) * rng.uniform(0.9, 1.3, (1, G))
    return a, C


def test_df_matching_inverts_the_t_quantile():
    for c in (2.0, 2.3, 3.1, 12.7, 60.0):
        nu = ex.df_matching(c, 0.05)
        assert np.isclose(stats.t.ppf(0.975, nu), c, rtol=1e-8)
    # a lighter tail than the normal's: infinite df (the normal reference)
    assert ex.df_matching(1.9, 0.05) == np.inf
    assert ex.df_matching(stats.norm.ppf(0.95), 0.10) == np.inf
    assert np.isclose(stats.t.ppf(0.995, ex.df_matching(3.5, 0.01)), 3.5, rtol=1e-8)


def test_one_model_matches_imhof():
    rng = np.random.default_rng(5)
    a, C = _toy(rng)
    c_imhof = _imhof_critical_value(a, C, 0.05)
    v = {"p": ex.PieceVectors(a, (C,))}
    df = ex.reference_dfs(v, [{"p": 1.0}], 0.05, n_draws=100_000)[0]
    assert df is not None
    c = stats.t.ppf(0.975, df)
    # 100,000 draws: the quantile's Monte Carlo SE is about 0.3% of c here (binomial SE
    # of the 5% tail, 0.0007, over the density of |t| there), so 1.5% is five SEs
    assert c == pytest.approx(c_imhof, rel=0.015)
    # and it is not the Satterthwaite reference (which treats the variance as independent
    # of the estimate): the two differ by twice that tolerance here (4.2%)
    c_bm = stats.t.ppf(0.975, _bjs.satterthwaite_df(C))
    assert abs(c_bm - c_imhof) > 0.03 * c_imhof


def test_model_choice_in_every_draw_matches_direct_simulation():
    # two pieces, two models each; the term sums them. Simulated here on the rows
    # themselves (u ~ N(0, I), another generator), choosing each piece's model per draw
    rng = np.random.default_rng(8)
    a1, C1 = _toy(rng)
    a2, C2 = _toy(rng)
    D1, D2 = C1 * rng.uniform(0.5, 1.5, C1.shape), C2 * rng.uniform(0.5, 1.5, C2.shape)
    vec = {"p1": ex.PieceVectors(a1, (C1, D1), 1), "p2": ex.PieceVectors(a2, (C2, D2))}
    terms = [{"p1": 1.0}, {"p1": 0.4, "p2": 0.6}]
    dfs = ex.reference_dfs(vec, terms, 0.05, n_draws=100_000)
    u = np.random.default_rng(99).standard_normal((100_000, len(a1)))

    def chosen(C: np.ndarray, D: np.ndarray) -> np.ndarray:
        s, d = u @ C, u @ D
        keep = (s**2).sum(1) <= (d**2).sum(1)
        return np.where(keep[:, None], s, d)

    s1, s2 = chosen(C1, D1), chosen(C2, D2)
    t1 = np.abs(u @ a1) / np.sqrt((s1**2).sum(1))
    t12 = np.abs(0.4 * u @ a1 + 0.6 * u @ a2) / np.sqrt(((0.4 * s1 + 0.6 * s2) ** 2).sum(1))
    for df, t in zip(dfs, (t1, t12), strict=True):
        assert df is not None
        # two independent 100,000-draw quantiles: each within about 0.3%, so 1.5%
        assert stats.t.ppf(0.975, df) == pytest.approx(np.quantile(t, 0.95), rel=0.015)
    # the choice matters: one model's law alone gives a critical value smaller by more
    # than the 1.5% above (about 4.5% here)
    one = ex.reference_dfs({"p1": ex.PieceVectors(a1, (C1,))}, [{"p1": 1.0}], 0.05)[0]
    assert one is not None
    assert stats.t.ppf(0.975, dfs[0]) > 1.03 * stats.t.ppf(0.975, one)


def test_reference_does_not_depend_on_cluster_order_rows_or_scale():
    rng = np.random.default_rng(3)
    a, C = _toy(rng)
    D = C * rng.uniform(0.5, 1.5, C.shape)
    b, E = _toy(rng)
    base = {"p": ex.PieceVectors(a, (C, D)), "q": ex.PieceVectors(b, (E,))}
    terms = [{"p": 1.0}, {"q": 1.0}, {"p": 2.0, "q": -1.0}]
    ref = ex.reference_dfs(base, terms, 0.05)
    g = rng.permutation(C.shape[1])
    r = rng.permutation(len(a))
    moved = {
        "p": ex.PieceVectors(1e7 * a[r], (1e7 * C[r][:, g], 1e7 * D[r][:, g])),
        "q": ex.PieceVectors(1e7 * b[r], (1e7 * E[r][:, g],)),
    }
    got = ex.reference_dfs(moved, terms, 0.05)
    # the same draws in the Gram's eigenbasis: equal to rounding (a quantile of 10,000
    # ratios recomputed from a permuted, rescaled Gram)
    np.testing.assert_allclose(np.array(got, float), np.array(ref, float), rtol=1e-7)


def test_terms_without_vectors_or_variance_keep_none():
    rng = np.random.default_rng(1)
    a, C = _toy(rng)
    vec = {"p": ex.PieceVectors(a, (C,)), "q": None}
    out = ex.reference_dfs(vec, [{"p": 1.0}, {"q": 1.0}, {"p": 1.0, "q": 1.0}, None], 0.05)
    assert out[0] is not None and out[1:] == [None, None, None]
    zero = {"p": ex.PieceVectors(np.zeros_like(a), (C,))}
    assert ex.reference_dfs(zero, [{"p": 1.0}], 0.05) == [None]


@pytest.fixture(scope="module")
def fitted():
    waves = {2006: 0.4, 2010: 0.3, 2013: 0.3}
    sim = simulate(rng=12, n_units=150, n_regions=10, first_year=2002, last_year=2016, waves=waves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=0)
    return sim, res


def _vectors(res, name):
    f = res.fitted.fits[name]
    region = res.fitted.panel.geography["region"].reindex(res.fitted.units).to_numpy()
    cluster = np.unique(region[f.rescore.unit_row], return_inverse=True)[1]
    out = spillover._imputation_score(f.rescore, cluster, int(cluster.max()) + 1, True, name)
    return out[2], f


def test_fit_vectors_reproduce_its_estimates_and_ses(fitted):
    _, res = fitted
    tab = res.terms.set_index("term")
    pieces = [k for k in res.fitted.fits if k.startswith("spillover") or k == "direct"]
    for name in pieces:
        v, f = _vectors(res, name)
        y = f.rescore.long.y
        # a'y is the piece's mean and ||C'y|| its CR2 SE: the same numbers two ways
        assert v.a @ y == pytest.approx(f.estimate, rel=1e-9, abs=1e-9)
        if name in tab.index:
            se = np.sqrt(np.sum((v.C.T @ y) ** 2))
            assert se == pytest.approx(tab.at[name, "se"], rel=1e-9)
    # the fit's df are the reference's, not the Satterthwaite df of the piece
    v, f = _vectors(res, "direct")
    df = ex.reference_dfs({"direct": v}, [{"direct": 1.0}], 0.05)[0]
    assert tab.at["direct", "df"] == pytest.approx(df, rel=1e-9)
    assert abs(tab.at["direct", "df"] - f.df) > 1.0
    assert "direct" in res.info["t_reference"]


def test_fit_vectors_on_the_weighted_scale():
    sim, frame, _ = weighted_sim()
    wp = make_panel(frame, sim.geography, sim.adjacency)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(wp, outcome="fdi", weights="pop", covariates=["x"], rng=1, n_boot=0)
    tab = res.terms.set_index("term")
    for name in ("direct", "spillover:adjacent"):
        v, f = _vectors(res, name)
        y = f.rescore.long.y
        # the working model's scale divides the targets by sqrt(weight) and the clean rows
        # are fitted on it: back on the outcome's, a'y is the weighted mean
        assert (v.a * np.sqrt(f.rescore.row_weight)) @ y == pytest.approx(f.estimate, rel=1e-9)
        se = np.sqrt(np.sum((v.C.T @ (np.sqrt(f.rescore.row_weight) * y)) ** 2))
        assert se == pytest.approx(tab.at[name, "se"], rel=1e-9)


def test_groups_share_one_generation_of_normals():
    # drawn column after column: a group's first c columns are the same whatever the
    # largest group's width, so a term's draws depend on its own pieces only
    a = ex._normals(50, 7)
    b = ex._normals(50, 3)
    np.testing.assert_array_equal(a[:, :3], b)


def test_a_normal_exact_reference_is_kept_for_the_share_and_verdicts():
    # a reviewer (session 49): where the exact critical value is below the normal's the
    # df are infinite, and _joint read inf as "no df" and gave the share the direct
    # total's df (504 here), while verdict_df turned inf into t(G - 1): both wider than
    # the lighter-tailed law. Now the share keeps inf and verdicts read it as the normal
    from zoneimpact.results import verdict_df

    waves = {2005: 0.5, 2008: 0.5}
    sim = simulate(rng=3, n_units=80, n_regions=20, first_year=2002, last_year=2012, waves=waves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel, outcome="fdi", cluster="unit", n_boot=0)
    t = res.terms.set_index("term")
    named = res.info["t_reference_terms"].split(", ")
    assert "displacement_share" in named and "net" in named
    assert t.at["net", "df"] == np.inf and t.at["displacement_share", "df"] == np.inf
    assert verdict_df(res, "displacement_share") == np.inf
    assert np.isfinite(t.at["direct", "df"]) and verdict_df(res, "direct") == t.at["direct", "df"]
    # another inference (Conley's Satterthwaite df) drops the notes rather than keep them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = res.with_inference("conley", conley_km=300.0)
    assert "t_reference" not in c.info and "t_reference_terms" not in c.info
