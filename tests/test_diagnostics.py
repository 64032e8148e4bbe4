"""Pre-trend diagnostics and Rambachan-Roth breakdowns for every event study of a run."""

from __future__ import annotations

import numpy as np
import pytest

from zoneimpact.estimators import twfe
from zoneimpact.inference.diagnostics import event_study_diagnostics
from zoneimpact.inference.pretrends import pretrend_wald
from zoneimpact.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(
        rng=3,
        n_units=120,
        n_regions=12,
        first_year=2000,
        last_year=2014,
        waves={2005: 0.5, 2009: 0.5},
        displacement_share=0.0,
    )


def test_one_row_per_event_study_with_wald_and_breakdowns(sim):
    es = twfe.fit_event_study(sim.panel, outcome="fdi", leads=4, lags=4)
    static = twfe.fit(sim.panel, outcome="fdi")
    table = event_study_diagnostics({"es": es, "static": static})
    assert list(table["name"]) == ["es"]  # the static TWFE has no event study
    row = table.iloc[0]
    assert row["n_leads"] == 3
    # the CR1 TWFE covariance is referred to Hotelling's F(L, G - L) with G its clusters
    ref = pretrend_wald(es, n_clusters=es.info["n_clusters"], vcov_type="CR1")
    assert row["wald_p"] == pytest.approx(ref["p_value"], rel=1e-12)
    # a large true effect with parallel trends: the effect survives sizeable violations
    assert row["breakdown_rm"] > 0.5 and np.isfinite(row["breakdown_sd"])
    leads = es.terms[es.terms["term"].isin(["event:-4", "event:-3", "event:-2"])]
    assert row["max_abs_lead"] == pytest.approx(leads["estimate"].abs().max())
    assert row["equivalence_margin"] > row["max_abs_lead"]
