"""Specification curve, heterogeneity and sensitivity of the China zone study (issue 17).

The headline verdicts of the China study rest on one design (adjacency exposure, clean
controls, imputation in FDI levels). A referee asks how much they depend on it. This module
re-estimates the zone cities' direct effect (and, in levels, the spillover, net effect and
displacement share) over

* **exposure** (who is a clean control): ``none`` (every non-zone city, neighbours included:
  the usual DiD), ``adjacency`` (no zone and no bordering zone), ``knn3`` (not among the
  three nearest cities of a zone), ``ring100`` (no zone within 100 km); zones that predate
  the data expose their neighbours too (:mod:`zoneimpact.exposure`);
* **controls**: ``clean`` (never exposed; CS never-treated) or ``not_yet`` (also the years
  before a city's own exposure, and CS's not-yet-treated comparisons);
* **scale** (:data:`SCALES`, each with what it assumes);
* **estimator**: Borusyak-Jaravel-Spiess imputation with baseline log GDP and log population
  times a linear trend (conditional parallel trends; the leave-out variance of BJS's
  Supplementary Appendix A.9 with CR2 residuals and Bell-McCaffrey t; Test 1 pre-trend
  p-value),
  Callaway-Sant'Anna doubly robust on the same baseline covariates (delete-one-province
  jackknife SEs, CV3, since the analytic influence-function SEs ran at 0.55-0.85 of the
  estimates' SD on China's structure; joint Wald pre-trend test on the jackknife
  covariance), PPML (placebo-in-time pre-trend test), and the
  factor-model estimators ``ife`` and ``matrix_completion`` and synthetic DiD per cohort as
  point estimates (their SEs need bootstraps, outside the run's budget: they are shown but
  never judged);
* **sample**: ``full``, ``no_flagged`` (FDI set missing where
  :mod:`zoneimpact.china.quality` flags it: a province from its first reporting-basis
  break on, since its cities stay on the new basis; an isolated spike or an endpoint jump
  in its year only) and ``to2020``.

Every row carries the number of treated cities the fit used (``n_treated``: zone cities
with an estimated effect, or for a spillover row the exposed cities with one, for a net or
share row the zone cities of its direct piece), the zone cities of the design with a
post-zone outcome (``n_treated_map``, or the map's exposed cities on a spillover row),
of clean controls and of not-yet-treated
(or not-yet-exposed) control cities, and the pre-trend p-value, which the verdict rule of
``seeds/claims.toml`` ([curve_rule]; :func:`zoneimpact.claims.curve_verdict`) reads. A net
or displacement-share row adds three pieces (the zone cities, the exposed cities and the
zone cities exposed before their own zone), so its p-value is the smallest of the three
pieces' tests: one piece with a pre-trend makes the net row inadmissible.

Why by hand: the specification curve (Simonsohn, Simmons & Nelson 2020, *Nature Human
Behaviour* 4, 1208-1214) is a loop over the package's own estimators; no library runs it on
these designs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ZoneImpactError
from ..exposure import ExposureMap, _subpanel, build_exposure
from ..panel import Panel
from ..report import style
from ..results import EstimationResult, t_quantile, verdict_df
from .balance import COASTAL_PROVINCES
from .quality import flagged_cells

__all__ = [
    "COASTAL_PROVINCES",
    "SCALES",
    "CurveRun",
    "Scale",
    "curve_exposure",
    "curve_figure",
    "direct_panel",
    "heterogeneity_table",
    "honest_sensitivity",
    "prepare_panel",
    "restrict_sample",
    "run_china_curve",
    "specification_curve",
    "spillover_panel",
]


@dataclass(frozen=True)
class Scale:
    """An outcome scale of the curve: the outcome column, its kind and what it assumes.

    ``kind`` is ``"level"`` (margins of ``pre_mean`` claims are ``margin x pre-zone mean``)
    or ``"log"`` (proportional effects: the band ``[log(1 - margin), log(1 + margin)]``).
    """

    name: str
    outcome: str
    kind: str
    assumes: str


SCALES: dict[str, Scale] = {
    "levels": Scale(
        "levels",
        "fdi",
        "level",
        "FDI in USD million; parallel trends in levels: without zones, zone and control "
        "cities' FDI would have grown by the same amount (fails when bigger cities grow faster).",
    ),
    "log1p": Scale(
        "log1p",
        "log1p_fdi",
        "log",
        "log(1 + FDI in USD million); parallel trends in growth rates; effects are roughly "
        "proportional, but the zero handling depends on FDI's unit (Chen & Roth 2024).",
    ),
    "per_capita": Scale(
        "per_capita",
        "fdi_per_capita",
        "level",
        "FDI in USD per resident; parallel trends in FDI per head (a prefecture split moves "
        "population and FDI together, so boundary changes cancel in part).",
    ),
    "per_gdp": Scale(
        "per_gdp",
        "fdi_per_gdp",
        "level",
        "FDI (USD million) per 100 million yuan of GDP; parallel trends in FDI intensity; a "
        "zone that raises GDP as much as FDI shows no effect on this scale.",
    ),
    "ppml": Scale(
        "ppml",
        "fdi",
        "log",
        "Poisson pseudo-likelihood, unit and year effects: a proportional effect on mean FDI, "
        "zeros kept; parallel trends in the log of the mean (Wooldridge 2023).",
    ),
}

EXPOSURES: dict[str, dict[str, Any]] = {
    "none": {},
    "adjacency": {"exposure": "adjacency"},
    "knn3": {"exposure": "knn", "k": 3},
    "ring100": {"exposure": "rings", "rings_km": [(0.0, 100.0)]},
}
COVARIATES = ("lgdp0", "lpop0")
TREND_COVARIATES = ("trend_lgdp0", "trend_lpop0")
FDI_OUTCOMES = ("fdi", "log1p_fdi", "fdi_per_capita", "fdi_per_gdp")
CURVE_COLUMNS = [
    "spec",
    "estimand",
    "scale",
    "scale_kind",
    "outcome",
    "exposure",
    "controls",
    "estimator",
    "sample",
    "estimate",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "ci_level",
    "pretrend_p",
    "pretrend_test",
    "n_treated",
    "n_treated_map",
    "n_clean",
    "n_not_yet",
    "pre_mean",
    "judged",
    "note",
    "seconds",
]


# ---------------------------------------------------------------------- panels
def prepare_panel(
    panel: Panel, frame: pd.DataFrame, *, base_year: int = 2000
) -> tuple[Panel, list[Any]]:
    """The study panel with the curve's outcomes and baseline covariates.

    Adds ``fdi_per_capita`` (USD per resident: ``100 x fdi / population``, FDI in USD
    million and population in 10,000), ``fdi_per_gdp`` (FDI in USD million per 100 million
    yuan of nominal GDP), the baseline covariates ``lgdp0``/``lpop0`` (log real GDP and log
    population in ``base_year``, the first year of the GDP file) and their products with
    ``year - base_year`` (``trend_*``: conditional linear trends for the imputation
    estimator, whose unit effects absorb time-invariant covariates). Cities without a
    baseline value are dropped and returned.

    Parameters
    ----------
    panel : Panel
        The study panel (``fdi``, ``log1p_fdi`` among the outcomes).
    frame : DataFrame
        :func:`zoneimpact.china.study.build_study_panel`'s frame (``city_code``, ``year``,
        ``population_interp``, ``gdp_nominal``, ``gdp_real``).
    """
    d = panel.data.copy()
    f = frame.set_index(["city_code", "year"])
    key = pd.MultiIndex.from_arrays([d["unit"].astype(str), d["time"].astype(int)])
    f.index = pd.MultiIndex.from_arrays(
        [f.index.get_level_values(0).astype(str), f.index.get_level_values(1).astype(int)]
    )
    pop = f["population_interp"].reindex(key).to_numpy(float)
    gdp_nom = f["gdp_nominal"].reindex(key).to_numpy(float)
    fdi = d["fdi"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d["fdi_per_capita"] = np.where(pop > 0, 100.0 * fdi / pop, np.nan)
        d["fdi_per_gdp"] = np.where(gdp_nom > 0, fdi / gdp_nom, np.nan)
    base = frame[frame["year"] == base_year]
    base = base.set_index(base["city_code"].astype(str))
    with np.errstate(divide="ignore", invalid="ignore"):
        lgdp = np.log(base["gdp_real"].where(base["gdp_real"] > 0))
        lpop = np.log(base["population_interp"].where(base["population_interp"] > 0))
    u = d["unit"].astype(str)
    d["lgdp0"] = u.map(lgdp).to_numpy(float)
    d["lpop0"] = u.map(lpop).to_numpy(float)
    years = d["time"].to_numpy(float) - base_year
    d["trend_lgdp0"] = d["lgdp0"] * years
    d["trend_lpop0"] = d["lpop0"] * years
    missing = sorted(d.loc[d["lgdp0"].isna() | d["lpop0"].isna(), "unit"].unique().tolist())
    d = d[~d["unit"].isin(missing)].reset_index(drop=True)
    outcomes = tuple(dict.fromkeys([*panel.outcomes, "fdi_per_capita", "fdi_per_gdp"]))
    covs = tuple(dict.fromkeys([*panel.covariates, *COVARIATES, *TREND_COVARIATES]))
    geo = panel.geography
    adj = panel.adjacency
    if missing:
        geo = None if geo is None else geo.loc[~geo.index.isin(missing)]
        if adj is not None:
            adj = adj[~adj["unit"].isin(missing) & ~adj["neighbour"].isin(missing)]
    out = panel.replace(data=d, outcomes=outcomes, covariates=covs, geography=geo, adjacency=adj)
    return out, missing


#: ``no_flagged``'s input: quality flags, or (province, year) pairs of reporting breaks
Flagged: TypeAlias = Iterable[tuple[str, int]] | pd.DataFrame


def _flag_cells(flagged: Flagged | None) -> tuple[dict[str, int], set[tuple[str, int]]]:
    """``{province: first FDI break year}`` and the single-year flagged FDI city-years."""
    if flagged is None:
        return {}, set()
    if isinstance(flagged, pd.DataFrame):
        return flagged_cells(flagged, series="fdi")
    first: dict[str, int] = {}
    for item in flagged:
        try:
            p, y = item
            y = int(y)
        except (TypeError, ValueError) as exc:
            raise ZoneImpactError(
                "flagged must be the DataFrame of data_quality_flags() or (province, year) "
                f"pairs of FDI reporting-basis breaks; received the item {item!r}."
            ) from exc
        first[str(p)] = min(y, first.get(str(p), y))
    return first, set()


def restrict_sample(panel: Panel, sample: str, flagged: Flagged | None = None) -> Panel:
    """The panel of one sample of the curve.

    ``full``: unchanged. ``to2020``: years up to 2020 (before the 2021-2022 reporting-basis
    breaks); the zones that predate the data stay exposure sources (``_subpanel``), so
    the exposure maps of this sample are the full sample's. ``no_flagged``: the FDI
    outcomes set missing where the data are flagged (cohorts are kept, so a zone city
    keeps its adoption year). ``flagged`` is :func:`zoneimpact.china.quality.
    data_quality_flags`'s frame (its FDI flags are used) or ``(province, year)`` pairs of
    reporting-basis breaks.

    A province is blanked from its first break year **to the end**: a break is a change of
    what the bureau counts, and the cities stay on the new basis (on the shared data the
    median city stays at 0.02-0.12 of its 2014 level in 辽宁 from 2015 to 2022, at
    0.03-0.09 of 2018 in 黑龙江 from 2019, at 0.15-0.32 of 2015 in 云南 from 2016; 甘肃,
    which breaks in 2017 and again in 2020, never settles), so blanking the break year
    alone would leave the later
    new-basis years (174 city-years of the specs/china.toml panel) to be compared with
    the old basis (BJS imputation, log1p FDI: 0.311 full, 0.298 blanking the break years
    only, 0.223 from the first break on, 0.234 blanking the single-year flags as well).
    An ``isolated_spike`` or ``endpoint`` flag is one city-year on either side of which
    the series is consistent: blanked in its year only.
    """
    if sample == "full":
        return panel
    d = panel.data
    if sample == "to2020":
        return _subpanel(panel, (d["time"] <= 2020).to_numpy(), None)
    if sample == "no_flagged":
        prov = panel.require_geography(["province"])["province"].astype(str)
        first, cells = _flag_cells(flagged)
        unit = d["unit"].astype(str)
        t = d["time"].astype(int)
        onset = d["unit"].map(prov).astype(str).map(first)
        persist = (onset.notna() & (t >= onset)).to_numpy(bool)
        single = np.fromiter(
            ((u, y) in cells for u, y in zip(unit, t, strict=True)), dtype=bool, count=len(d)
        )
        hit = persist | single
        new = d.copy()
        for col in FDI_OUTCOMES:
            if col in new.columns:
                new.loc[hit, col] = np.nan
        return panel.replace(data=new)
    raise ZoneImpactError(f"sample {sample!r} unknown; use 'full', 'no_flagged' or 'to2020'.")


def _roles(panel: Panel, emap: ExposureMap | None) -> tuple[np.ndarray, np.ndarray]:
    """Role and exposure onset of every row (``none``: every non-zone city is clean)."""
    d = panel.data
    if emap is None:
        g = d["cohort"].to_numpy(float)
        return np.where(np.isfinite(g), "direct", "clean"), np.full(len(d), np.inf)
    tab = emap.table.reindex(d["unit"].unique())
    unit = d["unit"].to_numpy()
    role = tab["role"].reindex(unit).to_numpy()
    onset = tab["exposure_onset"].reindex(unit).to_numpy(float)
    return role, onset


def direct_panel(panel: Panel, emap: ExposureMap | None, controls: str) -> Panel:
    """Zone cities against clean controls (Butts 2021, the direct piece).

    Mirrors :meth:`ExposureMap.panels` (which cannot build the spillover panels when some
    exposure predates the data): zone cities lose their years exposed to an earlier zone
    before their own; ``controls="not_yet"`` keeps exposed cities' years before their
    exposure as control rows.
    """
    d = panel.data
    if emap is None:
        return panel
    role, onset = _roles(panel, emap)
    t = d["time"].to_numpy(float)
    g = d["cohort"].to_numpy(float)
    zone = role == "direct"
    keep = (zone & ~((t >= onset) & (t < g))) | (role == "clean")
    if controls == "not_yet":
        keep |= (role == "exposed") & (t < onset)
    return _subpanel(panel, keep, None)


def spillover_panel(panel: Panel, emap: ExposureMap) -> Panel | None:
    """Exposed cities, treated from their exposure onset, against the clean controls.

    Cities exposed from before the data start (a neighbour's zone predates 1996) have no
    unexposed year and are left out; None when no exposed city remains.
    """
    d = panel.data
    role, onset = _roles(panel, emap)
    exposed = (role == "exposed") & (onset > float(d["time"].min()))
    if not exposed.any():
        return None
    return _subpanel(panel, exposed | (role == "clean"), np.where(exposed, onset, np.inf))


def _counts(sub: Panel, outcome: str, controls: str, emap: ExposureMap | None) -> dict[str, int]:
    """Treated cities, clean controls (no zone, never exposed) and not-yet-treated or
    not-yet-exposed control cities of a direct panel (cities with the outcome observed)."""
    d = sub.data[sub.data[outcome].notna()]
    g = d.groupby("unit")["cohort"].first()
    finite = np.isfinite(g.to_numpy(float))
    treated = set(g.index[finite])
    post = set(d.loc[d["time"] >= d["cohort"], "unit"])
    pre = set(d.loc[d["time"] < d["cohort"], "unit"]) & treated
    if emap is None:
        clean = set(g.index[~finite])
        later_exposed: set[Any] = set()
    else:
        role = emap.table["role"].reindex(g.index)
        clean = set(g.index[(role == "clean").to_numpy()])
        later_exposed = set(g.index[(role == "exposed").to_numpy()])
    return {
        "n_treated": len(treated & post),
        "n_clean": len(clean),
        "n_not_yet": len(pre) + len(later_exposed) if controls == "not_yet" else 0,
    }


def _estimable_treated(data: pd.DataFrame, outcome: str) -> int:
    """Zone cities with the outcome observed in a year before and a year from their zone:
    the most a fit with unit effects can use (a city seen only after its zone has no
    untreated year to learn its own level from)."""
    d = data[data[outcome].notna() & np.isfinite(data["cohort"].to_numpy(float))]
    pre = set(d.loc[d["time"] < d["cohort"], "unit"])
    return len(pre & set(d.loc[d["time"] >= d["cohort"], "unit"]))


def _cs_treated(sub: Panel, outcome: str, res: Any) -> int:
    """Zone cities in an estimated post-zone ATT(g,t) cell of a Callaway-Sant'Anna fit:
    of cohort ``g`` and observed in ``t`` and in the cell's base period (CS compares
    their change between the two)."""
    cells = res.att_gt
    cells = cells[(cells["event_time"] >= 0) & np.isfinite(cells["estimate"].to_numpy(float))]
    d = sub.data[sub.data[outcome].notna()]
    seen = set(zip(d["unit"], d["time"].astype(float), strict=True))
    coh = d.groupby("unit")["cohort"].first()
    used: set[Any] = set()
    for g, t, b in cells[["cohort", "time", "base_period"]].itertuples(index=False):
        for u in coh.index[(coh == float(g)).to_numpy()]:
            if (u, float(t)) in seen and (u, float(b)) in seen:
                used.add(u)
    return len(used)


def _ppml_treated(res: Any, sub: Panel) -> int:
    """Zone cities PPML kept (all-zero cities dropped) with a pre- and a post-zone row."""
    rows = getattr(getattr(res, "design", None), "rows", None)
    if rows is None:
        return _estimable_treated(sub.data, "fdi")
    kept = sub.data.merge(rows[["unit", "time"]], on=["unit", "time"])
    return _estimable_treated(kept, "fdi")


def _piece_units(res: Any, prefix: str) -> int | None:
    """Units with an estimated target in the spillover fit's pieces named ``prefix``
    (``"direct"``, ``"spillover:"``): what the piece's mean and total cover. None when
    the result keeps no fitted pieces."""
    fitted = getattr(res, "fitted", None)
    if fitted is None:
        return None
    used: set[Any] = set()
    for name, f in fitted.fits.items():
        if not (name == prefix or (prefix.endswith(":") and name.startswith(prefix))):
            continue
        sc = f.rescore
        if f.n > 0 and hasattr(sc, "unit_row") and hasattr(sc, "fit"):
            used |= set(np.asarray(fitted.units)[sc.unit_row[sc.fit.target]].tolist())
        elif f.n > 0 and f.target_units:
            used |= set(f.target_units)
        elif f.n > 0:
            return None
    return len(used)


def _pre_mean(sub: Panel, outcome: str) -> float:
    d = sub.data
    pre = d[np.isfinite(d["cohort"]) & (d["time"] < d["cohort"])][outcome]
    return float(pre.mean()) if pre.notna().any() else math.nan


# ---------------------------------------------------------------------- one specification
def _row(res: EstimationResult, term: str, alpha: float, **extra: Any) -> dict[str, Any]:
    t = res.terms.set_index("term")
    est = float(t.at[term, "estimate"])
    se = float(t.at[term, "se"])
    df = verdict_df(res, term)
    z = t_quantile(1 - alpha, df)
    from ..estimators.spillover import own_interval

    # the displacement share's set is Fieller's (asymmetric, possibly unbounded): the
    # verdict must read it (ci_level); the others are estimate +- t x SE at any level
    own = own_interval(res, term, alpha)
    lo, hi = own or (est - z * se, est + z * se)
    return {
        "estimate": est,
        "se": se,
        "df": df,
        "ci_low": lo,
        "ci_high": hi,
        "ci_level": 1 - 2 * alpha if own is not None else math.nan,
        **extra,
    }


def _ppml_placebo(sub: Panel, shift: int = 3) -> float:
    """Placebo-in-time p-value for PPML: the pre-zone years only, with the zone dated
    ``shift`` years early (a zero coefficient is what parallel trends predict)."""
    from ..estimators import get_estimator

    d = sub.data
    g = d["cohort"].to_numpy(float)
    keep = ~(d["time"].to_numpy(float) >= g)
    fake = np.where(np.isfinite(g), g - shift, np.inf)
    pre = _subpanel(sub, keep, fake)
    res = get_estimator("ppml")(pre, outcome="fdi", cluster="province")
    t = res.terms.set_index("term")
    z = float(t.at["att", "estimate"]) / float(t.at["att", "se"])
    return float(2 * stats.norm.sf(abs(z)))


def _fit_imputation(sub: Panel, outcome: str, *, pretrends: int | None) -> Any:
    """The curve's BJS imputation fit (direct specifications and the heterogeneity table):
    baseline-size trends, province clusters, BJS's leave-out variance (Supplementary
    Appendix A.9) and CR2 residuals with Bell-McCaffrey df (``small_sample="cr2"``, as
    the curve's spillover fits). On China's structure (simulated FDI,
    ``benchmarks/mc_referee_china_structure.py --direct``) t(G - 1) intervals without the
    leave-out rejected a true null in 6-13.5% of worlds at 5%, with it in 4-10% (the
    3-nearest map's rows 9-10%, SE/SD 0.87-0.89), which CR2 addresses."""
    from ..estimators import get_estimator

    return get_estimator("imputation")(
        sub,
        outcome=outcome,
        cluster="province",
        pretrends=pretrends,
        covariates=list(TREND_COVARIATES),
        leave_out=True,
        small_sample="cr2",
    )


def curve_exposure(panel: Panel, name: str) -> ExposureMap | None:
    """The exposure map of one of the curve's :data:`EXPOSURES` (None for ``"none"``)."""
    if name == "none":
        return None
    opts = dict(EXPOSURES[name])
    kind = opts.pop("exposure")
    return build_exposure(panel, kind, region_column="province", **opts)


def _fit_direct(
    sub: Panel,
    scale: Scale,
    estimator: str,
    controls: str,
    alpha: float,
    cs_inference: str = "jackknife",
    n_jobs: int = 1,
) -> dict[str, Any]:
    """One direct-effect estimate with its pre-trend p-value (CS rows: the
    delete-one-province jackknife, every deletion's cells estimated at once, or with
    ``cs_inference="analytic"`` the influence function, with no re-estimation per
    deleted province)."""
    from ..estimators import get_estimator

    out = scale.outcome
    if estimator == "imputation":
        res = _fit_imputation(sub, out, pretrends=5)
        return _row(res, "att", alpha, pretrend_p=res.info.get("pretrend_p"),
                    pretrend_test="BJS Test 1, 5 leads, Hotelling F(L, G - L)", judged=True,
                    n_treated=int(res.effects["unit"].nunique()))  # fmt: skip
    if estimator == "cs_dr":
        res = get_estimator("callaway_santanna")(
            sub,
            outcome=out,
            control_group="never_treated" if controls == "clean" else "not_yet_treated",
            est_method="dr",
            covariates=list(COVARIATES),
            bootstrap=False,
            cluster="province",
            aggregations=("simple", "dynamic"),
            min_e=-6,
            max_e=10,
            n_jobs=n_jobs,
        )
        if cs_inference == "jackknife":
            res = res.with_inference("jackknife", cluster="province")
        return _row(res, "att", alpha, pretrend_p=res.info.get("pretrend_p"),
                    pretrend_test=f"CS joint Wald of leads -6..-2 ({cs_inference}), F(L, G - L)",
                    judged=True,
                    n_treated=_cs_treated(sub, out, res))  # fmt: skip
    if estimator == "ppml":
        res = get_estimator("ppml")(sub, outcome=out, cluster="province")
        return _row(res, "att", alpha, pretrend_p=_ppml_placebo(sub),
                    pretrend_test="placebo zone 3 years early, pre-zone years", judged=True,
                    n_treated=_ppml_treated(res, sub))  # fmt: skip
    if estimator in ("ife", "matrix_completion"):
        opts: dict[str, Any] = {"se_method": None, "diagnostics": False}
        if estimator == "ife":
            opts["r_max"] = 3
        else:
            opts["n_lambda"] = 4
        res = get_estimator(estimator)(sub, outcome=out, rng=np.random.default_rng(0), **opts)
        est = float(res.coef("att"))
        return {"estimate": est, "se": math.nan, "df": math.inf, "ci_low": math.nan,
                "ci_high": math.nan, "pretrend_p": math.nan, "pretrend_test": "",
                "judged": False, "note": "point estimate only (SEs need a bootstrap)",
                "n_treated": _estimable_treated(sub.data, out)}  # fmt: skip
    raise ZoneImpactError(f"estimator {estimator!r} is not part of the curve.")


def _sdid_by_cohort(sub: Panel, scale: Scale, alpha: float) -> dict[str, Any]:
    """Synthetic DiD per adoption cohort (clean controls as donors), averaged with the
    cohorts' treated city-years as weights; point estimate only."""
    from ..estimators import get_estimator

    d = sub.data
    g = d.groupby("unit")["cohort"].first()
    clean = set(g.index[~np.isfinite(g.to_numpy(float))])
    ests, weights = [], []
    n_used = 0
    last = int(d["time"].max())
    for cohort in sorted(c for c in set(g) if np.isfinite(c)):
        members = set(g.index[(g == cohort).to_numpy()])
        rows = d["unit"].isin(members | clean).to_numpy()
        one = _subpanel(sub, rows, None)
        wide = one.wide(scale.outcome)
        if wide.isna().any().any():
            wide = wide.dropna(axis=0)
        keep_units = set(wide.index)
        if (
            len(keep_units & members) == 0
            or len(keep_units & clean) < 2
            or cohort - d["time"].min() < 3
        ):
            continue
        bal = _subpanel(one, one.data["unit"].isin(keep_units).to_numpy(), None)
        try:
            res = get_estimator("synthetic_did")(bal, outcome=scale.outcome, se_method=None)
        except ZoneImpactError:
            continue
        ests.append(float(res.coef("att")))
        weights.append(len(keep_units & members) * (last - cohort + 1))
        n_used += len(keep_units & members)
    if not ests:
        raise ZoneImpactError("no cohort with a balanced treated city and two clean donors")
    est = float(np.average(ests, weights=weights))
    return {"estimate": est, "se": math.nan, "df": math.inf, "ci_low": math.nan,
            "ci_high": math.nan, "pretrend_p": math.nan, "pretrend_test": "", "judged": False,
            "n_treated": n_used, "note": f"SDID per cohort, {len(ests)} cohorts (balanced cities only); point estimate only"}  # fmt: skip


def _fit_spillover(
    sub: Panel, emap: ExposureMap, scale: Scale, controls: str, alpha: float
) -> list[dict[str, Any]]:
    """Direct, spillover, net and displacement share from one spillover fit (analytic
    joint cluster scores, no bootstrap), with the spillover piece's pre-trend p-value
    (net and the share: the smallest of their pieces', :func:`_net_pretrend`)."""
    from ..estimators import get_estimator

    res = get_estimator("spillover")(
        sub,
        outcome=scale.outcome,
        exposure=emap,
        controls="never_exposed" if controls == "clean" else "not_yet_exposed",
        covariates=list(COVARIATES),
        cluster="province",
        region_column="province",
        # the default CR2 with Bell-McCaffrey t: on China's own structure (real cities,
        # provinces, openings and gaps; simulated heavy-tailed FDI, 500 worlds,
        # benchmarks/mc_referee_china_structure.py) t(G - 1) without CR2 rejected a true
        # null net effect 7.0% of the time at 5% (SE/SD 0.86), CR2 3.2%
        small_sample="cr2",
        n_boot=0,
        # the curve's two-sided 1 - 2 alpha intervals: the t reference matched at their level
        alpha=2 * alpha,
    )
    pre = _piece_pretrends(sub, emap, scale.outcome)
    net_p, net_test = _net_pretrend(pre)
    # totals (net effect, displacement share) add up only in levels
    terms = ["spillover", "net_per_treated", "displacement_share"]
    if scale.name != "levels":
        terms = ["spillover"]
    present = set(res.terms["term"])
    n_zone = _piece_units(res, "direct")
    n_exposed = _piece_units(res, "spillover:")
    # what the fit said about net: totals over estimated targets only, and losses shared
    # with zones whose gain no total counts (the share's bounds)
    net_note = "; ".join(
        str(res.info[k]) for k in ("net_note", "joint_source_note") if res.info.get(k)
    )
    out = []
    for term in terms:
        if term not in present:
            continue
        estimand = {"net_per_treated": "net"}.get(term, term)
        if term == "spillover":
            p, test = (
                pre.get("spillover", math.nan),
                "BJS Test 1 on the exposed cities, 5 leads, Hotelling F(L, G - L)",
            )
            # the exposed cities with an estimated effect; the map's exposed cities apart
            used, mapped, note = n_exposed, int(res.info.get("n_exposed_units", 0)), ""
        else:
            p, test = net_p, net_test
            # net and the share add totals over the estimated targets only (net_note);
            # per treated = per estimated zone city-year of the direct piece
            used, mapped, note = n_zone, int(res.info.get("n_direct_units", 0)), net_note
        out.append(
            {
                "estimand": estimand,
                **_row(res, term, alpha, pretrend_p=p, pretrend_test=test, judged=True),
                "n_treated": math.nan if used is None else used,
                "n_treated_map": mapped,
                "note": note,
                "pre_mean": float(res.info.get("pre_mean", math.nan)),
            }
        )  # fmt: skip
    return out


#: the pieces net adds, as named in the pre-trend note of a net or share row
_PIECE_NAMES = {
    "direct": "zone cities",
    "spillover": "exposed cities",
    "spillover_on_zones": "zone cities exposed before their zone",
}


def _piece_pretrends(panel: Panel, emap: ExposureMap, outcome: str) -> dict[str, float]:
    """BJS Test 1 (5 leads, trend covariates, province clusters) on every piece net adds.

    NaN where a piece has units but its test cannot be run; the piece is absent from the
    dict where it has no units (it adds nothing to net).
    """
    from ..estimators import get_estimator
    from ..estimators.spillover import zones_exposed_panel

    def zones_piece() -> Panel | None:
        # the rows the fit's piece uses (its controls not yet exposed, as _fit_spillover's)
        return zones_exposed_panel(panel, outcome, emap, "not_yet_exposed")[0]

    builders = {
        "direct": lambda: direct_panel(panel, emap, "not_yet"),
        "spillover": lambda: spillover_panel(panel, emap),
        "spillover_on_zones": zones_piece,
    }
    out: dict[str, float] = {}
    for piece, build in builders.items():
        try:
            sp = build()
            if sp is None:
                continue
            pt = get_estimator("imputation")(
                sp, outcome=outcome, cluster="province", pretrends=5,
                covariates=list(TREND_COVARIATES),
            )  # fmt: skip
            out[piece] = float(pt.info.get("pretrend_p", math.nan))
        except ZoneImpactError:
            out[piece] = math.nan
    return out


def _net_pretrend(pre: Mapping[str, float]) -> tuple[float, str]:
    """One pre-trend p-value for net and the share: the smallest of the pieces' p-values.

    Net sums the direct, spillover and spillover-on-zones totals, so a design is admissible
    for it only if no piece's test rejects: each piece is screened at the rule's level (a
    Bonferroni-adjusted family test would admit a design whose spillover piece alone is
    rejected). NaN when a piece with units could not be tested: an untested piece cannot
    be vouched for.
    """
    ps = np.array(list(pre.values()), dtype=float)
    each = "; ".join(f"{_PIECE_NAMES[k]} {p:.3g}" for k, p in pre.items())
    test = f"smallest BJS Test 1 p-value (5 leads, Hotelling F(L, G - L)) of the pieces net adds: {each}"
    if not len(ps) or np.isnan(ps).any():
        return math.nan, test
    return float(ps.min()), test


def specification_curve(
    panel: Panel,
    *,
    flagged: Flagged | None = None,
    exposures: Sequence[str] = tuple(EXPOSURES),
    samples: Sequence[str] = ("full", "no_flagged", "to2020"),
    alpha: float = 0.05,
    cs_inference: str = "jackknife",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Run every specification; one row per specification x estimand (:data:`CURVE_COLUMNS`).

    Failures are rows with NaN estimates and the error in ``note`` (a specification that
    cannot be estimated is part of the answer). ``flagged``: as :func:`restrict_sample`'s;
    without any flag the ``no_flagged`` sample is left out. ``n_jobs``: joblib workers for
    the CS rows' jackknife refits (the rows do not depend on it).
    """
    rows: list[dict[str, Any]] = []
    if flagged is not None and not isinstance(flagged, pd.DataFrame):
        flagged = list(flagged)
    for sample in samples:
        if sample == "no_flagged" and not any(_flag_cells(flagged)):
            continue
        base = restrict_sample(panel, sample, flagged)
        for exposure in exposures:
            if exposure == "knn3" and sample != "full":
                continue  # budget: the 3-nearest map runs on the full sample only
            emap = curve_exposure(base, exposure)
            for controls in ("clean", "not_yet"):
                sub = direct_panel(base, emap, controls)
                for scale in SCALES.values():
                    estimators = _estimators(scale, exposure, controls, sample)
                    counts = _counts(sub, scale.outcome, controls, emap)
                    for est in estimators:
                        spec = f"{exposure}/{controls}/{scale.name}/{est}/{sample}"
                        head = {"spec": spec, "estimand": "direct", "scale": scale.name,
                                "scale_kind": scale.kind, "outcome": scale.outcome,
                                "exposure": exposure, "controls": controls,
                                "estimator": est, "sample": sample,
                                "n_treated": math.nan, "n_treated_map": counts["n_treated"],
                                "n_clean": counts["n_clean"], "n_not_yet": counts["n_not_yet"],
                                "pre_mean": _pre_mean(sub, scale.outcome)}  # fmt: skip
                        tic = time.perf_counter()
                        try:
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore")
                                if est == "sdid_cohort":
                                    fit = _sdid_by_cohort(sub, scale, alpha)
                                else:
                                    fit = _fit_direct(
                                        sub, scale, est, controls, alpha, cs_inference, n_jobs
                                    )
                            rows.append({**head, **fit, "seconds": time.perf_counter() - tic})
                        except (ZoneImpactError, ValueError, np.linalg.LinAlgError) as exc:
                            rows.append(
                                {**head, "judged": False, "note": f"not estimable: {exc}"[:200]}
                            )
                    spill_cell = scale.name == "levels" or (
                        scale.name == "log1p" and sample == "full"
                    )
                    if emap is not None and spill_cell and controls == "not_yet":
                        tic = time.perf_counter()
                        try:
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore")
                                pieces = _fit_spillover(base, emap, scale, controls, alpha)
                        except (ZoneImpactError, ValueError, np.linalg.LinAlgError) as exc:
                            pieces = []
                            rows.append({"spec": f"{exposure}/{controls}/{scale.name}/spillover/{sample}",
                                         "estimand": "spillover", "judged": False,
                                         "note": f"not estimable: {exc}"[:200]})  # fmt: skip
                        for piece in pieces:
                            rows.append(
                                {
                                    **head,
                                    "spec": f"{exposure}/{controls}/{scale.name}/spillover/{sample}",
                                    "estimator": "spillover/imputation",
                                    "n_not_yet": counts["n_not_yet"],
                                    **piece,
                                    "seconds": time.perf_counter() - tic,
                                }
                            )
    return pd.DataFrame(rows).reindex(columns=CURVE_COLUMNS)


def _estimators(scale: Scale, exposure: str, controls: str, sample: str) -> list[str]:
    """Which estimators a cell of the curve runs.

    The budget (the whole claims run in under 3 minutes on a 2-core machine) sets the
    cells: every sample runs imputation on every scale; CS doubly robust runs on every
    scale of the full sample and on levels and log1p with not-yet-treated controls in the
    other samples; PPML runs without an exposure map and with the 100 km rings in the full
    sample and without one in the others; the factor models and per-cohort SDID (point
    estimates) run once each, in the full sample.
    """
    full = sample == "full"
    if scale.name == "ppml":
        wanted = ("none", "ring100") if full else ("none",)
        return ["ppml"] if exposure in wanted and controls == "not_yet" else []
    out = []
    # imputation always uses the not-yet-treated zone cities' own untreated years; with no
    # exposure map "clean" and "not_yet" are the same design
    if not (exposure == "none" and controls == "clean"):
        out.append("imputation")
    if full or (scale.name in ("levels", "log1p") and controls == "not_yet"):
        out.append("cs_dr")
    if full and scale.name == "log1p" and exposure == "adjacency" and controls == "not_yet":
        out += ["ife", "matrix_completion"]
    if full and scale.name in ("levels", "log1p") and exposure == "none" and controls == "not_yet":
        out.append("sdid_cohort")
    return out


# ---------------------------------------------------------------------- heterogeneity
def heterogeneity_table(
    panel: Panel, attributes: pd.DataFrame, *, alpha: float = 0.05
) -> pd.DataFrame:
    """Direct effects by subgroup of zone cities and the contrast between subgroups.

    Design: 100 km rings (the exposure map that keeps more than 20 clean controls, as the
    curve's verdict rule asks), not-yet-exposed controls, imputation with baseline-
    covariate trends, on ``log1p`` and ``levels``; a group too small for the 5-lead
    pre-trend test is estimated without it (noted). Each subgroup is
    estimated on its own zone cities plus all controls; a contrast's SE treats the two fits
    as independent, which overstates it when both share the controls (their errors then
    co-move) — conservative.

    ``attributes`` (indexed by city code): ``cohort_etdz``, ``cohort_htz``, ``n_zones``,
    ``province``. Splits: cohort wave (1996-2008 / 2009-2013 / 2014+), type of the first
    zone (ETDZ / HTZ), coast vs inland (province on the sea), dose (one national zone vs
    two or more by 2018; a dose contrast assumes that cities with several zones would have
    gained what one-zone cities gained from one — Callaway, Goodman-Bacon & Sant'Anna's
    2024 strong parallel trends — else it mixes dose and selection).

    ``n_treated`` counts a group's zone cities with an estimated effect (the direct panel
    drops zone-city years exposed to an earlier zone, so many have no untreated year
    left), ``n_treated_map`` all of the group's zone cities.
    """
    emap = build_exposure(panel, "rings", rings_km=[(0.0, 100.0)], region_column="province")
    sub = direct_panel(panel, emap, "not_yet")
    g = sub.unit_cohort
    attrs = attributes.reindex(g.index.astype(str))
    attrs.index = g.index
    zone = np.isfinite(g.to_numpy(float))
    first_etdz = attrs["cohort_etdz"].to_numpy(float) <= attrs["cohort_htz"].fillna(
        np.inf
    ).to_numpy(float)
    splits: dict[str, dict[str, np.ndarray]] = {
        # the contrast is last minus first: the 2009-2013 wave against the early one
        "cohort wave": {
            "1996-2008": zone & (g.to_numpy(float) <= 2008),
            "2014+": zone & (g.to_numpy(float) >= 2014),
            "2009-2013": zone & (g.to_numpy(float) >= 2009) & (g.to_numpy(float) <= 2013),
        },
        "first zone type": {"ETDZ": zone & first_etdz, "HTZ": zone & ~first_etdz},
        "coast": {
            "coastal": zone & attrs["province"].isin(COASTAL_PROVINCES).to_numpy(),
            "inland": zone & ~attrs["province"].isin(COASTAL_PROVINCES).to_numpy(),
        },
        "dose (zones by 2018)": {
            "1 zone": zone & (attrs["n_zones"].to_numpy(float) <= 1),
            "2+ zones": zone & (attrs["n_zones"].to_numpy(float) >= 2),
        },
    }
    rows: list[dict[str, Any]] = []
    for scale_name in ("log1p", "levels"):
        scale = SCALES[scale_name]
        for split, groups in splits.items():
            fits: dict[str, dict[str, Any]] = {}
            for label, members in groups.items():
                chosen = set(g.index[members]) | set(g.index[~zone])
                part = _subpanel(sub, sub.data["unit"].isin(chosen).to_numpy(), None)
                # n_treated: the group's zone cities the fit estimated an effect for;
                # n_treated_map: the group's zone cities in the design
                row: dict[str, Any] = {"scale": scale_name, "split": split, "group": label,
                                       "n_treated": math.nan,
                                       "n_treated_map": int(members.sum())}  # fmt: skip
                fit = None
                for leads in (5, None):
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            res = _fit_imputation(part, scale.outcome, pretrends=leads)
                        fit = _row(
                            res,
                            "att",
                            alpha,
                            pretrend_p=res.info.get("pretrend_p"),
                            n_treated=int(res.effects["unit"].nunique()),
                        )
                        if leads is None:
                            row["note"] = "too few cities for the 5-lead pre-trend test"
                        elif res.info.get("pretrend_note"):
                            # L >= G: the leads' covariance is singular (LinAlgError before)
                            row["note"] = "too few province clusters for the 5-lead pre-trend test"
                        break
                    except (ZoneImpactError, ValueError, np.linalg.LinAlgError) as exc:
                        row["note"] = f"not estimable: {exc}"[:160]
                if fit is not None:
                    row.update(
                        fit, n_clean=_counts(part, scale.outcome, "not_yet", emap)["n_clean"]
                    )
                    fits[label] = fit
                rows.append(row)
            labels = list(groups)
            if len(labels) >= 2 and labels[0] in fits and labels[-1] in fits:
                a, b = fits[labels[0]], fits[labels[-1]]
                est = b["estimate"] - a["estimate"]
                se = math.hypot(a["se"], b["se"])
                df = _welch_df(a, b)
                z = t_quantile(1 - alpha, df)
                rows.append({"scale": scale_name, "split": split,
                             "group": f"{labels[-1]} - {labels[0]}", "estimate": est, "se": se,
                             "df": df, "ci_low": est - z * se, "ci_high": est + z * se,
                             "note": "contrast; SE assumes independent fits (conservative), "
                                     "Welch-Satterthwaite df"})  # fmt: skip
    return pd.DataFrame(rows)


def _welch_df(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Welch-Satterthwaite degrees of freedom of the difference of two independent
    estimates with their own t references: ``(s_a^2 + s_b^2)^2 / (s_a^4 / d_a + s_b^4 /
    d_b)`` (Welch 1947). With the groups' Bell-McCaffrey df as low as 1.2 the normal
    reference made a contrast narrower than its own groups' intervals (a reviewer: 2009-2013
    minus 1996-2008, SE 196, normal -204 to 440; with these df -547 to 783)."""
    va, vb = float(a["se"]) ** 2, float(b["se"]) ** 2
    parts = [v * v / float(d) for v, d in ((va, a["df"]), (vb, b["df"])) if math.isfinite(d)]
    den = sum(parts)
    return (va + vb) ** 2 / den if den > 0 else math.inf


# ---------------------------------------------------------------------- sensitivity
def honest_sensitivity(
    results: Mapping[str, EstimationResult], *, alpha: float = 0.05
) -> tuple[pd.DataFrame, Any]:
    """Rambachan-Roth robust intervals under relative magnitudes and smoothness.

    For every event study in ``results`` (CS with a universal base period): the robust
    90%... intervals of the first post-period effect over a grid of Mbar (relative
    magnitudes, C-LF) and of M (smoothness, FLCI), the two breakdown values, and a figure
    with one panel per restriction.
    """
    from ..inference.honest import honest_did

    rows: list[dict[str, Any]] = []
    kinds = ("relative_magnitude", "smoothness")
    n = max(len(results), 1)
    # not registered with pyplot: a claims run keeps its figures without leaking them
    fig, axes = style.new_figure(nrows=n, ncols=2, width=9, height=3.2 * n, squeeze=False)
    for i, (name, res) in enumerate(results.items()):
        for ax, kind in zip(axes[i], kinds, strict=True):
            try:
                h = honest_did(res, type=kind, alpha=alpha)  # type: ignore[arg-type]
            except (ZoneImpactError, ValueError) as exc:
                rows.append({"estimate_block": name, "restriction": kind, "note": str(exc)[:160]})
                continue
            tab = h.table
            for _, r in tab.iterrows():
                rows.append(
                    {
                        "estimate_block": name,
                        "outcome": res.outcome,
                        "restriction": kind,
                        "m": float(r["m"]),
                        "lb": float(r["lb"]),
                        "ub": float(r["ub"]),
                        "breakdown": h.breakdown,
                        "estimate": h.estimate,
                        "original_low": h.original_ci[0],
                        "original_high": h.original_ci[1],
                    }
                )
            m = tab["m"].to_numpy(float)
            ax.fill_between(m, tab["lb"].to_numpy(float), tab["ub"].to_numpy(float), alpha=0.3)
            ax.plot(m, tab["lb"].to_numpy(float), "o-", ms=3, color="C0")
            ax.plot(m, tab["ub"].to_numpy(float), "o-", ms=3, color="C0")
            ax.axhline(0, color="black", lw=0.8)
            what = (
                "Mbar (relative magnitudes)" if kind == "relative_magnitude" else "M (smoothness)"
            )
            ax.set_xlabel(what)
            ax.set_ylabel(f"first-year effect on {res.outcome}")
            ax.set_title(f"{name}: breakdown {h.breakdown:.3g}", fontsize=9)
    fig.suptitle(
        f"Rambachan-Roth robust {100 * (1 - alpha):g}% intervals of the zone effect", fontsize=10
    )
    return pd.DataFrame(rows), fig


# ---------------------------------------------------------------------- figure
def _curve_level(rows: pd.DataFrame) -> str:
    """The level of the curve's intervals as "90%": ``ci_level`` where recorded (Fieller
    sets), else read back from the symmetric interval est +- q x SE with q the t (or
    normal) quantile at the row's df; "per-specification" when the rows disagree."""
    levels: set[float] = set()
    for _, r in rows.iterrows():
        lvl = r.get("ci_level", math.nan)
        if not (isinstance(lvl, float | int) and np.isfinite(lvl)):
            se, half = float(r.get("se", math.nan)), float(r["ci_high"] - r["estimate"])
            if not (np.isfinite(se) and se > 0 and np.isfinite(half)):
                continue
            df = float(r.get("df", math.inf))
            tail = stats.t.sf(half / se, df) if np.isfinite(df) else stats.norm.sf(half / se)
            lvl = 1.0 - 2.0 * float(tail)
        levels.add(round(100.0 * float(lvl), 2))
    if len(levels) == 1:
        return f"{levels.pop():g}%"
    return "per-specification" if levels else "pointwise"


def curve_figure(curve: pd.DataFrame, admissible: pd.Series | None = None) -> Any:
    """Specification curve of the direct effect: one panel per scale, specifications
    sorted by estimate, with their (1 - 2 alpha) intervals (the level read from the
    curve), admissible ones dark (Simonsohn et al. 2020)."""
    direct = curve[(curve["estimand"] == "direct") & curve["estimate"].notna()]
    scales = [s for s in SCALES if (direct["scale"] == s).any()]
    fig, axes = style.new_figure(
        ncols=max(len(scales), 1), width=3.2 * max(len(scales), 1), height=4
    )
    axes = np.atleast_1d(axes)
    ok = admissible if admissible is not None else pd.Series(True, index=curve.index)
    for ax, s in zip(axes, scales, strict=False):
        part = direct[direct["scale"] == s].sort_values("estimate")
        x = np.arange(len(part))
        good = ok.reindex(part.index).fillna(False).to_numpy(bool)
        for mask, colour in ((~good, "0.7"), (good, "black")):
            ax.errorbar(x[mask], part["estimate"].to_numpy()[mask],
                        yerr=[(part["estimate"] - part["ci_low"]).to_numpy()[mask],
                              (part["ci_high"] - part["estimate"]).to_numpy()[mask]],
                        fmt="o", ms=2.5, lw=0.6, color=colour)  # fmt: skip
        ax.axhline(0, color="red", lw=0.7)
        ax.set_title(f"{s} ({int(good.sum())}/{len(part)} admissible)", fontsize=9)
        ax.set_xlabel("specification (sorted)")
    axes[0].set_ylabel(f"direct effect of a zone ({_curve_level(direct)} CI)")
    return fig


# ---------------------------------------------------------------------- the run
@dataclass
class CurveRun:
    """What :func:`run_china_curve` produced: the curve, tables, figures and notes."""

    curve: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _optional(notes: list[str], what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a companion table or map's function; its failure becomes a note, so that the
    curve itself is still written (``tests/test_figures.py`` requires no such note on the
    China data)."""
    try:
        return func(*args, **kwargs)
    except (ZoneImpactError, ValueError, KeyError, ImportError, TypeError) as exc:
        notes.append(f"{what}: failed ({type(exc).__name__}: {exc})"[:300])
    return None


def run_china_curve(
    panel: Panel,
    data_dir: str | Path,
    *,
    event_studies: Mapping[str, EstimationResult] | None = None,
    alpha: float = 0.05,
    samples: Sequence[str] = ("full", "no_flagged", "to2020"),
    cs_inference: str = "jackknife",
    n_jobs: int = 1,
) -> CurveRun:
    """The China study's referee tables: data quality, balance, control counts, the
    specification curve, heterogeneity, Rambachan-Roth sensitivity, maps and the
    Wanjiang descriptive table.

    ``panel`` is the claims run's city panel; ``cs_inference`` the CS rows' variance
    (``[claims.curve] cs_inference``), its jackknife refits on ``n_jobs`` joblib workers
    (``[inference] n_jobs``); ``event_studies`` the CS event studies with a
    universal base period for the sensitivity analysis.
    """
    from . import balance, maps, quality, wanjiang
    from .study import build_study_panel

    start = time.perf_counter()
    notes: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    figures: dict[str, Any] = {}
    frame, _, _, _ = build_study_panel(data_dir, geography=False)
    full, dropped = prepare_panel(panel, frame)
    if dropped:
        notes.append(
            f"{len(dropped)} cities without a 2000 baseline GDP/population dropped: {dropped}"
        )

    flags = _optional(notes, "data-quality flags", quality.data_quality_flags, data_dir)
    if flags is not None:
        tab = _optional(notes, "data-quality table", quality.quality_table, flags)
        if tab is not None:
            tables["data_quality"] = tab
    emap = build_exposure(full, "adjacency", region_column="province")
    counts = _optional(notes, "control counts", balance.control_counts, full, exposure=emap,
                       outcome="fdi")  # fmt: skip
    if counts is not None:
        tables["control_counts"] = counts
    bal = _optional(notes, "balance table", balance.balance_table, frame, full, exposure=emap)
    if bal is not None:
        tables["balance"] = bal
    growth = _optional(notes, "Wanjiang growth table", wanjiang.wanjiang_growth_table, data_dir)
    if growth is not None:
        tables["wanjiang_growth"] = growth

    curve = specification_curve(
        full,
        flagged=flags,
        samples=samples,
        alpha=alpha,
        cs_inference=cs_inference,
        n_jobs=n_jobs,
    )
    if "no_flagged" in samples and not any(_flag_cells(flags)):
        notes.append("sample 'no_flagged' left out: no flagged FDI data available")
    tables["specification_curve"] = curve
    tables["scales"] = pd.DataFrame(
        [
            {"scale": s.name, "outcome": s.outcome, "kind": s.kind, "assumes": s.assumes}
            for s in SCALES.values()
        ]  # fmt: skip
    )
    attrs = frame.groupby(frame["city_code"].astype(str)).agg(
        cohort_etdz=("cohort_etdz", "first"),
        cohort_htz=("cohort_htz", "first"),
        n_etdz=("n_etdz", "max"),
        n_htz=("n_htz", "max"),
        province=("province", "first"),
    )
    attrs["n_zones"] = attrs["n_etdz"] + attrs["n_htz"]
    tables["heterogeneity"] = heterogeneity_table(full, attrs, alpha=alpha)
    if event_studies:
        honest, fig = honest_sensitivity(event_studies, alpha=alpha)
        tables["honest_sensitivity"] = honest
        figures["honest_sensitivity"] = fig
    # the maps use the 100 km rings of the heterogeneity table, an admissible design (more
    # than 20 clean controls); the shared-border map above keeps too few
    ring100 = build_exposure(full, "rings", rings_km=[(0.0, 100.0)], region_column="province")
    role = _optional(notes, "role map", maps.role_map, full, exposure=ring100, outcome="fdi")
    if role is not None:
        figures["role_map"] = role
    effects = _optional(notes, "city effects", maps.city_effects, full, outcome="fdi",
                        exposure=ring100)  # fmt: skip
    if effects is not None:
        est_map = _optional(notes, "estimate map", maps.estimate_map, effects,
                            label="effect on FDI, USD million a year")  # fmt: skip
        if est_map is not None:
            figures["estimate_map"] = est_map
    return CurveRun(curve, tables, figures, notes, time.perf_counter() - start)
