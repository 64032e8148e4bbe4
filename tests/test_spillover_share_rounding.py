"""The displacement share refuses a direct total that is zero to rounding.

In a noiseless world without any effect the direct total is a few 1e-10 of rounding, and
``1 - net / direct_total`` was a ratio of rounding errors: a share of -2.50 with
p = 0.003 (seed 3 below, before the rule). The same noiseless world with an effect must
keep its exact share.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from zoneimpact.claims import _with_net_note
from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel
from zoneimpact.simulate import simulate

NOISELESS = dict(noise_sd=0.0, zero_share=0.0)


def _fit(panel: Panel, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = spillover.fit(panel, outcome="fdi", rng=1, n_boot=99, **kw)
    # a rounding warning points at the caller of fit (this file)
    assert all(w.filename == __file__ for w in caught if "zero to rounding" in str(w.message))
    return res, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def null_world() -> Panel:
    return simulate(rng=3, effect_size=0.0, displacement_share=0.0, **NOISELESS).panel


def _term(res, term: str) -> dict:
    return res.terms.set_index("term").loc[term].to_dict()


def test_share_is_blank_with_its_reason_when_the_direct_total_is_rounding(null_world):
    res, said = _fit(null_world)
    # the direct total is rounding (|.| under 1e-6 on outcomes of about 150 per row), and
    # net keeps its (zero) value: only the ratio is refused
    assert abs(_term(res, "direct_total")["estimate"]) < 1e-6
    assert np.isfinite(_term(res, "net")["estimate"])
    share = _term(res, "displacement_share")
    assert all(np.isnan(share[c]) for c in ("estimate", "se", "p_value", "ci_low", "ci_high"))
    assert res.conf_int().loc["displacement_share"].isna().all()
    assert res.draws["displacement_share"].isna().all()
    assert not any(k.startswith("displacement_share_") for k in res.info)
    assert "zero to rounding" in res.info["share_note"]
    assert any("displacement_share is not identified" in m for m in said)
    # a verdict on the share carries the reason; one on net does not
    assert "zero to rounding" in _with_net_note("x", res, "displacement_share")
    assert _with_net_note("x", res, "net") == "x"


@pytest.mark.parametrize("method", ["cluster", "wild"])
def test_redone_inference_keeps_the_share_blank(null_world, method):
    res, _ = _fit(null_world)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = res.with_inference(method, n_boot=99)
    assert np.isnan(_term(again, "displacement_share")["estimate"])
    assert "zero to rounding" in again.info["share_note"]


@pytest.mark.parametrize("factor", [1e-9, 1e9])
def test_the_rule_does_not_move_with_the_outcome_scale(null_world, factor):
    scaled = null_world.with_outcome("y", null_world.data["fdi"].to_numpy() * factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(scaled, outcome="y", rng=1, n_boot=99)
    assert np.isnan(_term(res, "displacement_share")["estimate"])
    assert "zero to rounding" in res.info["share_note"]


def test_a_noiseless_world_with_an_effect_keeps_its_exact_share():
    sim = simulate(rng=3, displacement_share=0.5, **NOISELESS)
    res, said = _fit(sim.panel)
    # noiseless: the share is the design's 0.5 up to rounding
    assert _term(res, "displacement_share")["estimate"] == pytest.approx(0.5, abs=1e-9)
    assert "share_note" not in res.info
    assert not any("zero to rounding" in m for m in said)
