"""Tests of the fixed-effect absorption helpers (zoneimpact.estimators._fe)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from zoneimpact.errors import EstimationError
from zoneimpact.estimators._fe import (
    TwoWayWithin,
    cluster_scores,
    cluster_ssc_k,
    demean,
    factorize,
    fe_dof,
)


def _unbalanced_panel(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(i, t) for i in range(40) for t in range(12) if rng.uniform() > 0.3]
    df = pd.DataFrame(rows, columns=["unit", "time"])
    n = len(df)
    df["x1"] = rng.normal(size=n) + 0.1 * df["time"]
    df["x2"] = rng.normal(size=n) * (1 + df["unit"] % 3)
    df["w"] = rng.uniform(0.2, 3.0, n)
    return df


def _dummies(df: pd.DataFrame) -> np.ndarray:
    """Full unit dummies plus time dummies without the first level (full rank)."""
    units = pd.get_dummies(df["unit"].astype(str)).to_numpy(float)
    times = pd.get_dummies(df["time"].astype(str), drop_first=True).to_numpy(float)
    return np.column_stack([units, times])


def _dummy_residuals(df: pd.DataFrame, col: str, weights: np.ndarray | None) -> np.ndarray:
    D = _dummies(df)
    model = (
        sm.WLS(df[col].to_numpy(), D, weights=weights)
        if weights is not None
        else sm.OLS(df[col].to_numpy(), D)
    )
    return model.fit().resid


@pytest.mark.parametrize("weighted", [False, True])
def test_demean_matches_dummy_regression_unbalanced(weighted: bool) -> None:
    df = _unbalanced_panel()
    w = df["w"].to_numpy() if weighted else None
    got = demean(
        df[["x1", "x2"]].to_numpy(), [df["unit"].to_numpy(), df["time"].to_numpy()], weights=w
    )
    for j, col in enumerate(["x1", "x2"]):
        ref = _dummy_residuals(df, col, w)
        # Same projection computed two ways; MAP stops at tol=1e-12 relative, so 1e-8 is safe.
        np.testing.assert_allclose(got[:, j], ref, atol=1e-8)


def test_demean_1d_and_input_untouched() -> None:
    df = _unbalanced_panel(3)
    x = df["x1"].to_numpy().copy()
    before = x.copy()
    out = demean(x, [df["unit"], df["time"]])
    assert out.shape == x.shape
    np.testing.assert_array_equal(x, before)
    # one-way: exactly the group-demeaned values
    one = demean(x, [df["unit"].to_numpy()])
    np.testing.assert_allclose(
        one, x - df.groupby("unit")["x1"].transform("mean").to_numpy(), atol=1e-12
    )


def test_fwl_coefficient_equals_dummy_ols() -> None:
    df = _unbalanced_panel(11)
    rng = np.random.default_rng(1)
    y = 2.0 * df["x1"] - 0.5 * df["x2"] + df["unit"] * 0.3 + rng.normal(size=len(df))
    fe = [df["unit"].to_numpy(), df["time"].to_numpy()]
    Xd = demean(df[["x1", "x2"]].to_numpy(), fe)
    yd = demean(y.to_numpy(), fe)
    b = np.linalg.lstsq(Xd, yd, rcond=None)[0]
    D = _dummies(df)
    ref = sm.OLS(y.to_numpy(), np.column_stack([df[["x1", "x2"]].to_numpy(), D])).fit().params[:2]
    np.testing.assert_allclose(b, ref, atol=1e-8)


def test_fe_dof_and_ssc_k() -> None:
    df = _unbalanced_panel()
    u, t = factorize(df["unit"]), factorize(df["time"])
    assert fe_dof([u]) == 40
    assert fe_dof([u, t]) == 40 + 12 - 1  # connected panel: one redundancy
    # two disconnected blocks of units and periods -> two redundancies
    u2 = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    t2 = np.array([0, 1, 0, 1, 2, 3, 2, 3])
    assert fe_dof([u2, t2]) == 4 + 4 - 2
    # fixest: unit + time FE clustered by unit -> K = n_coef + T (pyfixest get_ssc)
    assert cluster_ssc_k(3, [u, t], u) == 3 + 12


def test_cluster_scores_sums_rows() -> None:
    s = np.arange(12, dtype=float).reshape(6, 2)
    cl = np.array([0, 1, 0, 2, 1, 0])
    np.testing.assert_allclose(
        cluster_scores(s, cl), [[0 + 4 + 10, 1 + 5 + 11], [2 + 8, 3 + 9], [6, 7]]
    )


def test_demean_bad_input() -> None:
    with pytest.raises(EstimationError, match="shape"):
        demean(np.ones(5), [np.arange(4)])
    with pytest.raises(EstimationError, match="positive"):
        demean(np.ones(3), [np.arange(3)], weights=np.array([1.0, -1.0, 1.0]))


def test_demean_integer_codes_with_gaps() -> None:
    # Integer codes with unused levels (0, 2, 5, 7 ...) used to leave empty groups: 0/0
    # group means made the sweep stop after one pass with a wrong answer. Gapped codes must
    # give exactly what their compact relabelling gives, without warnings.
    df = _unbalanced_panel(5)
    u = df["unit"].to_numpy() * 3 + 2  # gaps between every unit code
    t = df["time"].to_numpy() * 2
    x = df[["x1", "x2"]].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = demean(x, [u, t])
    ref = demean(x, [factorize(u), factorize(t)])
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, atol=1e-12)
    for j, col in enumerate(["x1", "x2"]):
        # same projection as the dummy regression (MAP tolerance 1e-12 relative)
        np.testing.assert_allclose(got[:, j], _dummy_residuals(df, col, None), atol=1e-8)
    # degrees of freedom count only the levels present
    assert fe_dof([u, t]) == fe_dof([factorize(u), factorize(t)]) == 40 + 12 - 1
    assert cluster_ssc_k(2, [u, t], factorize(u)) == 2 + 12


def _onehot_case(seed: int) -> tuple[pd.DataFrame, np.ndarray, int]:
    df = _unbalanced_panel(seed)
    rng = np.random.default_rng(seed)
    # a one-hot block: cohort-like groups of units x periods, some rows in no cell
    grp = df["unit"].to_numpy() % 4
    col = np.where(grp > 0, (grp - 1) * 12 + df["time"].to_numpy(), -1)
    col[rng.uniform(size=len(col)) < 0.2] = -1
    used = np.unique(col[col >= 0])
    remap = np.full(col.max() + 1, -1)
    remap[used] = np.arange(used.size)
    col = np.where(col >= 0, remap[np.maximum(col, 0)], -1)
    return df, col, int(used.size)


@pytest.mark.parametrize("seed", [7, 11])
def test_two_way_within_matches_dense_projection(seed: int) -> None:
    df, col, k = _onehot_case(seed)
    n = len(df)
    u, t = df["unit"].to_numpy(), df["time"].to_numpy()
    tw = TwoWayWithin(u, t)
    assert tw.rank == fe_dof([u, t])
    X = df[["x1", "x2"]].to_numpy()
    Xd = tw.residualize(X)
    # exact projection vs alternating projections (tol 1e-12) and the dummy regression
    np.testing.assert_allclose(Xd, demean(X, [u, t]), atol=1e-9)
    np.testing.assert_allclose(Xd[:, 0], _dummy_residuals(df, "x1", None), atol=1e-9)
    # the one-hot block against its materialised dummies
    D = np.zeros((n, k))
    rows = np.flatnonzero(col >= 0)
    D[rows, col[rows]] = 1.0
    Dd = demean(D, [u, t])
    block = tw.onehot(col, k)
    np.testing.assert_allclose(block.gram, Dd.T @ Dd, atol=1e-9)
    coef = np.random.default_rng(seed).normal(size=k)
    np.testing.assert_allclose(tw.expand(block, coef), D @ coef, atol=0)
    # clustered meat of the scores [M D, M X] * resid: clusters nesting the units, and
    # clusters cutting across units (every unit in several clusters)
    resid = tw.residualize(np.random.default_rng(seed + 1).normal(size=n))
    Z = np.column_stack([Dd, Xd])
    for cl in (factorize(u // 3), factorize((u + t) % 5)):
        S = cluster_scores(Z * resid[:, None], cl)
        meat = tw.cluster_meat(block, resid, cl, Xd)
        # same sums in another order; entries are O(10), so 1e-9 is rounding-level
        np.testing.assert_allclose(meat, S.T @ S, atol=1e-9)
        np.testing.assert_allclose(
            tw.cluster_meat(block, resid, cl), S[:, :k].T @ S[:, :k], atol=1e-9
        )


def test_two_way_within_disconnected_panel() -> None:
    # two blocks of units observed in disjoint periods: two redundancies, and the
    # pseudo-inverse still gives the projection of the dummy regression
    rng = np.random.default_rng(2)
    u = np.repeat(np.arange(20), 4)
    t = np.where(u < 10, 0, 4) + np.tile(np.arange(4), 20)
    x = rng.normal(size=u.size)
    tw = TwoWayWithin(u, t)
    assert tw.rank == fe_dof([u, t]) == 20 + 8 - 2
    D = np.column_stack([pd.get_dummies(u).to_numpy(float), pd.get_dummies(t).to_numpy(float)])
    ref = x - D @ np.linalg.lstsq(D, x, rcond=None)[0]
    np.testing.assert_allclose(tw.residualize(x), ref, atol=1e-10)


def test_two_way_within_more_periods_than_units() -> None:
    # 6 units x 25 periods: the period effect is the larger one and is swept by means
    rng = np.random.default_rng(4)
    u = np.repeat(np.arange(6), 25)
    t = np.tile(np.arange(25), 6)
    keep = rng.uniform(size=u.size) > 0.15
    u, t = u[keep], t[keep]
    col = np.where((u >= 3) & (t >= 10), t - 10, -1)
    k = int(col.max()) + 1
    tw = TwoWayWithin(u, t)
    assert tw.rank == fe_dof([u, t])
    D = np.zeros((u.size, k))
    rows = np.flatnonzero(col >= 0)
    D[rows, col[rows]] = 1.0
    Dd = demean(D, [u, t])
    block = tw.onehot(col, k)
    np.testing.assert_allclose(block.gram, Dd.T @ Dd, atol=1e-9)
    resid = tw.residualize(rng.normal(size=u.size))
    np.testing.assert_allclose(resid, demean(resid, [u, t]), atol=1e-9)
    cl = factorize(t % 4)
    S = cluster_scores(Dd * resid[:, None], cl)
    np.testing.assert_allclose(tw.cluster_meat(block, resid, cl), S.T @ S, atol=1e-9)
