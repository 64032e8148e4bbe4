"""Sun-Abraham ``aggregate``: other linear combinations of the cohort x event effects
CATT(g,e) without refitting the saturated regression (issue 13)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.errors import EstimationError, SpecError, ZoneImpactError
from zoneimpact.estimators import callaway_santanna, sun_abraham

REFERENCE = Path(__file__).parents[1] / "benchmarks" / "reference"
# pyfixest 0.60 event_study(estimator="saturated").aggregate(agg="period") on mpdta, balanced
# and unbalanced, and diff-diff 3.13 SunAbraham's overall ATT (generator:
# benchmarks/reference/sa_aggregate_reference.py)
PEERS = json.loads((REFERENCE / "sa_aggregate.json").read_text())
# R did 2.x via moderndid 0.2.0 (generator: benchmarks/reference/cs_mpdta_reference.py)
R_DID = json.loads((REFERENCE / "cs_mpdta_moderndid.json").read_text())

# Same regression and the same linear combination as pyfixest: the differences are
# rounding, below 1e-15 absolute on SEs ~1e-2; 1e-10 leaves room for BLAS.
EXACT = 1e-10
# Our own two computations of the same sums in another order: rounding only.
SAME = 1e-12
TYPES = ("simple", "dynamic", "group", "calendar")


@pytest.fixture(scope="module")
def frame(mpdta_frame: pd.DataFrame) -> pd.DataFrame:
    df = mpdta_frame
    return df.assign(pop=np.exp(df["lpop"]), state=df["countyreal"] // 1000, yr=df["year"])


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df,
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
        covariates=["pop", "state", "yr"],
    )


@pytest.fixture(scope="module")
def panel(frame: pd.DataFrame) -> Panel:
    return _panel(frame)


@pytest.fixture(scope="module")
def res(panel: Panel) -> sun_abraham.SunAbrahamResult:
    return sun_abraham.fit(panel, outcome="lemp")


def _terms(r) -> pd.DataFrame:
    return r.terms.set_index("term")


# ------------------------------------------------------------------ (a) dynamic = the fit
@pytest.mark.parametrize(
    "kw", [{}, {"weights": "pop"}, {"control_group": "last_cohort"}, {"min_e": -2, "max_e": 2}]
)
def test_dynamic_is_the_fit(panel, kw) -> None:
    fit = sun_abraham.fit(panel, outcome="lemp", **kw)
    agg = fit.aggregate("dynamic")
    t, f = _terms(agg), _terms(fit)
    # every fit term (att and event:E) comes back with its estimate, SE, df and covariance
    assert list(t.index[: len(f)]) == list(f.index)
    assert np.allclose(t.loc[f.index, "estimate"], f["estimate"], rtol=0, atol=SAME)
    assert np.allclose(t.loc[f.index, "se"], f["se"], rtol=0, atol=SAME)
    assert np.array_equal(t.loc[f.index, "df"], f["df"])
    V = agg.vcov.loc[f.index, f.index].to_numpy()
    assert np.allclose(V, fit.vcov.to_numpy(), rtol=0, atol=SAME)
    # plus event_avg, the plain average of the post-treatment event effects (R aggte)
    post = [n for n in f.index if n.startswith("event:") and int(n[6:]) >= 0]
    assert t.loc["event_avg", "estimate"] == pytest.approx(f.loc[post, "estimate"].mean(), abs=SAME)
    assert list(t.index) == [*f.index, "event_avg"]


@pytest.mark.parametrize("design", ["balanced", "unbalanced"])
def test_dynamic_matches_pyfixest_period_aggregation(frame, design) -> None:
    df = frame
    if design == "unbalanced":  # the rows the generator drops
        c, y = df["countyreal"], df["year"]
        df = df.loc[~(((c % 7 == 0) & (y == 2005)) | ((c % 11 == 0) & (y == 2003)))]
    ref = PEERS["pyfixest_period"][design]
    r = sun_abraham.fit(_panel(df), outcome="lemp")
    assert r.n_obs == ref["n_obs"]
    # pyfixest demeans by alternating projections stopped at fixef_tol = 1e-8: exact after
    # one sweep on a balanced panel; on the unbalanced one its estimates still agree to
    # 1e-13 but its SEs differ from our exact absorption by up to 1e-9
    se_tol = EXACT if design == "balanced" else 1e-8
    t = _terms(r.aggregate("dynamic"))
    for e, est, se in zip(ref["period"], ref["estimate"], ref["se"], strict=True):
        assert t.loc[f"event:{e}", "estimate"] == pytest.approx(est, abs=EXACT), e
        assert t.loc[f"event:{e}", "se"] == pytest.approx(se, abs=se_tol), e


def test_known_effects_recovered_as_observation_averages() -> None:
    # A noise-free unbalanced panel with effects tau(g, e) that vary by cohort and event
    # time: the CATT are exact, so "simple" must be the mean effect over the treated
    # observations, calendar:T the mean over those treated in T, event:E over those at E,
    # and cohort:G the plain mean of its tau(g, e) over its post periods (R aggte).
    rng = np.random.default_rng(13)
    units = np.repeat(np.arange(90), 8)
    time = np.tile(np.arange(1, 9), 90)
    cohort = np.array([4.0, 6.0, np.inf])[units % 3]
    e = time - cohort
    tau = np.where(e >= 0, 1.0 + 0.5 * e + 0.3 * (cohort == 6), 0.0)
    y = rng.normal(size=90)[units] + np.sin(time) + tau
    df = pd.DataFrame({"unit": units, "time": time, "cohort": cohort, "y": y, "tau": tau})
    df = df.loc[rng.random(len(df)) > 0.15].reset_index(drop=True)
    p = Panel.from_frame(df, unit="unit", time="time", outcomes=["y"], cohort="cohort")
    r = sun_abraham.fit(p, outcome="y")
    treated = df.loc[np.isfinite(df["cohort"]) & (df["time"] >= df["cohort"])]
    truth = {"att": treated["tau"].mean()}
    truth |= {f"calendar:{t}": v for t, v in treated.groupby("time")["tau"].mean().items()}
    ev = treated.assign(e=treated["time"] - treated["cohort"]).astype({"e": int})
    truth |= {f"event:{k}": v for k, v in ev.groupby("e")["tau"].mean().items()}
    cells = ev.groupby(["cohort", "e"])["tau"].first().groupby("cohort").mean()
    truth |= {f"cohort:{int(g)}": v for g, v in cells.items()}
    got = pd.concat([_terms(r.aggregate(k)) for k in TYPES])
    got = got.loc[~got.index.duplicated()]
    for name, value in truth.items():
        # exact up to the rounding of the absorbed regression (effects ~1, y ~ 3)
        assert got.loc[name, "estimate"] == pytest.approx(value, abs=1e-9), name


# ------------------------------------------------------------------ (b) by hand and peers
def _by_hand(res) -> dict[str, tuple[float, float]]:
    """simple / group / calendar / event_avg from the fit's cohort x event table and the
    cells' covariance, written with pandas group-bys (another route to the same sums)."""
    ce = res.cohort_effects.reset_index(drop=True)
    V = np.asarray(res.cell_vcov)
    b = ce["estimate"].to_numpy()
    out: dict[str, tuple[float, float]] = {}

    def put(name: str, w: pd.Series) -> np.ndarray:
        a = w.reindex(ce.index, fill_value=0.0).to_numpy()
        out[name] = (float(a @ b), float(np.sqrt(a @ V @ a)))
        return a

    post = ce.loc[ce["event"] >= 0]
    put("att", post["n_obs"] / post["n_obs"].sum())
    cohort_rows, pg = [], []
    for g, cells in post.groupby("cohort"):
        cohort_rows.append(put(f"cohort:{g}", pd.Series(1.0 / len(cells), index=cells.index)))
        pg.append(cells["n_obs"].mean())
    pg = np.array(pg) / np.sum(pg)
    put("cohort_avg", pd.Series(pg @ np.vstack(cohort_rows), index=ce.index))
    cal_rows = []
    for t, cells in post.assign(period=post["cohort"] + post["event"]).groupby("period"):
        cal_rows.append(put(f"calendar:{t}", cells["n_obs"] / cells["n_obs"].sum()))
    put("calendar_avg", pd.Series(np.mean(cal_rows, axis=0), index=ce.index))
    ev_rows = []
    for e, cells in post.groupby("event"):
        ev_rows.append(put(f"event:{e}", cells["n_obs"] / cells["n_obs"].sum()))
    put("event_avg", pd.Series(np.mean(ev_rows, axis=0), index=ce.index))
    return out


