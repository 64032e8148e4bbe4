"""Zones outside the estimation sample (``Panel.sources``) in the spillover fit (issue 14
item 3, breaker b1 items 3-4).

A source zone opening inside the data window exposes its neighbours, but its own gain is in
no total. Unit-periods exposed only by such zones are reported apart
(``spillover_from_sources``) and left out of ``spillover_total``, ``net`` and the
displacement share, whose numerator and denominator then cover the same zones. Worlds are
built by hand on a line of 80 units (each unit adjacent to the next); noise-free worlds
have exact truths (tolerances 1e-9: least squares on outcomes near 100, exact up to
rounding). A source zone without coordinates is refused by name under the distance maps.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.claims import _with_net_note
from zoneimpact.errors import EstimationError, GeographyError, SpecError
from zoneimpact.estimators import spillover
from zoneimpact.exposure import build_exposure, exposure_from_knn, exposure_from_rings
from zoneimpact.panel import Panel

YEARS = list(range(2000, 2010))
N = 80
UNITS = [f"u{i:02d}" for i in range(N)]
G = 10.0  # a zone's yearly gain; each of its two neighbours loses G / 2 while not a zone


def _world(
    zones: dict[str, int], noise: float = 0.0, seed: int = 1, persist: bool = False
) -> pd.DataFrame:
    """Outcomes on the line: unit and year effects, ``+G`` for an open zone, ``-G/2`` per
    open adjacent zone for a unit that is not (yet) a zone itself (with ``persist``, for
    every unit, its own zone open or not); ``eff`` is the truth."""
    rng = np.random.default_rng(seed)
    a = {u: rng.normal() * 5 for u in UNITS}
    b = {t: rng.normal() for t in YEARS}
    rows = []
    for i, u in enumerate(UNITS):
        for t in YEARS:
            own = zones.get(u, np.inf)
            eff = G if t >= own else 0.0
            for j in (i - 1, i + 1):
                v = f"u{j:02d}"
                if v in zones and t >= zones[v] and (persist or t < own):
                    eff -= G / 2
            y = 100 + a[u] + b[t] + eff + noise * rng.normal()
            rows.append(dict(unit=u, time=t, cohort=zones.get(u, np.nan), y=y, eff=eff))
    return pd.DataFrame(rows)


def _panel(df: pd.DataFrame, sources: dict[str, int] = (), covariates: tuple = ()) -> Panel:
    """The panel without the ``sources`` units, which are passed as ``sources=``."""
    sources = dict(sources)
    geo = pd.DataFrame(
        {"unit": UNITS, "lat": 30.0, "lon": [0.3 * i for i in range(N)],
         "region": [f"R{i // 10}" for i in range(N)]}
    )  # fmt: skip
    adj = pd.DataFrame({"unit": UNITS[:-1], "neighbour": UNITS[1:]})
    src = geo[geo["unit"].isin(sources)].assign(cohort=lambda d: d["unit"].map(sources))
    return Panel.from_frame(
        df[~df["unit"].isin(sources)],
        unit="unit", time="time", cohort="cohort", outcomes="y",
        geography=geo[~geo["unit"].isin(sources)], adjacency=adj,
        sources=src if len(src) else None, never_values=(), covariates=covariates,
    )  # fmt: skip


def _fit(p: Panel, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spillover.fit(p, outcome="y", rng=0, **{"n_boot": 0, **kw})


def _est(res) -> pd.Series:
    return res.terms.set_index("term")["estimate"]


# the breaker's world: three zones in the sample, u32 a source zone opening in 2003
ZONES = {"u05": 2004, "u15": 2006, "u25": 2005}
SOURCE = {"u32": 2003}


def test_pure_relocation_with_a_source_inside_the_window_has_share_one():
    df = _world({**ZONES, **SOURCE})
    res = _fit(_panel(df, SOURCE))
    e = _est(res)
    # truths from _world: zones open 6, 4 and 5 years (+10 each), each of their two
    # neighbours loses 5 those years; u31 and u33 lose 5 a year in 2003-2009 to u32
    assert e["direct_total"] == pytest.approx(150.0, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-150.0, abs=1e-9)
    assert e["net"] == pytest.approx(0.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)  # was 1.4667
    assert e["spillover_from_sources_total"] == pytest.approx(-70.0, abs=1e-9)
    assert e["spillover_from_sources"] == pytest.approx(-5.0, abs=1e-9)
    row = res.pieces.set_index("piece").loc["spillover_from_sources"]
    assert row["n_target_unit_periods"] == 14 and row["total"] == pytest.approx(-70.0, abs=1e-9)
    # the region check keeps the source's losses (-70 with the zones' +0): said in info
    assert e["net_region_did"] == pytest.approx(-70.0, abs=1e-9)
    assert "net + spillover_from_sources_total" in res.info["net_region_did_sources_note"]
    assert e["net_region_did"] == pytest.approx(e["net"] + e["spillover_from_sources_total"])


def test_a_unit_exposed_by_a_source_and_a_sample_zone_is_named_and_bounded():
    # referee J (session 46): a unit between a source and a sample zone stays in the ring
    # piece, so its whole loss, the source's half included, was in net without a word (a
    # share of 2.0 for a true 1 in its smallest world). u33 sits between the source u32
    # (2003) and the sample zone u34 (2005): 2003-04 source-only (-5 a year), 2005-09 both
    # (-5 to each zone: -10 a year, 5 joint rows, -50, half of it u32's)
    df = _world({**ZONES, **SOURCE, "u34": 2005})
    p = _panel(df, SOURCE)
    with pytest.warns(
        UserWarning, match=r"5 estimated target unit-period\(s\) of the ring pieces"
    ) as rec:
        res = spillover.fit(p, outcome="y", rng=0, n_boot=0)
    e, info = _est(res), res.info
    # the sample's zones: 150 + u34's 5 years x 10; losses: 150 + u35's 25 + u33's 50
    assert e["direct_total"] == pytest.approx(200.0, abs=1e-9)
    assert e["net"] == pytest.approx(-25.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.125, abs=1e-10)
    assert e["spillover_from_sources_total"] == pytest.approx(-45.0, abs=1e-9)  # u31, u33
    assert info["n_joint_source_unit_periods"] == 5
    assert info["joint_source_total"] == pytest.approx(-50.0, abs=1e-9)
    # equal split: u33's intensity is 1/2 from each zone, so half is the source's
    assert info["joint_source_outside_part"] == pytest.approx(-25.0, abs=1e-9)
    # the bounds 0.875 (all of it the source's) and 1.125, and 1 under the equal split
    note = info["joint_source_note"]
    assert "reads 0.875 with their total effect out" in note and "1.125 as reported" in note
    assert "and 1 with the outside zones' part" in note
    assert any("joint_source_total" in str(w.message) for w in rec)
    # a verdict on net or the share carries the note; one on the direct effect does not
    assert note in _with_net_note("x", res, "displacement_share")
    assert note in _with_net_note("x", res, "net") and _with_net_note("x", res, "direct") == "x"
    # the totals scale with the outcome; the note's shares do not
    twice = res.rescaled(2.0).info
    assert twice["joint_source_total"] == pytest.approx(-100.0, abs=1e-9)
    assert twice["joint_source_outside_part"] == pytest.approx(-50.0, abs=1e-9)
    # referee M (session 48): weighted fits gave NaN totals; they are weighted totals now,
    # as net and the direct total are. u33 weighs 2.5, every other unit 1: its 5 joint rows
    # total -125 (half of it u32's under the equal split), net -25 - 1.5 x 50 = -100, so
    # the share reads 1.5 as reported and 0.875 with all of it out of net, as unweighted
    wdf = df.assign(pop=np.where(df["unit"] == "u33", 2.5, 1.0))
    wres = _fit(_panel(wdf, SOURCE, covariates=("pop",)), weights="pop")
    we, winfo = _est(wres), wres.info
    assert we["net"] == pytest.approx(-100.0, abs=1e-9)
    assert winfo["joint_source_total"] == pytest.approx(-125.0, abs=1e-9)
    assert winfo["joint_source_outside_part"] == pytest.approx(-62.5, abs=1e-9)
    assert "reads 0.875 with their total effect out" in winfo["joint_source_note"]
    assert "1.5 as reported" in winfo["joint_source_note"]
    # without such a unit nothing is said
    plain = _fit(_panel(_world({**ZONES, **SOURCE}), SOURCE))
    assert "n_joint_source_unit_periods" not in plain.info
    # the CS base counts them but has no per-target effects to total
    cs = _fit(p, base_estimator="callaway_santanna")
    assert cs.info["n_joint_source_unit_periods"] == 5
    assert np.isnan(cs.info["joint_source_total"])
    assert "reads" not in cs.info["joint_source_note"]


def test_the_joint_source_note_does_not_place_the_effect_in_a_net_that_is_not_estimated():
    # session 46 left this: with pre_exposed="keep" and a zone unit exposed before its own
    # zone (u35, next to u34) net is NaN, and the note said the joint targets' effect "is
    # in net"
    df = _world({**ZONES, **SOURCE, "u34": 2005, "u35": 2008})
    res = _fit(_panel(df, SOURCE), pre_exposed="keep")
    assert np.isnan(_est(res)["net"])
    note = res.info["joint_source_note"]
    assert "would count in net and the displacement share (not estimated by this fit)" in note
    assert "is in net" not in note and "reads" not in note
    # where net is estimated the note says it is there
    assert "whole effect is in net" in _fit(_panel(df, SOURCE)).info["joint_source_note"]


def test_a_sample_zone_without_a_gain_shares_losses_like_a_source():
    # a reviewer (session 46): u32 is a zone of the sample whose outcome is missing from
    # its opening on, so its gain is in no total and its neighbours' source-only rows go
    # to spillover_from_sources, as if it were given in sources=. u33, between it and u34,
    # must be counted and bounded as in the test above (the same truths), not left in net
    # without a word
    df = _world({**ZONES, "u32": 2003, "u34": 2005})
    df.loc[(df["unit"] == "u32") & (df["time"] >= 2003), "y"] = np.nan
    res = _fit(_panel(df))
    e, info = _est(res), res.info
    assert e["displacement_share"] == pytest.approx(1.125, abs=1e-10)
    assert e["spillover_from_sources_total"] == pytest.approx(-45.0, abs=1e-9)
    assert info["n_joint_source_unit_periods"] == 5
    # -50 in all, half of it u32's under the equal split (1e-9: least squares near 100)
    assert info["joint_source_total"] == pytest.approx(-50.0, abs=1e-9)
    assert info["joint_source_outside_part"] == pytest.approx(-25.0, abs=1e-9)


def test_a_loss_piece_without_estimated_targets_keeps_the_bounds():
    # a reviewer: spillover_on_zones has targets (u37, exposed by u38 before its own zone)
    # but none imputable (u37 unobserved before 2003); that piece then has no scoring,
    # which had switched the whole fit to the count-only fallback (NaN totals)
    zones = {**ZONES, **SOURCE, "u34": 2005, "u38": 2003, "u37": 2006}
    df = _world(zones)
    df.loc[(df["unit"] == "u37") & (df["time"] < 2003), "y"] = np.nan
    res = _fit(_panel(df, SOURCE))
    assert res.pieces.set_index("piece").loc["spillover_on_zones", "n_target_unit_periods"] == 0
    assert res.info["n_joint_source_unit_periods"] == 5
    assert res.info["joint_source_total"] == pytest.approx(-50.0, abs=1e-9)
    assert res.info["joint_source_outside_part"] == pytest.approx(-25.0, abs=1e-9)
    assert "estimated target" in res.info["joint_source_note"]


def test_naive_keeps_cs_warning_on_a_unit_seen_once():
    # naive is CS's own att on the user's panel, whose cohort shares such a unit moves
    # (10.345 with it, 10.298 without, in this world): CS's warning must reach the user
    df = _world({**ZONES, "u70": 2004})
    df.loc[(df["unit"] == "u70") & (df["time"] != 2009), "y"] = np.nan
    with pytest.warns(UserWarning, match=r"\(first 'u70'\) have 'y' in one period only"):
        spillover.fit(_panel(df), outcome="y", rng=0, n_boot=0, base_estimator="callaway_santanna")


def test_the_cs_base_does_not_tell_the_user_to_drop_a_units_single_piece_row():
    # referee J: a balanced panel where a source opens in the second year leaves its
    # neighbour u31 one unexposed row in the CS ring piece; CS's "drop them from the
    # panel" (about its cohort shares, which the decomposition does not use) was shown
    df = _world({**ZONES, "u32": 2001})
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = spillover.fit(
            _panel(df, {"u32": 2001}), outcome="y", rng=0, n_boot=0,
            base_estimator="callaway_santanna",
        )  # fmt: skip
    said = [str(w.message) for w in rec]
    assert not any("in one period only" in m for m in said), said
    # the source's neighbours are named by the fit's own note, and the estimates are the
    # noise-free truths (1e-9): 150 gained, 150 lost to the sample's zones
    assert "leaves 2 unit(s) (e.g. 'u31') out of its spillover" in res.info["cs_sources_note"]
    e = _est(res)
    assert e["direct_total"] == pytest.approx(150.0, abs=1e-9)
    assert e["net"] == pytest.approx(0.0, abs=1e-9)


def test_a_zone_exposed_only_by_a_source_before_its_own_zone():
    # u33 opens 2007, next to the source u32 (2003): it loses 5 a year in 2003-2006 to the
    # source alone, so those 4 rows leave spillover_on_zones; u31 loses 5 a year 2003-2009
    df = _world({**ZONES, **SOURCE, "u33": 2007})
    res = _fit(_panel(df, SOURCE))
    e = _est(res)
    assert e["spillover_from_sources_total"] == pytest.approx(-35.0 - 20.0, abs=1e-9)
    # direct: 150 + u33's 3 years x 10; losses to the sample's zones: 150 + u34's 15
    assert e["direct_total"] == pytest.approx(180.0, abs=1e-9)
    assert e["net"] == pytest.approx(15.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1 - 15.0 / 180.0, abs=1e-10)
    assert "spillover_on_zones" not in e.index  # no zone unit exposed by the sample first
    pieces = res.pieces.set_index("piece")
    assert pieces.loc["spillover_on_zones_from_sources", "total"] == pytest.approx(-20.0)
    assert pieces.loc["spillover_from_sources", "total"] == pytest.approx(-35.0)


@pytest.mark.parametrize(
    ("seed", "controls"),
    [(1, "not_yet_exposed"), (2, "not_yet_exposed"), (3, "never_exposed")],
)
def test_the_split_leaves_every_imputation_unchanged(seed, controls):
    # noisy worlds with a zone unit exposed by a sample zone first (u06, next to u05) and
    # one exposed by the source first (u33). The same map without its links knows no
    # sources (every exposure counts as the sample's), i.e. the fit before the split: the
    # targets' imputations, so the sum of all loss totals, must agree (1e-10: the same
    # least-squares solves, only the order of the sums differs)
    df = _world({**ZONES, **SOURCE, "u33": 2007, "u06": 2008}, noise=2.0, seed=seed)
    p = _panel(df, SOURCE)
    emap = build_exposure(p, "adjacency")
    new = _est(_fit(p, exposure=emap, controls=controls))
    old = _est(_fit(p, exposure=dataclasses.replace(emap, links=None), controls=controls))
    assert "spillover_from_sources" not in old.index
    lost = ["spillover_total", "spillover_on_zones_total", "spillover_from_sources_total"]
    assert new[lost].sum() == pytest.approx(old[lost[:2]].sum(), abs=1e-10)
    assert new["direct_total"] == pytest.approx(old["direct_total"], abs=1e-10)
    # old net counted the source's losses: new net + those losses is the old net
    assert new["net"] + new["spillover_from_sources_total"] == pytest.approx(old["net"], abs=1e-10)


def test_every_inference_path_covers_the_new_term_and_no_sources_change_nothing():
    # two sources in two regions (R3, R5; 580 km apart), so that the new term's targets
    # span clusters under region clusters (the default) and a 100 km Conley kernel
    sources = {**SOURCE, "u52": 2005}
    df = _world({**ZONES, **sources, "u33": 2007}, noise=2.0)
    res = _fit(_panel(df, sources), n_boot=199)
    terms = ["spillover_from_sources", "spillover_from_sources_total"]
    wild = res.with_inference("wild", n_boot=199, rng=1)
    for r in (res, wild, res.with_inference("conley", conley_km=100.0)):
        t = r.terms.set_index("term")
        assert (t.loc[terms, "se"] > 0).all() and np.isfinite(t.loc[terms, "se"]).all()
        assert np.isfinite(r.conf_int().loc[terms].to_numpy()).all()
    # the wild bootstrap inverts its own test for the new terms too
    assert set(terms) <= set(wild.info["wild_terms"])
    w = wild.terms.set_index("term").loc[terms, ["ci_low", "ci_high", "p_value"]]
    assert np.isfinite(w.to_numpy()).all()
    assert np.isfinite(res.draws["spillover_from_sources_total"]).all()
    # without sources: the map's sample onsets are its onsets, no source term, and the
    # terms are those of the code before the split (reference numbers from it, commit
    # c17823d, 1e-12 relative: the same arithmetic)
    p = _panel(_world({**ZONES, "u32": 2003, "u33": 2007}, noise=2.0))
    emap = build_exposure(p, "adjacency")
    assert emap.sample_onset().equals(emap.onset.rename("exposure_onset_sample"))
    t = _fit(p, exposure=emap, n_boot=199, cluster="unit").terms.set_index("term")
    assert not any(k.startswith("spillover_from") for k in t.index)
    for term, (est, se) in REFERENCE_NO_SOURCES.items():
        assert t.at[term, "estimate"] == pytest.approx(est, rel=1e-12)
        assert t.at[term, "se"] == pytest.approx(se, rel=1e-12)


# spillover.fit on the no-sources world above with the code before the split (c17823d)
REFERENCE_NO_SOURCES: dict[str, tuple[float, float]] = {
    "direct": (10.704668926720096, 0.7092168863076483),
    "spillover": (-5.0244058711799156, 0.6253408833961548),
    "direct_total": (267.6167231680024, 17.730422157691216),
    "spillover_total": (-200.97623484719662, 25.013635335846192),
    "net": (50.993802529336435, 31.44412294236203),
    "displacement_share": (0.8094521077544025, 0.12498656427035462),
    "naive": (11.424710480948674, 0.7221239321797451),
}


def test_callaway_santanna_base_leaves_out_units_exposed_only_by_sources():
    # u31 and u33 are exposed by the source u32 (2003) alone in all their 14 exposed
    # unit-periods: the CS base leaves them out of its ring piece, reports the first
    # test's noise-free truths (1e-9 as there) and the imputation base's target counts,
    # and leaves spillover_from_sources NaN with those 14 unidentified, said in info
    p = _panel(_world({**ZONES, **SOURCE}), SOURCE)
    note = r"leaves 2 unit\(s\) \(e.g. 'u31'\) out of its spillover pieces: in all 14 of"
    with pytest.warns(UserWarning, match=note):
        res = spillover.fit(p, outcome="y", rng=0, n_boot=0, base_estimator="callaway_santanna")
    e = _est(res)
    truths = {"direct": 10.0, "spillover": -5.0, "direct_total": 150.0,
              "spillover_total": -150.0, "net": 0.0}  # fmt: skip
    for term, value in truths.items():
        assert e[term] == pytest.approx(value, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)
    assert "spillover_from_sources" in res.info["cs_sources_note"]
    cs_pieces = res.pieces.set_index("piece")
    imp_pieces = _fit(p).pieces.set_index("piece")
    for piece in ("direct", "spillover:adjacent"):
        assert (
            cs_pieces.at[piece, "n_target_unit_periods"]
            == imp_pieces.at[piece, "n_target_unit_periods"]
        )
    src = cs_pieces.loc["spillover_from_sources"]
    assert src["n_target_unit_periods"] == 0 and src["n_unidentified"] == 14
    assert np.isnan(src["total"])
    # with noise, the default inference (the jackknife over the 8 regions) covers them
    noisy = _fit(_panel(_world({**ZONES, **SOURCE}, noise=2.0), SOURCE),
                 base_estimator="callaway_santanna", n_boot=199)  # fmt: skip
    se = noisy.terms.set_index("term")["se"]
    terms = ["direct", "spillover", "net", "displacement_share"]
    assert (se[terms] > 0).all() and np.isfinite(se[terms]).all()
    assert noisy.info["small_sample"] == "cv3"


def test_callaway_santanna_base_splits_off_a_zone_units_source_only_rows():
    # the zone u33 (2007) is exposed by the source alone in 2003-06. drop_rows leaves it no
    # base period 2006 and no cohort-mate: CS used to miss its gain of 30 while u34's loss
    # to it counted (net -15 for a true 15, a reviewer's world), so this was refused. Its
    # direct cohort now follows 2002, its last untreated year, and its four source-only
    # rows are blanked in spillover_on_zones and counted unestimated under the source
    # piece. Noise-free, both bases give the world's numbers (1e-9): net 15, share 11/12
    zones = {**ZONES, **SOURCE, "u33": 2007}
    p = _panel(_world(zones), SOURCE)
    cs, imp = _fit(p, base_estimator="callaway_santanna"), _fit(p)
    for r in (cs, imp):
        e = _est(r)
        for term, value in {"direct_total": 180.0, "spillover_total": -165.0, "net": 15.0,
                            "displacement_share": 1 - 15 / 180}.items():  # fmt: skip
            assert e[term] == pytest.approx(value, abs=1e-9)
    row = cs.pieces.set_index("piece").loc["spillover_on_zones_from_sources"]
    assert (row["n_target_unit_periods"], row["n_unidentified"]) == (0, 4)
    assert "'u33'" in cs.info["cs_sources_note"]


def test_callaway_santanna_base_blanks_the_source_only_rows_of_a_mixed_unit():
    # u33 is exposed by the source u32 alone in 2003-06 and also by the zone u34 from 2007
    # (it was refused: a cohort from its onset could not hold the four source-only rows
    # apart). The CS base keeps u33 in its ring piece with those rows' outcome blanked, so
    # it enters only the ATT(g,t) of 2007-09, long differences from 2002, which is what the
    # imputation base imputes from. Noise-free, both bases give the world's numbers (1e-9):
    # u34's gain 30, the rings' -195 (u33's 2007-09 rows lose 10 a year, to u34 and to the
    # source, which the imputation convention counts), net -15
    zones = {**ZONES, **SOURCE, "u34": 2007}
    p = _panel(_world(zones), SOURCE)
    cs = _fit(p, base_estimator="callaway_santanna")
    bjs = _fit(p)
    for term, value in {"direct_total": 180.0, "spillover_total": -195.0, "net": -15.0}.items():
        assert _est(cs)[term] == pytest.approx(value, abs=1e-9)
        assert _est(bjs)[term] == pytest.approx(value, abs=1e-9)
    counts = ["n_target_unit_periods", "n_unidentified"]
    for res, expected in ((cs, [0, 11]), (bjs, [11, 0])):
        piece = res.pieces.set_index("piece").loc["spillover_from_sources", counts]
        assert piece.tolist() == expected  # u31's 7 rows and u33's 4
    assert "leaves 1 unit(s) (e.g. 'u31')" in cs.info["cs_sources_note"]
    assert (
        "leaves 4 exposed unit-period(s) of 1 other unit(s) (e.g. 'u33')"
        in (cs.info["cs_sources_note"])
    )
    # with noise the default jackknife gives every term a finite, positive SE
    noisy = _fit(_panel(_world(zones, noise=1.0), SOURCE), base_estimator="callaway_santanna")
    se = noisy.terms.set_index("term")["se"]
    terms = ["direct", "spillover", "net", "displacement_share"]
    assert (se[terms] > 0).all() and np.isfinite(se[terms]).all()


def test_callaway_santanna_base_leaves_out_zones_without_an_untreated_row():
    # u33 (2005) is exposed since 1995 by the source u32, so under drop_rows it has no
    # untreated row: neither base counts its gain (5 unit-periods), and u34, exposed by u33
    # alone in 2005-09, leaves net in both. Before, the CS base counted u33's gain from
    # its cohort's cell and refused the fit for u34's rows. Noise-free truths as in the
    # first test (1e-9); the pieces' counts equal the imputation base's
    p = _panel(_world({**ZONES, "u32": 1995, "u33": 2005}), {"u32": 1995})
    cs, imp = _fit(p, base_estimator="callaway_santanna"), _fit(p)
    for term, value in {"direct_total": 150.0, "spillover_total": -150.0, "net": 0.0}.items():
        assert _est(cs)[term] == pytest.approx(value, abs=1e-9)
        assert _est(imp)[term] == pytest.approx(value, abs=1e-9)
    assert _est(cs)["displacement_share"] == pytest.approx(1.0, abs=1e-10)
    counts = ["n_target_unit_periods", "n_unidentified"]
    c, i = cs.pieces.set_index("piece"), imp.pieces.set_index("piece")
    for piece in ("direct", "spillover:adjacent"):
        assert c.loc[piece, counts].tolist() == i.loc[piece, counts].tolist()
    assert c.loc["direct", counts].tolist() == [15, 5]
    # the source pieces: the imputation base estimates u34's 5 rows; the CS base leaves
    # them unidentified with u31's 10 (exposed from the first year under both)
    assert i.loc["spillover_from_sources", counts].tolist() == [5, 10]
    assert c.loc["spillover_from_sources", counts].tolist() == [0, 15]
    assert "1 unit(s) (e.g. 'u34')" in cs.info["cs_sources_note"]


def test_callaway_santanna_base_with_a_source_before_the_data():
    # a source opening before the data exposes from the first period: nothing to split
    res = _fit(_panel(_world({**ZONES, "u32": 1995}), {"u32": 1995}),
               base_estimator="callaway_santanna")  # fmt: skip
    assert "spillover_from_sources" not in res.terms["term"].tolist()


def _dask_panel(p: Panel, tmp_path):
    """The panel's rows as a Parquet file read back by the Dask engine (two partitions)."""
    zd = pytest.importorskip("zoneimpact.distributed")
    d = p.data[["unit", "time", "cohort", "y"]].copy()
    d["cohort"] = d["cohort"].fillna(np.inf)
    d.to_parquet(tmp_path / "part-0.parquet", index=False)
    return zd.read_panel(str(tmp_path / "*.parquet"), unit="unit", time="time", outcomes=["y"],
                         cohort="cohort", never_values=(), npartitions=2)  # fmt: skip


