"""WCR bootstrap in large outcome units, against a brute-force refit per sign vector, and
regressors the fixed effects absorb (fixer C: the null-value parts were interpolated
between nulls 0 and 1, losing ~1e-8 of t* to cancellation at y x 1e6; an absorbed column
returned se 6e16)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from test_wild_cluster import panel as wild_panel

from zoneimpact import Panel
from zoneimpact.errors import EstimationError
from zoneimpact.estimators import twfe
from zoneimpact.inference.wild_cluster import wild_cluster_ci, wild_cluster_test


def _small(seed: int = 5, G: int = 8) -> dict[str, np.ndarray]:
    """Unbalanced panel of G clusters with 2-4 units each, ~20% of rows missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(G):
        shock = rng.normal(size=6)
        for i in range(2 + g % 3):
            a = rng.normal()
            for t in range(6):
                if rng.random() < 0.2:
                    continue
                d = float(g % 2 == 0 and t >= 3)
                x = rng.normal()
                ind = rng.integers(0, 4)
                y = a + 0.3 * t + 0.5 * d + 0.8 * x + shock[t] + 0.3 * ind + rng.normal()
                rows.append((g, g * 10 + i, t, ind, d, x, y))
    arr = np.array(rows)
    return {
        "cl": arr[:, 0].astype(int),
        "unit": arr[:, 1].astype(int),
        "t": arr[:, 2].astype(int),
        "ind": arr[:, 3].astype(int),
        "d": arr[:, 4],
        "x": arr[:, 5],
        "y": arr[:, 6],
    }


def _brute_p(y, X, cl, fes, null) -> float:
    """WCR11 by hand: dense dummies, the restricted fit, and a full refit (coefficient and
    CRV1 standard error) for every one of the 2**G sign vectors; ties count."""
    dums = [(f[:, None] == np.unique(f)[None, :]).astype(float) for f in fes]
    Z = np.column_stack([X] + [D if j == 0 else D[:, 1:] for j, D in enumerate(dums)])
    ZZi = np.linalg.inv(Z.T @ Z)
    G = cl.max() + 1

    def t_of(Y: np.ndarray) -> np.ndarray:  # Y (n, B)
        B = ZZi @ Z.T @ Y
        U = Y - Z @ B
        out = np.empty(Y.shape[1])
        for j in range(Y.shape[1]):
            s = np.zeros((G, Z.shape[1]))
            np.add.at(s, cl, Z * U[:, j : j + 1])
            out[j] = (B[0, j] - null) / np.sqrt(((s @ ZZi[0]) ** 2).sum())
        return out

    b = ZZi @ Z.T @ y
    br = b - ZZi[:, 0] * (b[0] - null) / ZZi[0, 0]
    ur = y - Z @ br
    V = np.array(list(itertools.product([-1.0, 1.0], repeat=G))).T  # (G, 2**G)
    ts = t_of((Z @ br)[:, None] + ur[:, None] * V[cl])
    return float(np.mean(np.abs(ts) >= abs(t_of(y[:, None])[0]) * (1 - 1e-10)))


def test_brute_force_full_enumeration_in_large_units() -> None:
    """G = 8, fe = t + industry, y x 1e8 (a GDP in currency units). Before the fix the
    CI was (-0.43953, 2.43839) x c against the brute-force (-0.57433, 2.43839) x c."""
    dat = _small()
    X = np.column_stack([dat["d"], dat["x"]])
    fes = [dat["t"], dat["ind"]]
    p_one = {}
    for c in (1.0, 1e8):
        y = dat["y"] * c
        lo, hi = wild_cluster_ci(y, X, dat["cl"], fe=fes, n_boot=99999)
        est = wild_cluster_test(y, X, dat["cl"], fe=fes, n_boot=99999)
        assert est.enumerated and est.n_boot == 2**8
        # the brute force at nulls just inside / outside each end (1e-6 of the width, far
        # above brentq's 1e-8 se tolerance): not rejected inside, rejected outside
        eps = 1e-6 * (hi - lo)
        for end, inside in ((lo, lo + eps), (hi, hi - eps)):
            outside = 2 * end - inside
            assert _brute_p(y, X, dat["cl"], fes, inside) >= 0.05
            assert _brute_p(y, X, dat["cl"], fes, outside) < 0.05
        # and the p-value at a fixed null equals the brute force's exactly (same 256 draws)
        for null in (0.0, 0.3 * c, 2.0 * c):
            p = wild_cluster_test(y, X, dat["cl"], fe=fes, n_boot=99999, null=null).p_value
            assert p == _brute_p(y, X, dat["cl"], fes, null)
            p_one.setdefault(null / c, p)
            assert p == p_one[null / c]