@pytest.mark.parametrize("design", ["balanced", "unbalanced"])
def test_simple_group_calendar_by_hand(frame, design) -> None:
    df = frame if design == "balanced" else frame.sample(frac=0.9, random_state=3)
    r = sun_abraham.fit(_panel(df), outcome="lemp")
    hand = _by_hand(r)
    got = pd.concat([_terms(r.aggregate(k)) for k in TYPES])
    got = got.loc[~got.index.duplicated()]
    for name, (est, se) in hand.items():
        assert got.loc[name, "estimate"] == pytest.approx(est, abs=SAME), name
        assert got.loc[name, "se"] == pytest.approx(se, abs=SAME), name
    assert set(got.index) - set(hand) == {f"event:{e}" for e in (-4, -3, -2)}


def test_point_estimates_equal_r_did_universal_base(res) -> None:
    # On a balanced panel with never-treated controls and only e = -1 excluded, the
    # saturated regression's d_{g,e} is the 2x2 DiD of cohort g against the never-treated
    # between g - 1 and g + e: R did's ATT(g, g + e) with base_period = "universal". With
    # equal cells the cohort shares are R's pg, so every aggte type is the same number
    # (rounding only, hence EXACT). R's SEs differ: influence functions with the
    # estimated-share term, not the clustered regression with fixed shares.
    ref = R_DID["never_universal"]
    t = pd.concat([_terms(res.aggregate(k)) for k in TYPES])
    t = t.loc[~t.index.duplicated()]
    assert t.loc["att", "estimate"] == pytest.approx(ref["simple"]["att"], abs=EXACT)
    prefix = {"dynamic": "event", "group": "cohort", "calendar": "calendar"}
    for kind, pre in prefix.items():
        for i, est in zip(ref[kind]["index"], ref[kind]["att"], strict=True):
            if kind == "dynamic" and i == -1:
                continue  # R's fixed zero; the excluded reference period here
            assert t.loc[f"{pre}:{int(i)}", "estimate"] == pytest.approx(est, abs=EXACT)
        avg = t.loc[f"{pre}_avg", "estimate"]
        assert avg == pytest.approx(ref[kind]["overall_att"], abs=EXACT), kind


