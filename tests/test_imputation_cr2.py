"""``imputation.fit(small_sample="cr2")``: CR2 residuals and Bell-McCaffrey df.

Checked three ways: against a dense implementation written here from the formulas
(Bell & McCaffrey 2002; BJS 2024 Theorem 3 and eq. 8) rather than from the package's
sparse low-rank route; under invariances (unit order and labels, a constant, scaling);
and by Monte Carlo with few unequal clusters, where the plain variance with a normal
reference over-rejects a true null and CR2 with its df does not.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators import _bjs, imputation
from zoneimpact.panel import Panel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from mc_imputation_cr2_tau import VARIANTS, null_panels  # noqa: E402


def _frame(seed: int, n_units: int = 24, n_periods: int = 7, n_clusters: int = 5) -> pd.DataFrame:
    """A small staggered panel: cohorts 3, 5 and never, unequal clusters, a covariate
    and heteroskedastic noise, so every part of the variance is exercised."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([3, 5, 0], size=n_units, p=[0.35, 0.3, 0.35])
    # unequal cluster sizes: the leverage CR2 corrects differs across clusters
    cluster = np.sort(
        rng.choice(n_clusters, size=n_units, p=np.linspace(1, 3, n_clusters) / (2 * n_clusters))
    )
    rows = []
    for i in range(n_units):
        a = rng.normal(0, 2)
        shock = rng.normal(0, 1, n_periods)
        for t in range(1, n_periods + 1):
            x = rng.normal(0.3 * t, 1)
            eff = (1.0 + 0.4 * (t - cohort[i])) if cohort[i] and t >= cohort[i] else 0.0
            y = a + 0.5 * t + 0.8 * x + eff + shock[t - 1] * (1 + i % 3)
            rows.append((f"u{i}", t, cohort[i], y, x, int(cluster[i]), 1.0 + (i % 4) / 2))
    return pd.DataFrame(rows, columns=["unit", "t", "g", "y", "x", "cl", "w"])


def _panel(df: pd.DataFrame) -> Panel:
    covs = [c for c in ("x", "w", "cl", "cl2") if c in df.columns]
    return Panel.from_frame(df, unit="unit", time="t", outcomes=["y"], cohort="g", covariates=covs)


def _fit(df: pd.DataFrame, **kw: object) -> imputation.ImputationResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few treated clusters: the point of the design
        return imputation.fit(_panel(df), outcome="y", cluster="cl", covariates=["x"], **kw)


