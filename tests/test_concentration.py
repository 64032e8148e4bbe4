"""Concentration outcomes: regional shares, HHI, and their estimated change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.concentration import estimate_concentration, region_hhi, share_of_region
from zoneimpact.errors import PanelError
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)


def toy(displaced: float = 1.0) -> Panel:
    """8 regions x 3 units; zones (+10 from 2004) in r0-r3, each region's largest unit,
    taking displaced x 5 from each of their two neighbours. (Relocation into the
    *smallest* unit would equalise shares and lower the HHI.)"""
    rows, adj = [], []
    for r in range(8):
        names = [f"r{r}u{k}" for k in range(3)]
        adj += [(names[2], names[0]), (names[2], names[1])]
        for k, u in enumerate(names):
            zone = r < 4 and k == 2  # the largest unit: relocation into it concentrates
            for t in range(2000, 2009):
                y = 50 + 10 * r + 7 * k + 3 * (t - 2000) + (t % 3)
                if r < 4 and t >= 2004:
                    y += 10.0 if zone else -displaced * 5.0
                rows.append(
                    {
                        "unit": u,
                        "year": t,
                        "g": 2004 if zone else 0,
                        "y": float(y),
                        "region": f"r{r}",
                    }
                )
    df = pd.DataFrame(rows)
    return Panel.from_frame(
        df,
        unit="unit",
        time="year",
        cohort="g",
        outcomes="y",
        geography=df.drop_duplicates("unit")[["unit", "region"]],
        adjacency=pd.DataFrame(adj, columns=["unit", "neighbour"]),
    )


def test_shares_sum_to_one_and_hhi_matches_definition():
    p = toy()
    sp = share_of_region(p, "y")
    d = sp.data.assign(region=p.geography["region"].reindex(sp.data["unit"]).to_numpy())
    sums = d.groupby(["region", "time"])["y_share"].sum()
    assert np.allclose(sums, 1.0, atol=1e-12)
    h = region_hhi(p, "y")
    manual = (d["y_share"] ** 2).groupby([d["region"], d["time"]]).sum()
    got = h.data.set_index(["unit", "time"])["y_hhi"]
    assert np.allclose(got.loc[manual.index].to_numpy(), manual.to_numpy(), atol=1e-12)
    assert h.unit_cohort["r0"] == 2004 and np.isinf(h.unit_cohort["r5"])
    # region total unchanged by pure relocation
    tot = h.wide("y_total")
    assert tot.loc["r0", 2005] - tot.loc["r0", 2003] == pytest.approx(
        2 * 3 * 3 + (2005 % 3 - 2003 % 3) * 3
    )


def test_missing_value_blanks_the_region_period():
    p = toy()
    d = p.data.copy()
    d.loc[(d["unit"] == "r2u1") & (d["time"] == 2001), "y"] = np.nan
    q = p.replace(data=d)
    sp = share_of_region(q, "y").data
    assert sp.loc[(sp["unit"] == "r2u2") & (sp["time"] == 2001), "y_share"].isna().all()
    h = region_hhi(q, "y").data
    assert h.loc[(h["unit"] == "r2") & (h["time"] == 2001), "y_hhi"].isna().all()


def test_negative_outcome_rejected():
    p = toy()
    bad = p.with_outcome("z", p.data["y"] - 1000)
    with pytest.raises(PanelError, match="non-negative"):
        share_of_region(bad, "z")


def test_concentration_effects_signs():
    """Pure relocation raises the zone's share and the regional HHI (noise-free)."""
    p = toy(1.0)
    share = estimate_concentration(p, "y", kind="share", rng=1, options={"n_boot": 20})
    # +10 moved from two neighbours into a zone holding about a third of ~200: a few points
    assert share.coef("direct") > 0.02
    hhi = estimate_concentration(p, "y", kind="hhi", rng=1)
    # shares near 1/3 each; moving 10 of ~230 into the largest unit: HHI up by ~0.005
    assert hhi.coef("att") > 0.002
    assert hhi.info["pre_mean"] > 0.3  # three units: HHI between 1/3 and 1