def test_simple_matches_diff_diff_and_pyfixest_defines_no_group(res) -> None:
    # diff-diff 3.13's overall_att is the same estimand as "simple" (post cells weighted by
    # their observation counts) with the same fixed-share delta method: rounding only.
    ref = PEERS["diffdiff_simple"]
    t = _terms(res.aggregate("simple"))
    assert list(t.index) == ["att"]
    assert t.loc["att", "estimate"] == pytest.approx(ref["overall_att"], abs=EXACT)
    assert t.loc["att", "se"] == pytest.approx(ref["overall_se"], abs=EXACT)
    # pyfixest 0.60 defines only the per-event-time aggregation (agg="period", compared in
    # test_dynamic_matches_pyfixest_period_aggregation): aggregate(agg="att") and
    # aggregate(agg="cohort") raise, and event_study(att=True) is not read by the saturated
    # estimator, so there is no pyfixest "group" or "simple" number to compare with; the
    # generator stores pyfixest's refusal, checked here so a future pyfixest that defines
    # them shows up as a failing reminder to add the comparison.
    for kind in ("att", "cohort"):
        assert PEERS["pyfixest_period"]["balanced"]["undefined"][kind].startswith("ValueError")


# ------------------------------------------------------------------ (c) after with_inference
@pytest.mark.parametrize("kind", TYPES)
def test_aggregate_uses_the_new_covariance(panel, res, kind) -> None:
    state = res.with_inference(cluster="state")
    got = state.aggregate(kind, bins=[[0, 1]])
    # the cells' covariance is with_inference's, not the fit's
    assert not np.allclose(np.asarray(state.cell_vcov), np.asarray(res.cell_vcov))
    refit = sun_abraham.fit(panel, outcome="lemp", cluster="state").aggregate(kind, bins=[[0, 1]])
    a, b = _terms(got), _terms(refit)
    assert np.array_equal(a["estimate"], b["estimate"])
    assert np.allclose(a["se"], b["se"], rtol=0, atol=SAME)
    assert np.all(a["df"] == 28)  # 29 states
    # and aggregating first, then clustering, gives the same result
    other = res.aggregate(kind, bins=[[0, 1]]).with_inference(cluster="state")
    assert np.allclose(_terms(other)["se"], a["se"], rtol=0, atol=SAME)
    assert np.allclose(other.vcov.to_numpy(), got.vcov.to_numpy(), rtol=0, atol=SAME)


