"""A covariate's units or an offset cannot change an estimate (a breaker's check, session 19).

Unit (and period) effects absorb any affine map of a covariate, so ``a + b x`` must give
the estimates of ``x``. Before, the fixed-effect sweeps stopped on a tolerance tied to the
covariate's level, the rank and absorption checks read absolute sizes, and the normal
equations carried the offset: ``x + 1e9`` moved an unbalanced imputation ATT from 86.81 to
94.46, ``x * 1e-12`` was dropped as absorbed (ATT 88.03 -> 95.07, Sun-Abraham 81.26 ->
84.35), and ``x * 1e12`` made TWFE, Sun-Abraham, the CS doubly robust cells and the
spillover pieces refuse a full-rank design. Each check below fails on that code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from zoneimpact.estimators import callaway_santanna, imputation, spillover, sun_abraham, twfe
from zoneimpact.panel import Panel
from zoneimpact.simulate import simulate

# the same data in other covariate units: relative agreement 1e-7 leaves room for the
# input's own rounding (an offset of 1e9 stores x to about 1e-7) and for the solver's
MAPS = {"offset 1e9": (1e9, 1.0), "times 1e12": (0.0, 1e12), "times 1e-12": (0.0, 1e-12)}


def _panel(frame):
    return Panel.from_frame(
        frame, unit="unit", time="time", cohort="cohort", outcomes=["fdi"], covariates=["z"]
    )


@pytest.fixture(scope="module")
def frames():
    p = simulate(rng=1).panel
    d = p.data[["unit", "time", "cohort", "fdi", "x"]].copy()
    # a time-varying covariate (unit effects would absorb the simulation's x itself)
    rng = np.random.default_rng(7)
    d["z"] = d["x"] * (d["time"] - 2000) / 10 + rng.normal(0, 1, len(d))
    # unbalanced: 30% of the unit-years dropped, where the sweeps need many passes
    return d, d[rng.random(len(d)) > 0.3].reset_index(drop=True)


def _with_z(frame, offset, factor):
    return _panel(frame.assign(z=frame["z"] * factor + offset))


def _fits(panel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "imputation": imputation.fit(panel, outcome="fdi", covariates=["z"]).coef("att"),
            "twfe": twfe.fit(panel, outcome="fdi", covariates=["z"]).coef("att"),
            "sun_abraham": sun_abraham.fit(panel, outcome="fdi", covariates=["z"]).coef("att"),
            "cs_dr": callaway_santanna.fit(
                panel, outcome="fdi", covariates=["z"], bootstrap=False
            ).coef("att"),
        }


@pytest.mark.parametrize("name", list(MAPS))
def test_staggered_estimators_ignore_covariate_units(frames, name):
    offset, factor = MAPS[name]
    for frame in frames:
        base, moved = _fits(_panel(frame)), _fits(_with_z(frame, offset, factor))
        for est, value in base.items():
            assert moved[est] == pytest.approx(value, rel=1e-7), (name, est)


def test_spillover_ignores_covariate_units():
    # the spillover fit takes each unit's baseline covariate, so the simulation's x serves
    sim = simulate(rng=1)
    kw = dict(outcome="fdi", covariates=["x"], rng=1, n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = spillover.fit(sim.panel, **kw).terms.set_index("term")
        for offset, factor in MAPS.values():
            moved = sim.panel.data["x"] * factor + offset
            t = spillover.fit(sim.panel.replace(data=sim.panel.data.assign(x=moved)), **kw)
            t = t.terms.set_index("term")
            for term in ("direct", "spillover", "net"):
                # the offset made the clean rows' design look singular before
                assert t.at[term, "estimate"] == pytest.approx(base.at[term, "estimate"], rel=1e-7)
                assert t.at[term, "se"] == pytest.approx(base.at[term, "se"], rel=1e-7)