def _dense_scores(
    df: pd.DataFrame, Y: np.ndarray, w_name: str | None, cr2: bool, leave_out: bool = False
) -> tuple:
    """Cluster scores (clusters x columns of ``Y``) of ``att`` and ``event:0``, written
    from the formulas with dense matrices: WLS step 1 on untreated rows, implied weights
    ``v0 = -W Z0 (Z0'WZ0)^{-1} Z1'w`` (BJS Section 4.1), eq. 8's ``tau~`` within cohort x
    event cells (with ``leave_out``, Supplementary Appendix A.9: without the target's own
    cluster, unless the others hold under 1e-8 of the cell's squared weight), and with
    ``cr2`` each cluster's weighted residuals times the pseudo-inverse root of
    ``I - H_gg`` and, without ``leave_out``, each (cell, cluster) residual ``b_g - a_g
    tau~`` of eq. 8's fit of ``b`` on ``a`` divided by ``sqrt(1 - a_g^2 / sum a^2)``, its
    CR2 (zero at leverage one). Linear in ``Y`` (one column per outcome)."""
    units = sorted(df["unit"].unique(), key=lambda u: int(u[1:]))
    periods = sorted(df["t"].unique())
    treated = (df["g"] > 0) & (df["t"] >= df["g"])
    Z = np.column_stack(
        [(df["unit"] == u).to_numpy(float) for u in units]
        + [(df["t"] == t).to_numpy(float) for t in periods[1:]]
        + [df["x"].to_numpy(float)]
    )
    obs_w = df[w_name].to_numpy(float) if w_name else np.ones(len(df))
    i0, i1 = np.flatnonzero(~treated), np.flatnonzero(treated)
    Z0, Z1, w0 = Z[i0], Z[i1], obs_w[i0]
    A = Z0.T @ (w0[:, None] * Z0)
    theta = np.linalg.solve(A, Z0.T @ (w0[:, None] * Y[i0]))
    resid = Y[i0] - Z0 @ theta
    tau = Y[i1] - Z1 @ theta
    ev = (df["t"] - df["g"]).to_numpy()[i1]
    coh = df["g"].to_numpy()[i1]
    cl = pd.factorize(df["cl"])[0]
    G = cl.max() + 1
    w1 = obs_w[i1]
    estimands = {"att": w1 / w1.sum(), "event:0": np.where(ev == 0, w1, 0) / w1[ev == 0].sum()}
    sw = np.sqrt(w0)
    Zs = sw[:, None] * Z0
    H = Zs @ np.linalg.solve(A, Zs.T)
    adj = sw[:, None] * resid
    if cr2:
        for g in range(G):
            r = np.flatnonzero(cl[i0] == g)
            lam, P = np.linalg.eigh(np.eye(len(r)) - H[np.ix_(r, r)])
            inv_root = np.where(lam > 1e-8, 1 / np.sqrt(np.clip(lam, 1e-8, None)), 0.0)
            adj[r] = (P * inv_root) @ P.T @ adj[r]
    out = {}
    for name, w in estimands.items():
        v0 = -w0 * (Z0 @ np.linalg.solve(A, Z1.T @ w))
        tilde = np.zeros_like(tau)
        for key in set(zip(coh, ev, strict=True)):
            in_cell = (coh == key[0]) & (ev == key[1])
            a = np.array([w[in_cell & (cl[i1] == g)].sum() for g in range(G)])
            b = np.array(
                [(w[:, None] * tau)[in_cell & (cl[i1] == g)].sum(axis=0) for g in range(G)]
            )
            total = (a**2).sum()
            for g in range(G):
                rest = total - a[g] ** 2
                rows = in_cell & (cl[i1] == g)
                if leave_out and rest > 1e-8 * total:
                    tilde[rows] = (a @ b - a[g] * b[g]) / rest
                elif cr2 and rest > 1e-8 * total and a[g] != 0:
                    # the pair's residual scaled, then written back as the tau~ that gives it
                    e = (b[g] - a[g] * (a @ b) / total) / np.sqrt(rest / total)
                    tilde[rows] = (b[g] - e) / a[g]
                elif total > 0:
                    tilde[rows] = (a @ b) / total
        S = np.zeros((G, Y.shape[1]))
        for g in range(G):
            m0, m1 = cl[i0] == g, cl[i1] == g
            S[g] = (v0[m0] / sw[m0]) @ adj[m0] + w[m1] @ (tau[m1] - tilde[m1])
        out[name] = S
    return out, obs_w