def test_two_way_negative_variances_stay_nan(res) -> None:
    two = res.with_inference(cluster=["state", "yr"])
    assert two.two_way_cluster
    agg = two.aggregate("dynamic")
    V = np.asarray(two.cell_vcov)
    A = agg.design.iw_weights
    v = np.diag(A @ V @ A.T)
    se = _terms(agg)["se"].to_numpy()
    assert np.array_equal(np.isnan(se), v < 0)
    assert np.allclose(se[v >= 0], np.sqrt(v[v >= 0]), rtol=0, atol=SAME)


# ------------------------------------------------------------------ (d) windows and bins
WINDOWS = [
    {"min_e": -2, "max_e": 1},
    {"max_e": 0},
    {"min_e": 0},
    {"balance_e": 1},
    {"balance_e": 0, "max_e": 2},
]


@pytest.mark.parametrize("window", WINDOWS)
def test_windows_behave_like_callaway_santanna(panel, res, window) -> None:
    # CS with never-treated controls and a universal base period has the same cells as SA
    # on balanced mpdta (test_point_estimates_equal_r_did_universal_base), so each window
    # must keep the same terms with the same estimates; CS also reports its fixed event:-1.
    cs = callaway_santanna.fit(
        panel, outcome="lemp", base_period="universal", bootstrap=False, aggregations=[]
    )
    for kind in TYPES:
        sa_t = _terms(res.aggregate(kind, **window))
        cs_t = _terms(cs.aggregate(kind, **window)).drop("event:-1", errors="ignore")
        assert list(sa_t.index) == list(cs_t.index), (kind, window)
        assert np.allclose(sa_t["estimate"], cs_t["estimate"], rtol=0, atol=EXACT)


def test_balance_e_matches_r_did(res) -> None:
    # R did's balance_e = 1 (varying base period): the post-treatment event times do not
    # depend on the base period, so they and their average are SA's numbers too
    ref = R_DID["never_unconditional"]["dynamic_balance_e1"]
    t = _terms(res.aggregate("dynamic", balance_e=1))
    for e, est in zip(ref["index"], ref["att"], strict=True):
        if e >= 0:
            assert t.loc[f"event:{int(e)}", "estimate"] == pytest.approx(est, abs=EXACT)
    assert t.loc["event_avg", "estimate"] == pytest.approx(ref["overall_att"], abs=EXACT)
    # cohort 2007 (one post period) is left out of event:0
    ce = res.cohort_effects
    c0 = ce.loc[(ce["event"] == 0) & (ce["cohort"] < 2007)]
    w = c0["n_obs"] / c0["n_obs"].sum()
    assert t.loc["event:0", "estimate"] == pytest.approx(float(w @ c0["estimate"]), abs=SAME)


def test_bins_pool_the_cells_of_their_event_times(res) -> None:
    bins = [[-3, -2], [0, 1], [2, 3]]
    got = _terms(res.aggregate("dynamic", bins=bins))
    ce = res.cohort_effects.reset_index(drop=True)
    V = np.asarray(res.cell_vcov)
    for lo, hi in bins:
        inside = ((ce["event"] >= lo) & (ce["event"] <= hi)).to_numpy()
        a = np.where(inside, ce["n_obs"], 0.0) / ce.loc[inside, "n_obs"].sum()
        row = got.loc[f"event_bin:{lo}..{hi}"]
        assert row["estimate"] == pytest.approx(float(a @ ce["estimate"]), abs=SAME)
        assert row["se"] == pytest.approx(float(np.sqrt(a @ V @ a)), abs=SAME)
    # a bin of one event time is that event time
    one = _terms(res.aggregate("simple", bins=[[2, 2]]))
    assert list(one.index) == ["att", "event_bin:2..2"]
    assert one.loc["event_bin:2..2", "se"] == pytest.approx(got.loc["event:2", "se"], abs=SAME)
    # the window applies to the bins as it does in CS: [-3, -2] loses -3
    cut = _terms(res.aggregate("simple", min_e=-2, bins=[[-3, -2]]))
    assert cut.loc["event_bin:-3..-2", "estimate"] == pytest.approx(
        got.loc["event:-2", "estimate"], abs=SAME
    )


