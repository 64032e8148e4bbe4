"""Clusters named as the caller named the columns.

``Panel.from_frame`` stores the unit, time and cohort columns as ``unit``, ``time`` and
``cohort``; users of fixest/pyfixest write ``cluster="countyreal"`` or ``"year"`` (their
own names). Those names must mean the same columns in every estimator, and the errors must
say which column a name resolved to.
"""

from __future__ import annotations

import numpy as np
import pytest

from zoneimpact.errors import SpecError
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import imputation, sun_abraham, twfe
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)


@pytest.fixture(scope="module")
def panel(mpdta_frame) -> Panel:
    df = mpdta_frame.copy()
    df["state"] = df["countyreal"] // 1000
    return Panel.from_frame(
        df,
        unit="countyreal",
        time="year",
        cohort="first.treat",
        outcomes=["lemp"],
        covariates=["state"],
    )


def test_panel_maps_the_callers_names(panel):
    assert panel.column_for("countyreal") == "unit"
    assert panel.column_for("year") == "time"
    assert panel.column_for("first.treat") == "cohort"
    assert panel.column_for("state") == "state"  # a column keeps its name
    assert panel.column_for("nowhere") == "nowhere"  # unknown: the resolver's error


@pytest.mark.parametrize(
    ("own", "renamed"),
    [("countyreal", "unit"), ("year", "time"), (["state", "year"], ["state", "time"])],
)
def test_regression_clusters_by_the_callers_names(panel, own, renamed):
    # the same partition under either name: identical SEs (same arithmetic)
    for res in (twfe.fit(panel, outcome="lemp"), sun_abraham.fit(panel, outcome="lemp")):
        a = res.with_inference("cluster", cluster=own).terms["se"].to_numpy()
        b = res.with_inference("cluster", cluster=renamed).terms["se"].to_numpy()
        np.testing.assert_array_equal(a, b)
    imp = imputation.fit(panel, outcome="lemp")
    a = imp.with_inference("cluster", cluster=own).terms["se"].to_numpy()
    b = imp.with_inference("cluster", cluster=renamed).terms["se"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_callaway_santanna_unit_name_and_refused_time_name(panel):
    a = cs.fit(panel, outcome="lemp", rng=1, cluster="countyreal")
    b = cs.fit(panel, outcome="lemp", rng=1, cluster="unit")
    np.testing.assert_array_equal(a.terms["se"].to_numpy(), b.terms["se"].to_numpy())
    with pytest.raises(SpecError, match=r"cluster='year' \(the panel's time column\) does not"):
        cs.fit(panel, outcome="lemp", rng=1, cluster="year")


def test_a_role_column_named_after_another_role_is_refused(mpdta_frame):
    # unit="time" would make cluster="time" and fixed_effects=("unit", "time") mean two
    # columns at once (TWFE used to absorb the unit twice and no period effect)
    from zoneimpact.errors import PanelError

    df = mpdta_frame.rename(columns={"countyreal": "time", "year": "yr"})
    with pytest.raises(PanelError, match=r"unit column is named 'time'.*rename it"):
        Panel.from_frame(df, unit="time", time="yr", cohort="first.treat", outcomes=["lemp"])
    df = mpdta_frame.rename(columns={"year": "unit", "countyreal": "county"})
    with pytest.raises(PanelError, match=r"time column is named 'unit'"):
        Panel.from_frame(df, unit="county", time="unit", cohort="first.treat", outcomes=["lemp"])


def test_fixed_effects_and_dcdh_and_spillover_take_the_callers_names(panel):
    from zoneimpact.estimators import chaisemartin

    a = twfe.fit(panel, outcome="lemp", fixed_effects=("countyreal", "year"))
    b = twfe.fit(panel, outcome="lemp")
    np.testing.assert_array_equal(a.terms["estimate"], b.terms["estimate"])
    # dCDH's fit(cluster=) resolves the caller's names like its with_inference
    with pytest.raises(SpecError, match="not a covariate column"):
        chaisemartin.fit(panel, outcome="lemp", effects=1, cluster="year")


def test_cohort_cluster_refusal_gives_the_real_reason(panel):
    with pytest.raises(SpecError, match=r"'first.treat' \(the panel's cohort column\) is the "):
        cs.fit(panel, outcome="lemp", rng=1, cluster="first.treat")


def test_dask_fits_take_the_callers_unit_name_as_unit_clusters():
    # the Dask engine's option check: the caller's unit column name means unit clusters,
    # as "unit" does; a name the panel was not read with is refused, saying how to read it
    from types import SimpleNamespace

    from zoneimpact.distributed._frame import uses_column

    dp = SimpleNamespace(cluster=None, weights=None, names={"unit": "countyreal"})
    assert uses_column(dp, "countyreal", "cluster") is False
    assert uses_column(dp, "unit", "cluster") is False
    with pytest.raises(SpecError, match=r"read_panel\(\.\.\., cluster='state'\)"):
        uses_column(dp, "state", "cluster")
    dp = SimpleNamespace(cluster="state", weights=None, names={"unit": "countyreal"})
    assert uses_column(dp, "state", "cluster") is True