@pytest.mark.parametrize("leave_out", [False, True])
@pytest.mark.parametrize("w_name", [None, "w"])
def test_cr2_matches_a_dense_implementation(w_name: str | None, leave_out: bool) -> None:
    df = _frame(3)
    Y = df[["y"]].to_numpy(float)
    plain, _ = _dense_scores(df, Y, w_name, cr2=False, leave_out=leave_out)
    adjusted, obs_w = _dense_scores(df, Y, w_name, cr2=True, leave_out=leave_out)
    # the scores are linear in y: the exact map c_g of each cluster from the identity;
    # Bell-McCaffrey's working errors have variance 1/w, so c_g / sqrt(w) enters the df
    C, _ = _dense_scores(df, np.eye(len(df)), w_name, cr2=True, leave_out=leave_out)
    none = _fit(df, weights=w_name, leave_out=leave_out).terms.set_index("term")
    cr2 = _fit(df, weights=w_name, small_sample="cr2", leave_out=leave_out)
    cr2 = cr2.terms.set_index("term")
    for name in ("att", "event:0"):
        # dense and sparse solves of the same equations agree to rounding (1e-9 relative)
        assert none.at[name, "se"] == pytest.approx(np.sqrt((plain[name] ** 2).sum()), rel=1e-9)
        assert cr2.at[name, "se"] == pytest.approx(np.sqrt((adjusted[name] ** 2).sum()), rel=1e-9)
        assert cr2.at[name, "estimate"] == none.at[name, "estimate"]
        Cg = C[name] / np.sqrt(obs_w)[None, :]
        M = Cg @ Cg.T
        df_bm = np.trace(M) ** 2 / (M**2).sum()
        assert cr2.at[name, "df"] == pytest.approx(df_bm, rel=1e-8)
    # CR2 moved the SEs (a test of equality with the plain variance would pass otherwise)
    assert abs(cr2.at["att", "se"] / none.at["att", "se"] - 1) > 1e-3
    assert "df" not in none.columns


def test_cr2_df_holds_with_ill_conditioned_covariates() -> None:
    # a breaker's case: x = unit constant + 1e-4 x noise spans the same space as the noise
    # with the unit effects (Z0'Z0's condition about 4e9). The Gram-only route is 8e-3 off
    # here (2.4934 for 2.4725; 2.7e-2 in the breaker's draw); the vectors 2e-5, about the
    # dense reference's own rounding at this condition
    df = _frame(3)
    rng = np.random.default_rng(0)
    codes = pd.factorize(df["unit"])[0]
    df["x"] = rng.normal(0, 5, codes.max() + 1)[codes] + 1e-4 * rng.normal(size=len(df))
    C, obs_w = _dense_scores(df, np.eye(len(df)), None, cr2=True)
    t = _fit(df, small_sample="cr2").terms.set_index("term")
    M = C["att"] @ C["att"].T
    assert t.at["att", "df"] == pytest.approx(np.trace(M) ** 2 / (M**2).sum(), rel=1e-4)


def test_cr2_df_is_free_of_the_weights_scale() -> None:
    # the Gram's entries scale like 1 / weight: squaring them raw overflowed at 1e-160
    # and underflowed at 1e160 (a breaker: OverflowError, ZeroDivisionError)
    df = _frame(4)
    base = _fit(df, weights="w", small_sample="cr2").terms.set_index("term")
    for f in (1e-160, 1e160):
        t = _fit(df.assign(w=df["w"] * f), weights="w", small_sample="cr2").terms
        np.testing.assert_allclose(t.set_index("term")["df"], base["df"], rtol=1e-10)


def test_cr2_labels_and_messages() -> None:
    from zoneimpact.labels import se_type_label

    df = _frame(2)
    # the default names no small-sample rule; CR2 is named
    assert se_type_label(_fit(df)) == "Clustered by cl"
    assert se_type_label(_fit(df, small_sample="cr2")) == "Clustered by cl (CR2)"
    res = _fit(df, small_sample="cr2")
    # info says which tau~ rule the CR2 variance took
    assert res.info["variance"].endswith("df (tau~'s by their cluster's leverage)")
    lo = _fit(df, small_sample="cr2", leave_out=True).info["variance"]
    assert "leave-out (App. A.9)" in lo and lo.endswith("Bell-McCaffrey df")
    by_unit = pd.Series(np.arange(24) % 3, index=[f"u{i}" for i in range(24)], name="g3")
    with pytest.raises(ZoneImpactError, match=r"\(Series, t\)\. .*refit with") as err:
        res.with_inference(cluster=[by_unit, "t"])
    assert len(str(err.value)) < 250  # names the ways, not the Series' values


