"""Reference numbers for zoneimpact.inference.wild_cluster: the Python port of R
fwildclusterboot, ``wildboottest`` 0.3.2, run on a dense design (unit and period fixed
effects as dummies) with full enumeration of the Rademacher sign vectors (B > 2**G), so
its p-values are exact and independent of any seed; pyfixest's CRV1 for the standard error.

Run with the compare environment:  python benchmarks/reference/wild_cluster_reference.py
Writes wild_cluster.json beside this script (the tests read it; they need no peer).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import statsmodels.api as sm
from wildboottest.wildboottest import wildboottest as wbt

OUT = Path(__file__).with_name("wild_cluster.json")


def panel(seed: int = 7, n_clusters: int = 10) -> pd.DataFrame:
    """Units nested in provinces, province-level shocks, treatment by province wave.
    The same generator lives in tests/test_wild_cluster.py (kept in sync by that test's
    assertion on the data's checksum)."""
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


def main() -> None:
    df = panel()
    out: dict[str, object] = {
        "generator": "benchmarks/reference/wild_cluster_reference.py",
        "peer": f"wildboottest {metadata.version('wildboottest')}, pyfixest {pf.__version__}",
        "design": "y ~ d + x | unit + t, clusters = prov (10), WCR11, Rademacher, full enumeration",
        "checksum_y": float(df["y"].sum()),
        "tests": {},
    }
    X = pd.get_dummies(df[["unit", "t"]].astype(str), drop_first=False, dtype=float)
    X = X.drop(columns=["t_0"])  # unit dummies span the constant; one period dropped
    X.insert(0, "x", df["x"])
    X.insert(0, "d", df["d"])
    model = sm.OLS(df["y"], X)
    for param in ("d", "x"):
        res = wbt(model, B=99999, cluster=df["prov"], param=param, seed=1, show=False)
        row = res.iloc[0] if isinstance(res, pd.DataFrame) else res
        out["tests"][param] = {
            "p_value": float(row["p-value"]),
            "statistic": float(row["statistic"]),
        }
    fit = pf.feols("y ~ d + x | unit + t", data=df, vcov={"CRV1": "prov"})
    out["pyfixest_crv1"] = {
        name: {"estimate": float(fit.coef()[name]), "se": float(fit.se()[name])}
        for name in ("d", "x")
    }
    # two-way clustering (Cameron, Gelbach & Miller 2011) by province and period
    fit2 = pf.feols("y ~ d + x | unit + t", data=df, vcov={"CRV1": "prov+t"})
    out["pyfixest_crv1_two_way"] = {
        name: {"estimate": float(fit2.coef()[name]), "se": float(fit2.se()[name])}
        for name in ("d", "x")
    }
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