def _dask_equals_memory(p: Panel, emap, base: str, dp, **kw):
    """The Dask fit of ``dp`` (``p``'s rows) and the in-memory fit with the same options
    (unit clusters, no small-sample correction, and ``kw``), after asserting that they agree: terms and
    SEs to 1e-10 (the same formulas, sums in another order), the pieces table, and the
    notes (the in-memory net_region_did, which Dask does not compute, aside)."""
    zd = pytest.importorskip("zoneimpact.distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = zd.spillover(dp, outcome="y", exposure=emap, base_estimator=base, n_boot=0, **kw)
    mem = _fit(p, exposure=emap, small_sample="none", cluster="unit", base_estimator=base, **kw)
    a, b = res.terms.set_index("term"), mem.terms.set_index("term")
    assert a.index.tolist() == [t for t in b.index if t != "net_region_did"]
    for col in ("estimate", "se"):
        assert np.allclose(a[col], b.loc[a.index, col], rtol=1e-10, atol=1e-10, equal_nan=True)
    cols = ["piece", "n_target_unit_periods", "n_unidentified", "unidentified_by_period",
            "left_out_periods"]  # fmt: skip
    assert res.pieces[cols].equals(mem.pieces[cols].iloc[: len(res.pieces)])
    for key in ("net_note", "cs_sources_note", "net_unobserved_note", "share_note"):
        assert res.info.get(key) == mem.info.get(key)
    # the outcome's scale (the share's rounding rule, claims' pre_mean margins): pooled
    # moments against numpy's two-pass mean and SD, to 1e-12 relative
    for key in ("pre_mean", "outcome_sd"):
        assert res.info[key] == pytest.approx(mem.info[key], rel=1e-12, nan_ok=True)
    assert res.info["n_unidentified_direct"] == mem.info["n_unidentified_direct"]
    return res, mem


@pytest.mark.parametrize("base", ["imputation", "callaway_santanna"])
def test_dask_engine_splits_off_source_only_targets_as_in_memory(tmp_path, base):
    # the breaker's world: u32's 14 source-only rows (u31 and u33 in 2003-09). The
    # imputation base reports them apart; the CS base leaves u31 and u33 (exposed by u32
    # alone) out of its ring piece and counts the rows unestimated. Truths of the first
    # test (1e-9); terms, SEs, piece counts and notes equal to the in-memory fit with unit
    # clusters and no small-sample correction (1e-10)
    zd = pytest.importorskip("zoneimpact.distributed")
    p = _panel(_world({**ZONES, **SOURCE}, noise=1.0), SOURCE)
    emap = build_exposure(p, "adjacency")
    res, _ = _dask_equals_memory(p, emap, base, _dask_panel(p, tmp_path))
    counts = ["n_target_unit_periods", "n_unidentified"]
    expected = [14, 0] if base == "imputation" else [0, 14]
    assert res.pieces.set_index("piece").loc["spillover_from_sources", counts].tolist() == expected
    (tmp_path / "exact").mkdir()
    exact = _dask_panel(_panel(_world({**ZONES, **SOURCE}), SOURCE), tmp_path / "exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = _est(zd.spillover(exact, outcome="y", exposure=emap, base_estimator=base,
                              n_boot=0))  # fmt: skip
    for term, value in {
        "direct_total": 150.0,
        "spillover_total": -150.0,
        "displacement_share": 1.0,
    }.items():
        assert e[term] == pytest.approx(value, abs=1e-9)  # fmt: skip
    if base == "imputation":
        assert e["spillover_from_sources_total"] == pytest.approx(-70.0, abs=1e-9)