def test_cr2_invariances() -> None:
    df = _frame(5)
    base = _fit(df, small_sample="cr2", leave_out=True).terms.set_index("term")
    # units renamed and rows shuffled: the same numbers (up to summation order, 1e-10)
    names = {u: f"z{99 - int(u[1:])}" for u in df["unit"].unique()}
    moved = df.assign(unit=df["unit"].map(names)).sample(frac=1.0, random_state=1)
    other = _fit(moved, small_sample="cr2", leave_out=True).terms.set_index("term")
    pd.testing.assert_frame_equal(base, other.loc[base.index], rtol=1e-10)
    # a constant leaves SEs and df; scaling scales the SE and leaves df
    shifted = _fit(df.assign(y=df["y"] + 1e4), small_sample="cr2", leave_out=True).terms
    scaled = _fit(df.assign(y=df["y"] * 1e3), small_sample="cr2", leave_out=True).terms
    shifted, scaled = shifted.set_index("term"), scaled.set_index("term")
    np.testing.assert_allclose(shifted["se"], base["se"], rtol=1e-7)  # 1e4 shift: 1e-7
    np.testing.assert_allclose(shifted["df"], base["df"], rtol=1e-10)
    np.testing.assert_allclose(scaled["se"], 1e3 * base["se"], rtol=1e-10)
    np.testing.assert_allclose(scaled["df"], base["df"], rtol=1e-10)


def test_cr2_through_aggregate_and_with_inference() -> None:
    df = _frame(7)
    df["cl2"] = df["cl"].replace(4, 3)
    res = _fit(df, small_sample="cr2", pretrends=1)
    t = res.terms.set_index("term")
    assert res.info["small_sample"] == "cr2"
    # the Test 1 lead keeps its F reference (no df of its own)
    assert np.isnan(t.at["event:-1", "df"]) and np.isfinite(t.at["att", "df"])
    # aggregate forms the same event-time estimands again: same SEs and df
    agg = res.aggregate("dynamic").terms.set_index("term")
    for e in ("event:0", "event:1"):
        assert agg.at[e, "se"] == pytest.approx(t.at[e, "se"], rel=1e-10)
        assert agg.at[e, "df"] == pytest.approx(t.at[e, "df"], rel=1e-10)
    # another clustering: the same as a fresh fit clustered that way
    re = res.with_inference(cluster="cl2").terms.set_index("term")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = imputation.fit(
            _panel(df),
            outcome="y",
            cluster="cl2",
            covariates=["x"],
            small_sample="cr2",
            pretrends=1,
        ).terms.set_index("term")
    for col in ("se", "df"):
        assert re.at["att", col] == pytest.approx(fresh.at["att", col], rel=1e-10)
    assert re.at["att", "df"] != pytest.approx(t.at["att", "df"], rel=1e-3)
    with pytest.raises(ZoneImpactError, match="one-way"):
        res.with_inference(cluster=["cl", "t"])


def test_cr2_bad_option_names_the_choices() -> None:
    with pytest.raises(ZoneImpactError, match="small_sample.*cr2"):
        _fit(_frame(1), small_sample="CR2")


def test_cr2_refuses_designs_too_large_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # the dense inverse has units + periods - 1 + covariates = 24 + 6 + 1 = 31 parameters
    monkeypatch.setattr(_bjs, "CR2_MAX_PARAMS", 30)
    with pytest.raises(ZoneImpactError, match="31 step-1 parameters.*small_sample='none'"):
        _fit(_frame(1), small_sample="cr2")
    assert np.isfinite(_fit(_frame(1)).terms["se"]).all()  # the plain variance still fits


