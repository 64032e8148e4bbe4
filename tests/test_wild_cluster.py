"""Wild cluster restricted bootstrap (Roodman et al. 2019 WCR11) against wildboottest's
full enumeration, pyfixest's CRV1, invariances and a few-cluster Monte Carlo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import SpecError
from zoneimpact.inference.wild_cluster import wild_cluster_ci, wild_cluster_test

REF = json.loads((Path(__file__).parents[1] / "benchmarks/reference/wild_cluster.json").read_text())


def panel(seed: int = 7, n_clusters: int = 10) -> pd.DataFrame:
    """The generator of benchmarks/reference/wild_cluster_reference.py (same code; the
    checksum below proves the data are the reference's)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_clusters):
        shock = rng.normal(size=8)
        for i in range(3):
            unit = p * 3 + i
            a = rng.normal()
            for t in range(8):
                d = float(p % 3 == 0 and t >= 4 + p % 2)
                x = rng.normal()
                y = a + 0.3 * t + 0.5 * d + 0.8 * x + shock[t] + rng.normal()
                rows.append({"unit": unit, "prov": p, "t": t, "d": d, "x": x, "y": y})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    out = panel()
    assert out["y"].sum() == pytest.approx(REF["checksum_y"], rel=1e-14)
    return out


def _test(df: pd.DataFrame, column: int, **kw: object):
    return wild_cluster_test(
        df["y"].to_numpy(),
        df[["d", "x"]].to_numpy(),
        df["prov"].to_numpy(),
        column=column,
        fe=[df["unit"].to_numpy(), df["t"].to_numpy()],
        **kw,
    )


def test_matches_wildboottest_full_enumeration(df: pd.DataFrame) -> None:
    d = _test(df, 0, n_boot=9999)
    assert d.enumerated and d.n_boot == 2**10
    # wildboottest 0.3.2 (dense dummies, 1,024 sign vectors) prints 0.18359375: equal
    # exactly, since both count the same draws
    assert d.p_value == REF["tests"]["d"]["p_value"]
    x = _test(df, 1, n_boot=9999)
    # for x the only draws at least as extreme are the two that reproduce the sample
    # (all +1, all -1) and two others: we count the ties (smallest possible p is 2/2**G,
    # Webb 2013); wildboottest's strict "<" drops them here by rounding noise, while it
    # keeps them for d above. So ours is theirs + 2/1024, exactly.
    assert x.p_value == REF["tests"]["x"]["p_value"] + 2 / 1024


def test_se_is_fixest_crv1(df: pd.DataFrame) -> None:
    for column, name in enumerate(("d", "x")):
        res = _test(df, column, n_boot=999, rng=1)
        ref = REF["pyfixest_crv1"][name]
        # pyfixest 0.60 feols(y ~ d + x | unit + t, vcov={"CRV1": "prov"}); same formula
        assert res.estimate == pytest.approx(ref["estimate"], rel=1e-10)
        assert res.se == pytest.approx(ref["se"], rel=1e-10)


def test_invariances(df: pd.DataFrame) -> None:
    base = _test(df, 0, n_boot=9999)
    shuffled = df.sample(frac=1.0, random_state=3)
    relabelled = shuffled.assign(prov=shuffled["prov"].map(lambda p: f"p{(7 * p) % 10}"))
    assert _test(relabelled, 0, n_boot=9999).p_value == base.p_value
    shifted = df.assign(y=df["y"] * 1e3 + 5.0)
    res = _test(shifted, 0, n_boot=9999)
    assert res.p_value == base.p_value
    assert res.t_stat == pytest.approx(base.t_stat, rel=1e-9)


def test_confidence_interval_inverts_the_test(df: pd.DataFrame) -> None:
    lo, hi = wild_cluster_ci(
        df["y"].to_numpy(),
        df[["d", "x"]].to_numpy(),
        df["prov"].to_numpy(),
        fe=[df["unit"].to_numpy(), df["t"].to_numpy()],
        n_boot=9999,
        alpha=0.10,
    )
    est = _test(df, 0, n_boot=9999).estimate
    assert lo < est < hi
    # just inside each end the null is not rejected at 10%, just outside it is
    eps = 1e-4 * (hi - lo)
    assert _test(df, 0, n_boot=9999, null=lo + eps).p_value >= 0.10
    assert _test(df, 0, n_boot=9999, null=lo - eps).p_value < 0.10
    assert _test(df, 0, n_boot=9999, null=hi - eps).p_value >= 0.10
    assert _test(df, 0, n_boot=9999, null=hi + eps).p_value < 0.10


def test_few_clusters_size_beats_crv1() -> None:
    """Null world, 8 clusters of which 3 treated, cluster-by-period shocks: the CRV1
    t-test (t with G-1 df) over-rejects (MacKinnon & Webb 2017); WCR stays near 5%. 300
    replications: the binomial SD of a 5% rate is 1.3 points, so WCR within [1%, 9.5%]
    and CRV1 above WCR (a separate 400-replication run gave 6.5% and 9.5%)."""
    from scipy import stats

    rng = np.random.default_rng(2026)
    rej_wcr = rej_t = 0
    reps = 300
    for _ in range(reps):
        rows = []
        for p in range(8):
            shock = rng.normal(size=6) * 1.5
            for i in range(4):
                a = rng.normal()
                for t in range(6):
                    d = float(p < 3 and t >= 3)
                    rows.append((p * 4 + i, p, t, d, a + shock[t] + rng.normal()))
        arr = np.array(rows)
        res = wild_cluster_test(
            arr[:, 4], arr[:, 3], arr[:, 1], fe=[arr[:, 0], arr[:, 2]], n_boot=999
        )
        rej_wcr += res.p_value <= 0.05
        rej_t += 2 * stats.t.sf(abs(res.t_stat), 7) <= 0.05
    assert 0.01 <= rej_wcr / reps <= 0.095, rej_wcr / reps
    assert rej_t > rej_wcr, (rej_t / reps, rej_wcr / reps)


def test_bad_input_is_named(df: pd.DataFrame) -> None:
    with pytest.raises(SpecError, match="weights must be"):
        _test(df, 0, weights="normal")
    with pytest.raises(SpecError, match="n_boot"):
        _test(df, 0, n_boot=10)
    with pytest.raises(SpecError, match="same number of rows"):
        wild_cluster_test(np.ones(5), np.ones((4, 1)), np.arange(5))
