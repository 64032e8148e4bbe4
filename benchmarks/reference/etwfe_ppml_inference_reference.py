"""Reference numbers for ``with_inference("cluster")`` of ETWFE (linear) and PPML: pyfixest's
CRV1 clustered by state (``countyreal // 1000``) and two-way by state and year on R did's
mpdta.

ETWFE (linear, not-yet-treated controls) is the TWFE regression saturated with one dummy
per treated cohort x post period cell (Wooldridge 2021, eq. 6.33), so pyfixest ``feols`` on
those dummies with unit and year effects gives the cells' coefficients and SEs. PPML is
``fepois("emp ~ d | countyreal + year")`` with ``emp = exp(lemp)``, ``d = year >= first.treat``.
pyfixest's default small-sample correction is fixest's (``ssc="fixest"`` here).

Run with the compare environment:
    python benchmarks/reference/etwfe_ppml_inference_reference.py
Writes etwfe_ppml_inference.json beside this script (the tests read it; they need no peer).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf

OUT = Path(__file__).with_name("etwfe_ppml_inference.json")
DATA = Path(__file__).parents[3] / "shared" / "data" / "canonical" / "mpdta.csv"
VCOVS = {"state": {"CRV1": "state"}, "state+year": {"CRV1": "state+year"}}


def frame() -> pd.DataFrame:
    df = pd.read_csv(DATA)
    g = df["first.treat"].to_numpy()
    treated = (g > 0) & (df["year"].to_numpy() >= g)
    df = df.assign(
        state=df["countyreal"] // 1000,
        emp=np.exp(df["lemp"]),
        d=treated.astype(float),
    )
    cells = sorted({(int(a), int(b)) for a, b in zip(g[treated], df["year"][treated], strict=True)})
    for a, b in cells:
        df[f"cell_{a}_{b}"] = ((g == a) & (df["year"] == b)).astype(float)
    return df


def _se(v: float) -> float | None:
    """A finite SE, or None (JSON null) where the two-way variance came out negative."""
    return float(v) if np.isfinite(v) else None


def main() -> None:
    df = frame()
    cells = [c for c in df.columns if c.startswith("cell_")]
    out: dict[str, object] = {"pyfixest": metadata.version("pyfixest"), "etwfe": {}, "ppml": {}}
    for key, vcov in VCOVS.items():
        m = pf.feols(f"lemp ~ {' + '.join(cells)} | countyreal + year", data=df, vcov=vcov)
        out["etwfe"][key] = {  # type: ignore[index]
            c.replace("cell_", "cell:").replace("_", ":"): _se(m.se()[c]) for c in cells
        }
        p = pf.fepois("emp ~ d | countyreal + year", data=df, vcov=vcov)
        out["ppml"][key] = {"estimate": float(p.coef()["d"]), "se": float(p.se()["d"])}  # type: ignore[index]
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