def test_weighted_fit_shares_are_total_weights(panel) -> None:
    r = sun_abraham.fit(panel, outcome="lemp", weights="pop")
    ce = r.cohort_effects
    post = ce.loc[(ce["cohort"] == 2004) & (ce["event"] >= 0)]
    t = _terms(r.aggregate("group"))
    assert t.loc["cohort:2004", "estimate"] == pytest.approx(post["estimate"].mean(), abs=SAME)
    cal = ce.loc[(ce["cohort"] + ce["event"] == 2006) & (ce["event"] >= 0)]
    w = cal["total_weight"] / cal["total_weight"].sum()
    got = _terms(r.aggregate("calendar")).loc["calendar:2006", "estimate"]
    assert got == pytest.approx(float(w @ cal["estimate"]), abs=SAME)
    assert not np.allclose(w, cal["n_obs"] / cal["n_obs"].sum())  # weights matter here


# ------------------------------------------------------------------ (e) immutability
def test_original_result_unchanged(res) -> None:
    terms, vcov = res.terms.copy(), res.vcov.copy()
    V, A = np.array(res.cell_vcov), np.array(res.design.iw_weights)
    info = dict(res.info)
    outs = [res.aggregate(k, min_e=-2, max_e=2, bins=[[0, 1]]) for k in TYPES]
    assert res.terms.equals(terms) and res.vcov.equals(vcov) and dict(res.info) == info
    assert np.array_equal(np.asarray(res.cell_vcov), V)
    assert np.array_equal(res.design.iw_weights, A)
    assert all(o is not res for o in outs)
    assert outs[2].info["aggregation"] == "group (min_e=-2, max_e=2)"
    with pytest.raises(ValueError, match="read-only"):
        outs[0].cell_vcov[0, 0] = 1.0
    # the rescaled result aggregates to the rescaled aggregate (the cells' covariance
    # scales with the square)
    big = res.rescaled(1e3).aggregate("group")
    small = res.aggregate("group")
    assert np.allclose(_terms(big)["se"], _terms(small)["se"] * 1e3, rtol=1e-12, atol=0)


# ------------------------------------------------------------------ (f) bad input
@pytest.mark.parametrize(
    ("kw", "error", "names"),
    [
        ({"type": "cohort"}, SpecError, ["type", "cohort"]),
        ({"min_e": 1.5}, SpecError, ["min_e", "1.5"]),
        ({"max_e": "2"}, SpecError, ["max_e", "'2'"]),
        ({"min_e": 2, "max_e": 1}, SpecError, ["min_e=2", "max_e=1"]),
        ({"max_e": -1}, SpecError, ["max_e=-1"]),
        ({"balance_e": -1}, SpecError, ["balance_e"]),
        ({"balance_e": 5}, EstimationError, ["balance_e=5", "2007"]),
        ({"bins": [[1, 0]]}, SpecError, ["bins", "[1, 0]"]),
        ({"bins": [[0.5, 1]]}, SpecError, ["bins"]),
        ({"bins": [[5, 6]]}, EstimationError, ["[5, 6]", "-4"]),
        ({"type": "dynamic", "min_e": 1, "bins": [[-3, 0]]}, EstimationError, ["[-3, 0]"]),
    ],
)
def test_bad_input_is_named(res, kw, error, names) -> None:
    with pytest.raises(error) as info:
        res.aggregate(**kw)
    assert isinstance(info.value, ZoneImpactError)
    for name in names:
        assert name in str(info.value), (name, str(info.value))


def test_undefined_aggregations_refused(panel, res) -> None:
    binned = sun_abraham.fit(panel, outcome="lemp", min_e=-2, max_e=1, window="bin")
    with pytest.raises(EstimationError, match="window='bin'"):
        binned.aggregate("calendar")
    # group stays defined: the binned end point (e >= 1) counts as one post period
    ce = binned.cohort_effects
    post = ce.loc[(ce["cohort"] == 2004) & (ce["event"] >= 0), "estimate"]
    assert len(post) == 2
    got = _terms(binned.aggregate("group")).loc["cohort:2004", "estimate"]
    assert got == pytest.approx(post.mean(), abs=SAME)
    pre_only = sun_abraham.fit(panel, outcome="lemp", ref_period=[-1, 0, 1, 2, 3])
    assert np.isnan(pre_only.estimate)
    with pytest.raises(EstimationError, match=r"No post-treatment cell .* was estimated"):
        pre_only.aggregate("dynamic")
    with pytest.raises(EstimationError, match="max_e=0"):
        sun_abraham.fit(panel, outcome="lemp", ref_period=[-1, 0]).aggregate("simple", max_e=0)
    with pytest.raises(EstimationError, match="refit to aggregate"):
        replace(res, cell_vcov=None).aggregate("group")