def test_dask_cs_base_splits_off_a_zone_units_source_only_rows_as_in_memory(tmp_path):
    # the world above (a zone exposed by the source before its own), with noise: terms,
    # SEs, pieces table and notes equal to the in-memory fit (1e-10, _dask_equals_memory)
    p = _panel(_world({**ZONES, **SOURCE, "u33": 2007}, noise=1.0), SOURCE)
    res, _ = _dask_equals_memory(
        p, build_exposure(p, "adjacency"), "callaway_santanna", _dask_panel(p, tmp_path)
    )
    row = res.pieces.set_index("piece").loc["spillover_on_zones_from_sources"]
    assert (row["n_target_unit_periods"], row["n_unidentified"]) == (0, 4)


def test_dask_cs_base_blanks_a_mixed_units_source_only_rows_as_in_memory(tmp_path):
    # u33 exposed by the source alone in 2003-06 and by the zone u34 from 2007, with noise
    # and u14's 2007 outcome missing: both engines keep u33 with its four source-only rows
    # blanked in the ring piece; terms, SEs, pieces and notes agree (1e-10)
    df = _unobserved(_world({**ZONES, **SOURCE, "u34": 2007}, noise=1.0), "u14", [2007])
    p = _panel(df, SOURCE)
    emap = build_exposure(p, "adjacency")
    res, _ = _dask_equals_memory(p, emap, "callaway_santanna", _dask_panel(p, tmp_path))
    assert "of 1 other unit(s) (e.g. 'u33')" in res.info["cs_sources_note"]
    assert np.isfinite(res.terms.set_index("term").loc["spillover", "estimate"])