def test_no_fe_smallest_p_value_survives_large_units() -> None:
    """Without fixed effects at y x 1e8 the test of beta = 0.3c gave p = 0, impossible under
    full enumeration (the all +1 / all -1 sign vectors tie |t|: p >= 2/2**G, Webb 2013)."""
    dat = _small()
    X = np.column_stack([dat["d"], dat["x"]])
    ps = [
        wild_cluster_test(dat["y"] * c, X, dat["cl"], n_boot=99999, null=0.3 * c).p_value
        for c in (1.0, 1e6, 1e8)
    ]
    assert ps == [2 / 2**8] * 3  # exact: the same 256 draws, the same count


@pytest.fixture(scope="module")
def reference_frame() -> pd.DataFrame:
    df = wild_panel()
    cohort = df.groupby("unit")["d"].transform(
        lambda d: float(df.loc[d.index, "t"][d.to_numpy() == 1].min()) if d.any() else 0.0
    )
    return df.assign(cohort=cohort)


def test_twfe_wild_interval_scales_with_the_outcome(reference_frame: pd.DataFrame) -> None:
    """benchmarks/reference/wild_cluster_reference.py's panel, 10 provinces enumerated. The
    upper end / c was 1.83069819 at c = 1 and 1e4 but 1.82678709 at c = 1e6 (brute force
    1.83069819)."""
    rows = {}
    for c in (1.0, 1e6, 1e8):
        p = Panel.from_frame(
            reference_frame.assign(y=reference_frame["y"] * c),
            unit="unit",
            time="t",
            outcomes=["y"],
            cohort="cohort",
            covariates=["x", "prov"],
        )
        fit = twfe.fit(p, outcome="y", covariates=["x"], ssc="fixest")
        rows[c] = fit.with_inference("wild", cluster="prov", n_boot=9999).terms.set_index("term")
    base = rows[1.0]
    assert base.loc["att", "ci_high"] == pytest.approx(1.83069819, abs=1e-8)  # brute force
    for c in (1e6, 1e8):
        assert (rows[c]["p_value"] == base["p_value"]).all()  # exact: same 1,024 draws
        # the ends are found to 1e-8 of the CRV1 se by bisection: 1e-7 of it is the margin
        for col in ("ci_low", "ci_high"):
            gap = np.abs(rows[c][col] / c - base[col])
            assert (gap <= 1e-7 * base["se"]).all(), (c, col, gap.to_dict())


def test_absorbed_or_collinear_regressor_is_refused() -> None:
    """A column constant within unit with fe = unit + t used to give estimate -130049.77,
    se 6.0e16, p = 0.9375. Absorption is judged relative to the column's own centred scale,
    so its units (x 1e8 or x 1e-8) cannot decide it, nor a genuine regressor's (x 1e-12)."""
    dat = _small(11, G=5)
    fes = [dat["unit"], dat["t"]]
    z = dat["unit"] % 3 + 0.0
    for scale in (1.0, 1e8, 1e-8):
        X = np.column_stack([dat["d"], z * scale])
        for column in (0, 1):
            with pytest.raises(EstimationError, match=r"Column\(s\) \[1\] of X do not vary"):
                wild_cluster_test(dat["y"], X, dat["cl"], fe=fes, column=column, n_boot=999)
        with pytest.raises(EstimationError, match=r"Column\(s\) \[1\]"):
            wild_cluster_ci(dat["y"], X, dat["cl"], fe=fes, n_boot=999)
    with pytest.raises(EstimationError, match="collinear once the fixed effects"):
        X = np.column_stack([dat["d"], dat["x"], dat["d"] - 2 * dat["x"]])
        wild_cluster_test(dat["y"], X, dat["cl"], fe=fes, n_boot=999)
    # a genuine regressor in tiny units is kept, and its test is the unit-free one
    base = wild_cluster_test(dat["y"], np.column_stack([dat["d"], dat["x"]]), dat["cl"], fe=fes)
    tiny = wild_cluster_test(
        dat["y"], np.column_stack([dat["d"], dat["x"] * 1e-12]), dat["cl"], fe=fes
    )
    assert tiny.p_value == base.p_value
    assert tiny.estimate == pytest.approx(base.estimate, rel=1e-9)