def _null_rejections(reps: int, seed: int) -> tuple[float, float, float]:
    """Share of null worlds (no effect) whose 95% interval for ``att`` excludes zero: BJS's
    leave-out variance, plain with the normal reference and with CR2's step-1 residuals
    and df; and CR2 of both steps (no leave-out: ``tau~``'s residuals corrected for their
    leverage). The worlds of ``benchmarks/mc_imputation_cr2_tau.py``: twelve clusters of 2
    to 16 units, zones in six of them, cluster shocks by period."""
    hits = np.zeros(3)
    for panel in null_panels(reps, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the first three variants: leave-out plain, leave-out CR2, CR2 alone
            for k, (ss, lo) in enumerate(VARIANTS[:3]):
                r = imputation.fit(
                    panel, outcome="y", cluster="cl", small_sample=ss, horizons=[], leave_out=lo
                )
                low, high = r.conf_int(0.05).loc["att"]
                hits[k] += not low <= 0 <= high
    return hits[0] / reps, hits[1] / reps, hits[2] / reps


def test_cr2_holds_size_where_the_plain_variance_over_rejects() -> None:
    # 400 null worlds, MC SE of a 5% rate 1.1 points. This seed gives 8.25% plain, 2.25%
    # CR2 with the leave-out (its df near 4 are conservative) and 5.25% CR2 of both steps
    # (SE/SD 0.96, df near 6); 1,000 worlds at seed 777 gave 9.1%, 2.6% and 5.3%. The
    # in-sample tau~ without its leverage correction rejected 12-16% (benchmarks/
    # RESULTS.md, session 38)
    plain, cr2_leave_out, cr2 = _null_rejections(400, seed=20261204)
    assert plain > 0.072  # above 5% by 2 MC SEs: the too-short plain SE fails here
    assert 0.005 <= cr2_leave_out <= 0.065  # at most 5% plus 1.5 MC SEs; not an SE blown up
    # within 2 MC SEs of 5%: the leave-out's 2.25% and the uncorrected 12% both fail it
    assert 0.028 <= cr2 <= 0.072


def test_tau_tilde_residuals_in_sample_cr2_and_leave_out() -> None:
    # eq. 8 is least squares of the pairs' b_c on a_c within a cell (leverage h = a_c^2 /
    # sum a^2): the leave-out residual is the in-sample one over (1 - h) (the jackknife
    # identity), CR2's over sqrt(1 - h); a cell inside one cluster keeps the in-sample
    # residual (zero) in every mode, flagged only under the leave-out. Exact algebra on
    # random weights, intensities and cells (1e-12 of the largest residual)
    rng = np.random.default_rng(7)
    n = 400
    cells = rng.integers(0, 6, n)
    cluster = rng.integers(0, 9, n)
    cluster[cells == 5] = 3  # one cell inside one cluster
    w, tau, scale = rng.uniform(0.2, 2, n), rng.normal(0, 3, n), rng.uniform(0.5, 2, n)
    pair = _bjs.cell_cluster_codes(cells, cluster, 9)
    npair = int(pair.max()) + 1

    def residuals(tilde: np.ndarray) -> np.ndarray:
        return np.bincount(pair, weights=w * (tau - tilde), minlength=npair)

    got = {}
    for name, kw in {
        "in": dict(leave_out=False),
        "cr2": dict(leave_out=False, cr2=True),
        "lo": dict(leave_out=True),
    }.items():
        tilde, fallback = _bjs.tau_tilde(w, tau, cells, pair, scale=scale, **kw)
        got[name] = residuals(tilde)
        assert fallback.any() == (name == "lo") and not fallback[cells != 5].any()
    a = np.bincount(pair, weights=w * scale, minlength=npair)
    cell_of_pair = np.zeros(npair, int)
    cell_of_pair[pair] = cells
    h = a**2 / np.bincount(cell_of_pair, weights=a**2)[cell_of_pair]
    lone = np.isin(cell_of_pair, [5])
    tol = 1e-12 * np.abs(got["lo"]).max()
    np.testing.assert_allclose(got["lo"][~lone], got["in"][~lone] / (1 - h[~lone]), atol=tol)
    np.testing.assert_allclose(
        got["cr2"][~lone], got["in"][~lone] / np.sqrt(1 - h[~lone]), atol=tol
    )
    np.testing.assert_allclose(got["lo"][lone], got["in"][lone], atol=tol)
    np.testing.assert_allclose(got["cr2"][lone], got["in"][lone], atol=tol)
    assert np.abs(got["in"][lone]).max() < tol