def test_dask_engine_leaves_out_zones_without_an_untreated_row_as_in_memory(tmp_path):
    # u33 (2005) has no untreated row (exposed since 1995 by the source u32); u34 is also
    # exposed by the zone u35 (2004), so nothing is source-only and the Dask engine fits.
    # Both engines leave u33's 5 rows out of the CS direct piece and agree on every term
    # (unit clusters, analytic SEs: 1e-10, the same cells in another order of sums)
    zd = pytest.importorskip("zoneimpact.distributed")
    p = _panel(_world({**ZONES, "u32": 1995, "u33": 2005, "u35": 2004}, noise=1.0), {"u32": 1995})
    emap = build_exposure(p, "adjacency")
    dp = _dask_panel(p, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dask = zd.spillover(dp, outcome="y", exposure=emap, base_estimator="callaway_santanna",
                            n_boot=0)  # fmt: skip
    mem = _fit(p, exposure=emap, base_estimator="callaway_santanna", small_sample="none",
               cluster="unit")  # fmt: skip
    counts = ["n_target_unit_periods", "n_unidentified"]
    for r in (dask, mem):
        assert r.pieces.set_index("piece").loc["direct", counts].tolist() == [21, 5]
    a, b = dask.terms.set_index("term"), mem.terms.set_index("term")
    for col in ("estimate", "se"):
        assert np.allclose(a[col], b.loc[a.index, col], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("base", ["callaway_santanna", "imputation"])
def test_dask_engine_counts_units_exposed_since_before_the_data_as_in_memory(tmp_path, base):
    # the source u32 (1995) exposes u31 and the zone u33 (2006) from the first year; the
    # zones u30 (2004) and u34 (2003) expose them later. No base estimates those rows (no
    # unexposed row): u31's 2000-03 and u33's 2000-02 belong to the source pieces, u31's
    # 2004-09 to the ring, u33's 2003-05 to spillover_on_zones. Before, the Dask engine
    # counted them all under the ring and spillover_on_zones (imputation base: net's note
    # named losses net rightly leaves out) or left the ring's out (CS base: unreported).
    # Counts are exact; the terms agree as in the test above (1e-10)
    zones = {**ZONES, "u32": 1995, "u30": 2004, "u33": 2006, "u34": 2003}
    p = _panel(_world(zones, noise=1.0), {"u32": 1995})
    emap = build_exposure(p, "adjacency")
    res, _ = _dask_equals_memory(p, emap, base, _dask_panel(p, tmp_path))
    assert res.pieces.set_index("piece")["n_unidentified"].to_dict() == {
        "direct": 4, "spillover:adjacent": 6, "spillover_on_zones": 3,
        "spillover_from_sources": 4, "spillover_on_zones_from_sources": 3, "naive": 0,
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["rings", "knn"])
def test_a_source_zone_without_coordinates_is_refused_by_name(kind):
    # u5 opened 1995, before the data: dropped as always treated and kept as a source, but
    # its latitude is missing; a panel zone unit without it is refused, so is the source
    df = pd.DataFrame(
        [dict(unit=f"u{i}", time=t, cohort={"u2": 2004, "u5": 1995}.get(f"u{i}", np.nan),
              y=float(i + t)) for i in range(8) for t in range(2000, 2008)]
    )  # fmt: skip
    geo = pd.DataFrame({"unit": [f"u{i}" for i in range(8)],
                        "lat": [np.nan if i == 5 else 30.0 for i in range(8)],
                        "lon": [0.3 * i for i in range(8)]})  # fmt: skip
    p = Panel.from_frame(df, unit="unit", time="time", cohort="cohort", outcomes="y",
                         geography=geo, outside_window="adjust", never_values=())  # fmt: skip
    with pytest.raises(GeographyError, match=r"source zone 'u5': it lacks \['lat'\]"):
        if kind == "rings":
            exposure_from_rings(p, [(0, 40)])
        else:
            exposure_from_knn(p, 1)


def test_both_bases_count_the_targets_of_units_exposed_since_before_the_data():
    # breaker item 5: the source u35 opened in 1995, before the data; u34 and u36 are
    # exposed by it from the first period (no unexposed row), u34 also by the zone u33 from
    # 2006. Their 10 + 6 source-only years and u34's 4 later years cannot be imputed; the
    # CS base dropped those units from its ring panel before counting (0, no warning)
    src = {"u35": 1995}
    p = _panel(_world({**ZONES, "u33": 2006, **src}), src)
    counts = {}
    for base in ("imputation", "callaway_santanna"):
        with pytest.warns(UserWarning, match=r"'spillover_from_sources': 16 of 16 target"):
            res = spillover.fit(p, outcome="y", rng=0, n_boot=0, base_estimator=base)
        pieces = res.pieces.set_index("piece")
        lost = pieces.loc[["spillover:adjacent", "spillover_from_sources"], "n_unidentified"]
        counts[base] = lost
        assert pieces.loc["spillover_from_sources", "unidentified_by_period"].startswith("2000: 2")
        assert "spillover_from_sources" not in res.terms["term"].tolist()  # nothing estimated
    assert counts["imputation"].tolist() == counts["callaway_santanna"].tolist() == [4, 16]


def _unobserved(df: pd.DataFrame, unit: str, years: list[int]) -> pd.DataFrame:
    """``df`` with ``unit``'s outcome missing in ``years``."""
    return df.assign(y=df["y"].mask((df["unit"] == unit) & df["time"].isin(years)))


@pytest.mark.parametrize(
    ("years", "direct", "from_sources"),
    [
        # u15 (2006) never observed after it opens: its 4 x 10 gain is in no total, and its
        # neighbours' 2 x 4 x 5 losses join the source's 70
        ([2006, 2007, 2008, 2009], 110.0, -110.0),
        # u15 unobserved in 2007 alone: 10 of its gain, and its neighbours' 2007 losses
        ([2007], 140.0, -80.0),
    ],
)
def test_a_zone_unobserved_after_it_opens_is_a_source_in_those_periods(years, direct, from_sources):
    # reviewer's item: the neighbours' losses stayed in net while the zone's gain was in no
    # total (share 1.364 and 1.071 on the old code for a true 1 under pure relocation)
    res = _fit(_panel(_unobserved(_world({**ZONES, **SOURCE}), "u15", years), SOURCE))
    e = _est(res)
    assert e["direct_total"] == pytest.approx(direct, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-direct, abs=1e-9)
    assert e["net"] == pytest.approx(0.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)
    assert e["spillover_from_sources_total"] == pytest.approx(from_sources, abs=1e-9)
    # every loss is counted once: the ring and source pieces hold all 150 + 70 of them
    assert e["spillover_total"] + e["spillover_from_sources_total"] == pytest.approx(-220.0)


def test_a_neighbour_of_an_unobserved_and_an_observed_zone_stays_in_the_rings():
    # u16 lies between u15 and u17 (both 2006): in 2007, with u15 unobserved, u16's loss of
    # 10 stays in spillover_total (u17 is observed; the loss cannot be split without a
    # model, module notes) while u14's 5 goes to the source term. Gains 60 + 40 + 50 + 40
    # less u15's 10; losses 190 less u14's 5; the source u32's 70
    df = _unobserved(_world({**ZONES, **SOURCE, "u17": 2006}), "u15", [2007])
    e = _est(_fit(_panel(df, SOURCE)))
    assert e["direct_total"] == pytest.approx(180.0, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-185.0, abs=1e-9)
    assert e["net"] == pytest.approx(-5.0, abs=1e-9)
    assert e["spillover_from_sources_total"] == pytest.approx(-75.0, abs=1e-9)


def test_both_bases_split_off_a_zone_unobserved_after_it_opens():
    # no source zone: only u15's missing 2007 makes u14's and u16's 2007 rows source-only
    # (their 2006, 2008 and 2009 rows count). The imputation base reports them apart; the
    # CS base refused, and now blanks them in its ring piece (a mixed unit's source-only
    # rows): noise-free, both give u15's other years' gain against its neighbours' losses
    # then, share 1 (1e-9)
    p = _panel(_unobserved(_world(ZONES), "u15", [2007]))
    bjs, cs = _fit(p), _fit(p, base_estimator="callaway_santanna")
    assert _est(bjs)["spillover_from_sources_total"] == pytest.approx(-10.0, abs=1e-9)
    for res in (bjs, cs):
        e = _est(res)
        assert e["direct_total"] == pytest.approx(140.0, abs=1e-9)
        assert e["spillover_total"] == pytest.approx(-140.0, abs=1e-9)
        assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)
    row = cs.pieces.set_index("piece").loc["spillover_from_sources"]
    assert row[["n_target_unit_periods", "n_unidentified"]].tolist() == [0, 2]
    assert "2 exposed unit-period(s) of 2 unit(s) (e.g. 'u14')" in cs.info["cs_sources_note"]


@pytest.mark.parametrize(
    ("missing", "pre_exposed"),
    [
        # u15 (2006) observed only after it opens: no untreated row of its own, so its
        # gain is not imputed (breaker's item 1: share 1.364 on the code before)
        (list(range(2000, 2006)), "drop_rows"),
        (list(range(2000, 2006)), "keep"),
    ],
)
def test_a_zone_without_an_untreated_row_is_a_source(missing, pre_exposed):
    df = _unobserved(_world({**ZONES, **SOURCE}), "u15", missing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(
            _panel(df, SOURCE), outcome="y", rng=0, n_boot=0, pre_exposed=pre_exposed
        )
    e = _est(res)
    # u15's 4 x 10 gain is in no total, nor its neighbours' 2 x 4 x 5 losses
    assert e["direct_total"] == pytest.approx(110.0, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-110.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)
    assert e["spillover_from_sources_total"] == pytest.approx(-110.0, abs=1e-9)


def test_a_zone_exposed_since_before_the_data_by_a_source_is_a_source():
    # u16 is a source opened in 1995, so u15 (2006) is exposed from the first period and
    # drop_rows leaves it no untreated row: its gain is not imputed (breaker's share 1.18)
    src = {"u16": 1995}
    e = _est(_fit(_panel(_world({**ZONES, **src}), src)))
    assert e["net"] == pytest.approx(0.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)


def test_zones_exposed_panel_counts_the_rows_the_fit_splits_alike():
    # u16 (2008) next to u15 (2006) is exposed before its own zone in 2006-07; with u15
    # unobserved in 2007 that row is spillover_on_zones_from_sources's, not the piece's
    # (breaker's item 6: 2 on the code before, the fit's pieces 1 + 1)
    p = _panel(_unobserved(_world({**ZONES, "u16": 2008}), "u15", [2007]))
    _, n = spillover.zones_exposed_panel(p, "y", build_exposure(p, "adjacency"), "not_yet_exposed")
    pieces = _fit(p).pieces.set_index("piece")["n_target_unit_periods"]
    assert n == pieces["spillover_on_zones"] == 1
    assert pieces["spillover_on_zones_from_sources"] == 1


def test_a_map_without_links_warns_when_a_zone_has_no_estimated_gain():
    p = _panel(_unobserved(_world(ZONES), "u15", [2007]))
    emap = dataclasses.replace(build_exposure(p, "adjacency"), links=None)
    with pytest.warns(UserWarning, match=r"1 zone unit-period\(s\) after opening") as rec:
        res = spillover.fit(p, outcome="y", rng=0, n_boot=0, exposure=emap)
    assert any(w.filename == __file__ for w in rec if "after opening" in str(w.message))
    # the loss against no gain stays in net: -10 (a true 0), as the warning says
    assert _est(res)["net"] == pytest.approx(-10.0, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        spillover.fit(_panel(_world(ZONES)), outcome="y", rng=0, n_boot=0, exposure=emap)


def test_an_unobserved_neighbour_is_named_with_the_loss_net_leaves_out():
    # breaker's item 3: u14 (next to u15, 2006) has no outcome in 2007; the zone's gain is
    # counted, u14's loss of 5 is in no total: share 0.9667 for a true 1, said in a warning
    p = _panel(_unobserved(_world(ZONES), "u14", [2007]))
    with pytest.warns(UserWarning, match=r"1 exposed unit-period\(s\) have no outcome") as rec:
        res = spillover.fit(p, outcome="y", rng=0, n_boot=0)
    assert any(w.filename == __file__ for w in rec if "have no outcome" in str(w.message))
    e = _est(res)
    assert e["net"] == pytest.approx(5.0, abs=1e-9)
    # the guess is the count times the ring's mean (-5 exactly in this noise-free world)
    assert "net would change by about -5:" in res.info["net_unobserved_note"]
    assert "net_unobserved_note" not in _fit(_panel(_world(ZONES))).info


def test_the_unobserved_neighbours_guess_is_a_weighted_sum_under_weights():
    # a reviewer's world: every unit weighs 1000, so totals are weighted sums (net +5000
    # for a true 0) and the guess must be too (it said -5, a thousand times too small)
    df = _unobserved(_world(ZONES), "u14", [2007]).assign(w=1000.0)
    geo = pd.DataFrame({"unit": UNITS, "lat": 30.0, "lon": [0.3 * i for i in range(N)]})
    adj = pd.DataFrame({"unit": UNITS[:-1], "neighbour": UNITS[1:]})
    p = Panel.from_frame(df, unit="unit", time="time", cohort="cohort", outcomes="y",
                         covariates=["w"], geography=geo, adjacency=adj, never_values=())  # fmt: skip
    res = _fit(p, weights="w")
    assert _est(res)["net"] == pytest.approx(5000.0, abs=1e-6)
    assert "net would change by about -5000:" in res.info["net_unobserved_note"]
    # under pre_exposed="keep" with a zone exposed before its own, net is not reported,
    # and neither is the note (u16, 2008, next to u15, 2006)
    df2 = _unobserved(_world({**ZONES, "u16": 2008}), "u14", [2007])
    kept = _fit(_panel(df2), pre_exposed="keep")
    assert np.isnan(_est(kept)["net"]) and "net_unobserved_note" not in kept.info
    assert "net_unobserved_note" in _fit(_panel(df2)).info


def test_fit_passes_knn_among_to_the_map():
    # spillover.fit(exposure="knn", knn_among=...) builds exposure_from_knn's map with that
    # convention. On the line, the zone u33 sits next to the source u32: among places its
    # two nearest are u32 and u34; among panel units u34 and the tie u31 / u35 (0.6 degrees)
    p = _panel(_world({**ZONES, "u32": 2003, "u33": 2007}, noise=2.0), SOURCE)
    for among in ("places", "panel"):
        by_name = _fit(p, exposure="knn", k_nearest=2, knn_among=among)
        prebuilt = _fit(p, exposure=exposure_from_knn(p, 2, among=among))
        # the same map through two doors: identical numbers (exact: same computation)
        pd.testing.assert_frame_equal(by_name.terms, prebuilt.terms)
    places = _fit(p, exposure="knn", k_nearest=2)  # default: among places
    panel = _fit(p, exposure="knn", k_nearest=2, knn_among="panel")
    # u31 and u35 join u33's exposed units only among panel units (u31 is the source's too)
    assert panel.info["n_exposed_units"] == places.info["n_exposed_units"] + 1
    with pytest.raises(SpecError, match=r"knn_among must be one of 'places', 'panel'.*'nearest'"):
        _fit(p, exposure="adjacency", knn_among="nearest")


def test_pieces_with_targets_left_out_are_named_in_one_warning():
    # the world above leaves out targets of the direct and the source piece: one warning
    # names both with their counts (before, one warning per piece; a fit with sources gave
    # five), and net's own warning stays apart
    p = _panel(_world({**ZONES, "u32": 1995, "u33": 2005}), {"u32": 1995})
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        spillover.fit(p, outcome="y", rng=0, n_boot=0)
    left = [str(w.message) for w in rec if "target unit-periods left out" in str(w.message)]
    assert len(left) == 1
    assert "Piece 'direct': 5 of 20 target unit-periods left out" in left[0]
    assert "Piece 'spillover_from_sources': 10 of 15 target" in left[0]
    assert sum(str(w.message).startswith("Net and displacement_share") for w in rec) == 1
    # only the CS base leaves source rows out for its own reason, and only it says so
    assert "cs_sources_note" not in left[0]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        spillover.fit(p, outcome="y", rng=0, n_boot=0, base_estimator="callaway_santanna")
    left = [str(w.message) for w in rec if "target unit-periods left out" in str(w.message)]
    assert len(left) == 1 and "info['cs_sources_note']" in left[0]


def test_zones_without_untreated_rows_name_the_earlier_exposure():
    # the source u32 (1995) exposes both zones (u31 2006, u33 2005) from the first year, so
    # under drop_rows no zone unit keeps an untreated row: the refusal says why, with a unit
    for base in ("imputation", "callaway_santanna"):
        p = _panel(_world({"u32": 1995, "u33": 2005, "u31": 2006}), {"u32": 1995})
        with pytest.raises(EstimationError, match=r"2 of the 2 zone unit\(s\) observed after "
                           r"opening are exposed by an earlier zone before their own, e\.g\. "
                           r"'u31' from 2000"):  # fmt: skip
            _fit(p, base_estimator=base)


def _nan(df: pd.DataFrame, unit: str, years) -> pd.DataFrame:
    """``df`` with ``unit``'s outcome missing in ``years``."""
    at = (df["unit"] == unit) & df["time"].isin(list(years))
    return df.assign(y=df["y"].mask(at))


def _rings(p: Panel):
    # 0.3 degree of longitude at 30N is 28.9 km: the first ring holds the next unit on
    # each side, the second the one after
    return exposure_from_rings(p, [(0, 35), (35, 70)])


@pytest.mark.parametrize(
    ("zones", "sources", "missing", "kind", "base"),
    [
        # u31, exposed by the source u32 (2003) and the zone u30 (2006), has no outcome
        # once u30 opens: its observed exposed rows are all source-only, so the CS base
        # leaves it out (both engines; Dask once read the map's cells and refused)
        ({**ZONES, "u30": 2006}, {"u32": 2003}, [("u31", range(2006, 2010))], "adjacency",
         "callaway_santanna"),
        # u31 exposed by u32 alone with no outcome from 2003: not a left-out unit (no
        # observed target), so the note names u33 alone
        (ZONES, {"u32": 2003}, [("u31", range(2003, 2010))], "adjacency",
         "callaway_santanna"),
        # a ring whose units are source-only or exposed since the first year: no CS piece
        # (Dask once kept it and CS failed on a piece without a cohort)
        ({"u00": 2004, "u01": 2006}, {"u03": 1995, "u10": 2003}, [], "adjacency",
         "callaway_santanna"),
        # the second ring's counted units have no outcome once exposed: an empty ring piece,
        # as in memory (Dask once dropped it)
        ({"u10": 2004, "u20": 2006}, {"u32": 2003},
         [(u, range(g, 2010)) for u, g in (("u08", 2004), ("u12", 2004), ("u18", 2006),
                                           ("u22", 2006))], "rings", "imputation"),
    ],
)  # fmt: skip
def test_dask_engine_reads_observed_targets_as_in_memory(
    tmp_path, zones, sources, missing, kind, base
):
    # a reviewer's worlds: the in-memory rules count targets (rows with an outcome) and
    # keep a ring piece by the map's cells; the Dask engine gives the same pieces, terms,
    # SEs (unit clusters, no small-sample correction: 1e-10) and notes
    df = _world({**zones, **sources}, noise=1.0)
    for unit, years in missing:
        df = _nan(df, unit, years)
    p = _panel(df, sources)
    emap = _rings(p) if kind == "rings" else build_exposure(p, "adjacency")
    _dask_equals_memory(p, emap, base, _dask_panel(p, tmp_path))


@pytest.mark.parametrize("base", ["imputation", "callaway_santanna"])
def test_dask_engine_counts_a_gain_only_in_periods_with_a_clean_row(tmp_path, base):
    # every clean unit lacks its 2008 outcome, so BJS's step 1 imputes no zone's 2008 gain
    # (no clean row then) and the zones' neighbours' 2008 losses are exposed only by zones
    # whose gain no total counts: the imputation base sets them apart and the CS base
    # refuses, on both engines alike (Dask once took every period to hold a clean row)
    zd = pytest.importorskip("zoneimpact.distributed")
    df = _world(ZONES, noise=1.0)
    near = {f"u{int(u[1:]) + d:02d}" for u in ZONES for d in (-1, 0, 1)}
    df = df.assign(y=df["y"].mask(~df["unit"].isin(near) & (df["time"] == 2008)))
    p = _panel(df)
    emap = build_exposure(p, "adjacency")
    dp = _dask_panel(p, tmp_path)
    if base == "callaway_santanna":
        for run in (lambda: _fit(p, exposure=emap, base_estimator=base),
                    lambda: zd.spillover(dp, outcome="y", exposure=emap, base_estimator=base,
                                         n_boot=0)):  # fmt: skip
            with pytest.raises(EstimationError, match=r"6 exposed unit-period"):
                run()
        return
    res, _ = _dask_equals_memory(p, emap, base, dp)
    assert res.pieces.set_index("piece").loc["spillover_from_sources", "n_unidentified"] == 6


# u40 opens in 2009, so u39's and u41's 2008 rows are controls of the ring piece; under
# controls="never_exposed" the direct piece's 2008 controls are the clean units and u40
THIN_ZONES = {"u10": 2002, "u20": 2004, "u30": 2006, "u40": 2009}


def _thin_world(with_u40: bool) -> pd.DataFrame:
    """Noise-free outcomes with one clean unit's 2008 outcome kept (and u40's if
    ``with_u40``), and a covariate ``x`` that moves nothing."""
    df = _world(THIN_ZONES)
    near = {f"u{int(u[1:]) + d:02d}" for u in THIN_ZONES for d in (-1, 0, 1)}
    kept = {"u00", "u40"} if with_u40 else {"u00"}
    gone = (df["time"] == 2008) & ~df["unit"].isin(kept) & ~(df["unit"].isin(near - {"u40"}))
    x = dict(zip(UNITS, np.random.default_rng(3).normal(size=N), strict=True))
    return df.assign(y=df["y"].mask(gone), x=df["unit"].map(x))


def _assert_thin_2008_apart(res) -> None:
    # the three zones open in 2008 have no imputed 2008 gain (the period is left out), so
    # their neighbours' 6 x 5 losses then are set apart; the gains 190 less those 30
    # against the losses 190 less those 30: net 0, share 1 (1e-9, noise-free). The code
    # before counted the losses: net -30, share 1.1875
    e = _est(res)
    assert e["direct_total"] == pytest.approx(160.0, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-160.0, abs=1e-9)
    assert e["net"] == pytest.approx(0.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-10)
    assert e["spillover_from_sources_total"] == pytest.approx(-30.0, abs=1e-9)
    assert res.pieces.set_index("piece").at["direct", "left_out_periods"] == "2008"


def test_a_period_left_out_for_the_covariates_counts_no_gain():
    # with one covariate a period needs three clean units with another clean row: 2008
    # has two in the direct piece (u00, u40) and three in the ring piece (u00, u39, u41)
    p = _panel(_thin_world(with_u40=True), covariates=("x",))
    _assert_thin_2008_apart(_fit(p, controls="never_exposed", covariates=["x"]))


def test_dask_engine_counts_no_gain_in_a_thin_period_as_in_memory(tmp_path):
    # without covariates a period needs two: the direct piece has u00 alone in 2008
    p = _panel(_thin_world(with_u40=False))
    emap = build_exposure(p, "adjacency")
    dp = _dask_panel(p, tmp_path)
    res, mem = _dask_equals_memory(p, emap, "imputation", dp, controls="never_exposed")
    _assert_thin_2008_apart(res)
    _assert_thin_2008_apart(mem)


def test_messages_print_integer_unit_ids_plainly(tmp_path):
    # integer ids are named as 31, not np.int64(31), in the refusals (a reviewer's note)
    zd = pytest.importorskip("zoneimpact.distributed")
    ids = {u: int(u[1:]) for u in UNITS}
    geo = pd.DataFrame(
        {"unit": list(ids.values()), "lat": 30.0, "lon": [0.3 * i for i in range(N)]}
    )
    adj = pd.DataFrame({"unit": list(range(N - 1)), "neighbour": list(range(1, N))})

    def panel(df: pd.DataFrame, sources: dict[str, int]) -> Panel:
        src = geo[geo["unit"].isin([ids[u] for u in sources])]
        src = src.assign(cohort=[sources[f"u{i:02d}"] for i in src["unit"]])
        df = df.assign(unit=df["unit"].map(ids))
        return Panel.from_frame(
            df[~df["unit"].isin(src["unit"])], unit="unit", time="time", cohort="cohort",
            outcomes="y", geography=geo[~geo["unit"].isin(src["unit"])], adjacency=adj,
            sources=src, never_values=(),
        )  # fmt: skip

    p = panel(_world({"u32": 1995, "u33": 2005, "u31": 2006}), {"u32": 1995})
    with pytest.raises(EstimationError, match=r"e\.g\. 31 from 2000"):
        _fit(p)
    # no clean unit observed in 2008: no zone has an estimated gain then under the
    # imputation base's rule, while the CS base's (an untreated row of its own) sees one,
    # so the Dask CS base refuses the zones' neighbours' 2008 rows, naming them
    df = _world(ZONES)
    near = {f"u{int(u[1:]) + d:02d}" for u in ZONES for d in (-1, 0, 1)}
    df = df.assign(y=df["y"].mask(~df["unit"].isin(near) & (df["time"] == 2008)))
    p = panel(df, {})
    emap = build_exposure(p, "adjacency")
    with pytest.raises(EstimationError, match=r"unit 4 in period 2008: the zone unit 5 "):
        zd.spillover(_dask_panel(p, tmp_path), outcome="y", exposure=emap,
                     base_estimator="callaway_santanna", n_boot=0)  # fmt: skip


@pytest.mark.parametrize("base", ["imputation", "callaway_santanna"])
def test_dask_engine_names_unobserved_exposed_rows_as_in_memory(tmp_path, base):
    # u14's outcome is missing in 2007 and u16's 2009 row is absent, both exposed by the zone
    # u15 (2006), whose gain is counted: net leaves their losses out, which the Dask engine
    # said nothing of (the in-memory warning and note only). u33's 2004 cell, exposed by the
    # source u32 alone, is in no total either way and is not named. Both engines: the same
    # note (2 unit-periods, the same guess), terms and SEs to 1e-10
    df = _unobserved(_world({**ZONES, **SOURCE}, noise=1.0), "u14", [2007])
    df = _unobserved(df[~((df["unit"] == "u16") & (df["time"] == 2009))], "u33", [2004])
    p = _panel(df, SOURCE)
    res, _ = _dask_equals_memory(p, build_exposure(p, "adjacency"), base, _dask_panel(p, tmp_path))
    assert "2 exposed unit-period(s) have no outcome" in res.info["net_unobserved_note"]
    # a complete panel has no note on either engine
    (tmp_path / "full").mkdir()
    full = _panel(_world({**ZONES, **SOURCE}, noise=1.0), SOURCE)
    res, _ = _dask_equals_memory(full, build_exposure(full, "adjacency"), base,
                                 _dask_panel(full, tmp_path / "full"))  # fmt: skip
    assert "net_unobserved_note" not in res.info


@pytest.mark.parametrize("base", ["imputation", "callaway_santanna"])
def test_dask_engine_blanks_a_share_of_rounding_errors_as_in_memory(tmp_path, base):
    # the line world without any effect (outcome less its truth): the direct total is zero
    # to rounding, so 1 - net / direct_total is a ratio of rounding errors. The Dask
    # imputation base reported it: share -5.37 with p = 0.014 (it had no outcome scale to
    # judge rounding by); both engines now blank it with the same note and warning
    df = _world({**ZONES, **SOURCE}).pipe(lambda d: d.assign(y=d["y"] - d["eff"]))
    p = _panel(df, SOURCE)
    res, _ = _dask_equals_memory(p, build_exposure(p, "adjacency"), base, _dask_panel(p, tmp_path))
    assert "zero to rounding" in res.info["share_note"]
    share = res.terms.set_index("term").loc["displacement_share"]
    assert np.isnan(share["estimate"]) and np.isnan(share["p_value"])
    zd = pytest.importorskip("zoneimpact.distributed")
    with pytest.warns(UserWarning, match="zero to rounding") as rec:
        zd.spillover(_dask_panel(p, tmp_path), outcome="y", exposure=build_exposure(p, "adjacency"),
                     base_estimator=base, n_boot=0)  # fmt: skip
    assert any(w.filename == __file__ for w in rec if "zero to rounding" in str(w.message))


def test_net_note_sizes_the_losses_of_an_exposed_unit_it_cannot_impute(tmp_path):
    # a fuzz review's world: u04 (next to u05, 2001) is observed only from its exposure,
    # so BJS cannot impute its 9 losses of 5 while u05's gain counts: net 45 for a true 0
    # (pure relocation). The note sizes what is unpaired: 9 x the ring's mean -5 = -45
    # (1e-9, noise-free). The CS base reads u04 at its ring cohort-mates' ATT(g,t) (exact
    # here), with nothing left out and no note; Dask's notes equal memory's
    df = _world({"u05": 2001, "u20": 2004})
    df.loc[(df["unit"] == "u04") & (df["time"] == 2000), "y"] = np.nan
    p = _panel(df)
    emap = build_exposure(p, "adjacency")
    res, mem = _dask_equals_memory(p, emap, "imputation", _dask_panel(p, tmp_path))
    assert mem.coef("net") == pytest.approx(45.0, abs=1e-9)
    assert "'spillover:adjacent' 9 of 30" in mem.info["net_note"]
    assert "net would change by about -45)" in mem.info["net_note"]
    cs = _fit(p, exposure=emap, base_estimator="callaway_santanna")
    assert cs.coef("net") == pytest.approx(0.0, abs=1e-9)
    assert "net_note" not in cs.info
