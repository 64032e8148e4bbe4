"""Zone panels with a known truth: direct effects, spillovers and displacement.

The simulator writes down both worlds for every unit and period — the outcome with the
zones and the outcome had no zone ever opened — so the truth of every estimand is a plain
average of their difference, whatever the outcome's shape (skewed, zero-inflated, counts).

Design (all settings in :class:`SimulationDesign`):

* ``n_units`` units in ``n_regions`` regions with coordinates (a China-sized box); a
  share ``zone_region_share`` of the regions host zones, the others none.
* An observed covariate ``x`` drives both the chance of getting a zone and its timing
  (higher ``x`` → earlier wave), and the unit's level, so naive comparisons are biased
  while parallel trends hold in levels; ``covariate_trend`` adds an ``x``-specific trend
  that only covariate-adjusted estimators remove.
* ``region_shock_sd`` adds region-by-year shocks (AR(1) with ``region_shock_rho``) to both
  worlds: outcomes correlate within regions, so inference must cluster on regions.
* Untreated outcome (FDI-like, USD million): ``mu_i + delta_t + covariate_trend * x_i * (t -
  t0) + sigma * eps_it`` with a log-normal, right-skewed ``mu_i`` and a common additive
  trend ``delta_t``; a share ``zero_share`` of unit-periods is reported as 0 (an
  independent Bernoulli mask applied to both worlds, so parallel trends still hold).
* Direct effect of a zone opened in ``g`` at event time ``e = t - g >= 0``:
  ``effect_size * cohort_multiplier[g] * (1 + growth * e)`` — heterogeneous across cohorts
  and growing, the setting in which TWFE is biased (Goodman-Bacon 2021).
* Spillover onto *neighbours* (never-zone units of the same region within ``radius_km``
  of the zone; all of the region's never-zone units when none is that close): each neighbour gets
  ``(agglomeration - displacement_share) * direct_effect / n_neighbours``. With
  ``displacement_share = 1`` and no agglomeration, every region's latent total is
  unchanged by its zones (pure concentration); with 0 the zone's gain is all new activity
  (creation). Reported FDI is floored at zero, so where a neighbour's loss exceeds its
  level the realised loss is smaller: ``truth`` is computed from the realised outcomes
  (it is what the estimators target), and :func:`simulate` warns when the floor moves
  more than 1% of the direct effect (e.g. ``zone_share=0.8, effect_size=80``: realised
  displacement share 0.67 for a design of 1).
  With ``displace_zone_units`` the region's *later* zone units within the radius are
  neighbours too until their own zone opens: at every ``t`` a zone's displacement is
  shared equally among the neighbours that are not yet zones (a zone next to an earlier
  one loses activity first, then gains its own). The truth's spillover total, net and
  displacement share count those losses; the spillover *mean* stays the non-zone one.
* A patent-like count: Poisson with an additive mean that responds like FDI.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .errors import ZoneImpactError
from .geo import EARTH_RADIUS_KM as EARTH_RADIUS_KM
from .geo import haversine_km as haversine_km
from .panel import Panel
from .parallel import as_generator


def _check_design_types(d: Any) -> None:
    """Integer fields must be whole numbers and float fields finite numbers (the Python API
    gets no spec schema in front of it)."""
    from dataclasses import fields as _fields

    for f in _fields(d):
        v = getattr(d, f.name)
        if str(f.type) == "int" and (isinstance(v, bool) or not isinstance(v, int | np.integer)):
            raise ZoneImpactError(f"{f.name} must be a whole number; received {v!r}.")
        if str(f.type) == "float" and (
            isinstance(v, bool) or not isinstance(v, int | float | np.number) or not np.isfinite(v)
        ):
            raise ZoneImpactError(f"{f.name} must be a finite number; received {v!r}.")
        if str(f.type) == "bool" and not isinstance(v, bool | np.bool_):
            raise ZoneImpactError(f"{f.name} must be True or False; received {v!r}.")


@dataclass(frozen=True)
class SimulationDesign:
    """Settings of a simulated zone panel (defaults: China-like prefecture panel)."""

    n_units: int = 280
    n_regions: int = 30
    first_year: int = 1996
    last_year: int = 2022
    zone_share: float = 0.45
    zone_region_share: float = 0.75
    waves: dict[int, float] = field(
        default_factory=lambda: {2000: 0.3, 2010: 0.2, 2012: 0.2, 2014: 0.15, 2015: 0.15}
    )
    timing_on_covariate: float = 1.5
    effect_size: float = 40.0
    growth: float = 0.08
    cohort_multiplier: dict[int, float] | None = None
    displacement_share: float = 0.5
    agglomeration: float = 0.0
    radius_km: float = 150.0
    level_median: float = 150.0
    level_dispersion: float = 0.8
    level_on_covariate: float = 0.4
    trend: float = 12.0
    covariate_trend: float = 0.0
    region_shock_sd: float = 0.0
    region_shock_rho: float = 0.5
    noise_sd: float = 25.0
    zero_share: float = 0.02
    patent_scale: float = 0.2
    displace_zone_units: bool = False

    def __post_init__(self) -> None:
        _check_design_types(self)
        if not 0 < self.zone_region_share <= 1:
            raise ZoneImpactError(
                f"zone_region_share must be in (0, 1]; received {self.zone_region_share}."
            )
        if not 0 < self.zone_share < 1:
            raise ZoneImpactError(f"zone_share must be in (0, 1); received {self.zone_share}.")
        if self.first_year >= self.last_year:
            raise ZoneImpactError("first_year must be before last_year.")
        bad = [g for g in self.waves if not self.first_year < g <= self.last_year]
        if bad:
            raise ZoneImpactError(
                f"Wave year(s) {bad} outside ({self.first_year}, {self.last_year}]: a zone "
                "cohort needs at least one untreated period."
            )
        bad_share = {g: v for g, v in self.waves.items() if not 0 < v <= 1}
        if bad_share:
            raise ZoneImpactError(
                f"Wave shares must lie in (0, 1]; received {bad_share} (a negative share "
                "left its wave empty and moved its units to another)."
            )
        if abs(sum(self.waves.values()) - 1) > 1e-9:
            raise ZoneImpactError(f"Wave shares must sum to 1; received {self.waves}.")
        if self.n_units < 4 * self.n_regions:
            raise ZoneImpactError("Need at least four units per region.")
        if self.region_shock_sd < 0 or not -1 < self.region_shock_rho < 1:
            raise ZoneImpactError(
                f"region_shock_sd must be >= 0 and region_shock_rho in (-1, 1); received "
                f"{self.region_shock_sd} and {self.region_shock_rho}."
            )

    def multiplier(self, cohort: int) -> float:
        """Cohort-specific scale of the direct effect (earlier cohorts gain more)."""
        if self.cohort_multiplier is not None:
            return float(self.cohort_multiplier.get(cohort, 1.0))
        order = sorted(self.waves)
        return 1.5 - 0.8 * order.index(cohort) / max(len(order) - 1, 1)


@dataclass(frozen=True)
class SimulationTruth:
    """True estimands of a simulated panel (in outcome levels).

    ``att_gt``: cohort, time, outcome, att (mean direct effect over the cohort's units).
    ``event``: event_time, outcome, att. ``overall``: dict outcome → ATT over all treated
    unit-periods (CS "simple"). ``spillover``: dict outcome → mean spillover over exposed
    non-zone unit-periods. ``totals``: year, outcome, direct_total, spillover_total,
    net_total; ``spillover_total`` sums the effects on every unit-period outside the zones'
    own treated ones, so with ``displace_zone_units`` it is the estimator's
    ``spillover_total + spillover_on_zones_total``. ``displacement_share``: dict outcome →
    −spillover total / direct total (= 1 − net / direct total).
    """

    att_gt: pd.DataFrame
    event: pd.DataFrame
    overall: dict[str, float]
    spillover: dict[str, float]
    spillover_event: pd.DataFrame
    totals: pd.DataFrame
    displacement_share: dict[str, float]
    net_total: dict[str, float]


@dataclass(frozen=True)
class Simulation:
    """A simulated panel: ``frame`` (long data incl. both worlds), ``panel`` (validated),
    ``geography``, ``adjacency``, ``truth`` and the ``design``.
    """

    frame: pd.DataFrame
    panel: Panel
    geography: pd.DataFrame
    adjacency: pd.DataFrame
    truth: SimulationTruth
    design: SimulationDesign


def simulate(
    design: SimulationDesign | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    **overrides: Any,
) -> Simulation:
    """Simulate a zone panel with known direct, spillover and net effects.

    Parameters
    ----------
    design : SimulationDesign, optional
        The design; defaults to the China-like default.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a seed is accepted for convenience).
    **overrides
        Fields of :class:`SimulationDesign` to change, e.g. ``displacement_share=1``.

    Returns
    -------
    Simulation
        ``frame`` columns: unit, region, year, cohort (0 = never), x, exposure_onset
        (first exposure of a non-zone unit, 0 = never exposed; zone units keep 0 even when
        ``displace_zone_units`` displaces them: their losses are in ``fdi_spillover``),
        fdi, fdi_y0 (no-zone world), fdi_direct, fdi_spillover,
        patents, patents_y0, patents_mean_effect.
    """
    d = replace(design or SimulationDesign(), **overrides)
    rng = as_generator(rng)
    n, years = d.n_units, np.arange(d.first_year, d.last_year + 1)
    n_t = len(years)

    # geography: region centres in a China-sized box, units scattered around them
    centre_lat = rng.uniform(22, 42, d.n_regions)
    centre_lon = rng.uniform(100, 122, d.n_regions)
    region = np.concatenate([np.arange(d.n_regions), rng.integers(0, d.n_regions, n - d.n_regions)])
    region = np.sort(region)
    lat = centre_lat[region] + rng.normal(0, 0.8, n)
    lon = centre_lon[region] + rng.normal(0, 0.8, n)

    # covariate and zone assignment: x drives both whether and when a unit gets a zone
    x = rng.normal(0, 1, n) + 0.5 * rng.normal(0, 1, d.n_regions)[region]
    score = d.timing_on_covariate * x + rng.logistic(0, 1, n)
    cohort = np.zeros(n, dtype=int)
    # some regions get no zone at all: their units are the clean comparisons that a
    # spillover-aware design needs (exposed neighbours cannot serve as controls)
    n_zone_regions = max(1, int(round(d.zone_region_share * d.n_regions)))
    zone_regions = set(rng.permutation(d.n_regions)[:n_zone_regions].tolist())
    for r in range(d.n_regions):
        if r not in zone_regions:
            continue
        members = np.flatnonzero(region == r)
        # keep at least two never-zone units per region so displacement has a source
        n_zone = min(int(round(d.zone_share * len(members))), len(members) - 2)
        if n_zone <= 0:
            continue
        chosen = members[np.argsort(-score[members])[:n_zone]]
        cohort[chosen] = -1
    zone_units = np.flatnonzero(cohort == -1)
    # earlier waves go to higher-scoring units (timing depends on x)
    order = zone_units[np.argsort(-(score[zone_units] + rng.normal(0, 0.5, len(zone_units))))]
    bounds = np.cumsum([0.0, *[d.waves[g] for g in sorted(d.waves)]])
    cuts = np.round(bounds * len(order)).astype(int)
    for k, g in enumerate(sorted(d.waves)):
        cohort[order[cuts[k] : cuts[k + 1]]] = g

    # neighbours of each zone: never-zone units of the same region within the radius
    dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    never = cohort == 0
    neighbours: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(~never).tolist():
        cand = np.flatnonzero(never & (region == region[i]))
        close = cand[dist[i, cand] <= d.radius_km]
        neighbours[i] = close if len(close) else cand

    if d.displace_zone_units:
        # later zone units of the same region within the radius, until their own zone
        for i in neighbours:
            later = np.flatnonzero(
                (cohort > cohort[i]) & (region == region[i]) & (dist[i] <= d.radius_km)
            )
            neighbours[i] = np.union1d(neighbours[i], later)

    # direct effects (units x years)
    t_grid = np.broadcast_to(years, (n, n_t))
    g_grid = np.where(cohort > 0, cohort, np.iinfo(np.int64).max)[:, None]
    event = t_grid - g_grid
    mult = np.array([d.multiplier(int(g)) if g > 0 else 0.0 for g in cohort])[:, None]
    direct = np.where(event >= 0, d.effect_size * mult * (1 + d.growth * np.maximum(event, 0)), 0.0)

    spill = np.zeros((n, n_t))
    onset = np.zeros(n, dtype=int)
    rate = d.agglomeration - d.displacement_share
    for i, nb in neighbours.items():
        # shared among the neighbours that are not yet zones at t (all of them unless
        # displace_zone_units added later zone units; x 1.0 / n is bit for bit / n)
        open_nb = (cohort[nb] == 0)[:, None] | (years[None, :] < cohort[nb][:, None])
        spill[nb] += rate * direct[i] * open_nb / np.maximum(open_nb.sum(0), 1)
        nb = nb[cohort[nb] == 0]
        onset[nb] = np.where(onset[nb] == 0, cohort[i], np.minimum(onset[nb], cohort[i]))

    # untreated outcome: skewed levels tied to x, common trend, optional x-specific trend
    # a floor of half the median keeps most displaced neighbours above zero (not all:
    # large effects on few neighbours hit the zero floor below; simulate warns)
    mu = d.level_median * (
        0.5 + 0.5 * np.exp(d.level_dispersion * rng.normal(0, 1, n) + d.level_on_covariate * x)
    )
    delta = d.trend * (years - years[0]) + rng.normal(0, d.trend, n_t).cumsum() * 0.3
    base = (
        mu[:, None]
        + delta[None, :]
        + d.covariate_trend * x[:, None] * (years - years[0])[None, :]
        + rng.normal(0, d.noise_sd, (n, n_t))
    )
    reported = rng.random((n, n_t)) >= d.zero_share
    if d.region_shock_sd > 0:
        # region-by-year shocks (AR(1) within a region), common to both worlds: the
        # regional correlation that unit-level clustering ignores. Drawn only when set, so
        # designs without them keep their random streams.
        base = base + _region_shocks(rng, d, n_t)[region]
    fdi_latent0 = base
    fdi_latent = base + direct + spill
    fdi_y0 = np.where(reported, np.maximum(fdi_latent0, 0.0), 0.0)
    fdi = np.where(reported, np.maximum(fdi_latent, 0.0), 0.0)

    # patent-like counts: Poisson with an additive mean responding like FDI
    lam0 = d.patent_scale * np.maximum(mu[:, None] * 0.5 + 0.5 * delta[None, :], 1.0)
    lam_eff = d.patent_scale * (direct + spill) * 0.5
    lam1 = np.maximum(lam0 + lam_eff, 0.0)
    patents_y0 = rng.poisson(lam0)
    # couple the two worlds: the with-zone count adds (or thins) the effect's draws
    extra = rng.poisson(np.maximum(lam1 - lam0, 0.0))
    keep = rng.binomial(patents_y0, np.clip(lam1 / np.maximum(lam0, 1e-12), 0, 1))
    patents = np.where(lam1 >= lam0, patents_y0 + extra, keep)

    unit_ids = np.array([f"u{i:04d}" for i in range(n)])
    frame = pd.DataFrame(
        {
            "unit": np.repeat(unit_ids, n_t),
            "region": np.repeat([f"r{r:02d}" for r in region], n_t),
            "year": np.tile(years, n),
            "cohort": np.repeat(cohort, n_t),
            "x": np.repeat(x, n_t),
            "exposure_onset": np.repeat(onset, n_t),
            "fdi": fdi.ravel(),
            "fdi_y0": fdi_y0.ravel(),
            "fdi_latent": fdi_latent.ravel(),
            "fdi_latent_y0": fdi_latent0.ravel(),
            "fdi_direct": np.where(reported, direct, 0.0).ravel(),
            "fdi_spillover": np.where(reported, spill, 0.0).ravel(),
            "patents": patents.ravel().astype(float),
            "patents_y0": patents_y0.ravel().astype(float),
            "patents_mean_effect": (lam1 - lam0).ravel(),
        }
    )
    geography = pd.DataFrame(
        {"unit": unit_ids, "region": [f"r{r:02d}" for r in region], "lat": lat, "lon": lon}
    )
    # adjacency: same-region pairs within the radius, plus every zone-neighbour pair that
    # carries a spillover (the fallback pairs of zones with no unit that close)
    same = (region[:, None] == region[None, :]) & (dist <= d.radius_km)
    for i, nb in neighbours.items():
        same[i, nb] = same[nb, i] = True
    iu, ju = np.nonzero(np.triu(same, 1))
    adjacency = pd.DataFrame({"unit": unit_ids[iu], "neighbour": unit_ids[ju]})

    truth = _truth(frame, d)
    _warn_floor(fdi - fdi_y0, np.where(reported, direct + spill, 0.0), direct, truth, d)
    panel = Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi", "patents"],
        covariates=["x"],
        geography=geography,
        adjacency=adjacency,
    )
    return Simulation(frame, panel, geography, adjacency, truth, d)


def _warn_floor(
    realised: np.ndarray,
    latent: np.ndarray,
    direct: np.ndarray,
    truth: SimulationTruth,
    d: SimulationDesign,
) -> None:
    """Warn when the zero floor of reported FDI cuts more than 1% of the direct effect's
    mass: the realised displacement share then differs from the design's."""
    cut = float(np.abs(realised - latent).sum())
    scale = float(np.abs(direct).sum())
    if scale > 0 and cut > 0.01 * scale:
        warnings.warn(
            f"Reported FDI is floored at zero, which cut {cut / scale:.1%} of the direct "
            f"effect's mass in this draw: the realised displacement share is "
            f"{truth.displacement_share['fdi']:.3f} (design: displacement_share="
            f"{d.displacement_share}, agglomeration={d.agglomeration}). truth holds the "
            "realised values; smaller effects or higher levels keep the floor slack.",
            stacklevel=3,
        )


def _region_shocks(rng: np.random.Generator, d: SimulationDesign, n_t: int) -> np.ndarray:
    """(regions x years) stationary AR(1) shocks with sd ``region_shock_sd``."""
    rho, sd = d.region_shock_rho, d.region_shock_sd
    e = rng.normal(0.0, sd * np.sqrt(1 - rho**2), (d.n_regions, n_t))
    out = np.empty_like(e)
    out[:, 0] = rng.normal(0.0, sd, d.n_regions)
    for k in range(1, n_t):
        out[:, k] = rho * out[:, k - 1] + e[:, k]
    return out


def _truth(frame: pd.DataFrame, d: SimulationDesign) -> SimulationTruth:
    effects = {
        "fdi": frame["fdi"] - frame["fdi_y0"],
        "patents": frame["patents_mean_effect"],
    }
    treated = (frame["cohort"] > 0) & (frame["year"] >= frame["cohort"])
    exposed = (frame["exposure_onset"] > 0) & (frame["year"] >= frame["exposure_onset"])
    gt_rows, ev_rows, se_rows, tot_rows = [], [], [], []
    overall, spill_mean, disp, net = {}, {}, {}, {}
    for name, eff in effects.items():
        tr = frame.loc[treated, ["cohort", "year"]].assign(att=eff[treated])
        gt = tr.groupby(["cohort", "year"], as_index=False)["att"].mean()
        gt_rows.append(gt.rename(columns={"year": "time"}).assign(outcome=name))
        ev = (
            tr.assign(event_time=tr["year"] - tr["cohort"])
            .groupby("event_time", as_index=False)["att"]
            .mean()
        )
        ev_rows.append(ev.assign(outcome=name))
        overall[name] = float(eff[treated].mean())
        ex = frame.loc[exposed, ["exposure_onset", "year"]].assign(att=eff[exposed])
        spill_mean[name] = float(ex["att"].mean()) if len(ex) else 0.0
        se_rows.append(
            ex.assign(event_time=ex["year"] - ex["exposure_onset"])
            .groupby("event_time", as_index=False)["att"]
            .mean()
            .assign(outcome=name)
        )
        tot = (
            pd.DataFrame(
                {
                    "year": frame["year"],
                    "direct_total": eff.where(treated, 0.0),
                    # every loss outside the zones' own treated rows (a later zone
                    # unit's before it opens, with displace_zone_units)
                    "spillover_total": eff.where(~treated, 0.0),
                }
            )
            .groupby("year", as_index=False)
            .sum()
        )
        tot["net_total"] = tot["direct_total"] + tot["spillover_total"]
        tot_rows.append(tot.assign(outcome=name))
        dsum, ssum = tot["direct_total"].sum(), tot["spillover_total"].sum()
        disp[name] = float(-ssum / dsum) if dsum else float("nan")
        net[name] = float(dsum + ssum)
    return SimulationTruth(
        att_gt=pd.concat(gt_rows, ignore_index=True),
        event=pd.concat(ev_rows, ignore_index=True),
        overall=overall,
        spillover=spill_mean,
        spillover_event=pd.concat(se_rows, ignore_index=True),
        totals=pd.concat(tot_rows, ignore_index=True),
        displacement_share=disp,
        net_total=net,
    )


def design_dict(design: SimulationDesign) -> dict[str, Any]:
    """The design as a JSON/TOML-friendly dict (wave years as strings)."""
    out = asdict(design)
    out["waves"] = {str(k): v for k, v in design.waves.items()}
    if design.cohort_multiplier is not None:
        out["cohort_multiplier"] = {str(k): v for k, v in design.cohort_multiplier.items()}
    return out


def design_from_dict(values: dict[str, Any]) -> SimulationDesign:
    """Inverse of :func:`design_dict`, validating field names."""
    known = set(SimulationDesign.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ZoneImpactError(f"Unknown simulation setting(s) {unknown}; allowed: {sorted(known)}.")
    vals = dict(values)
    for key in ("waves", "cohort_multiplier"):
        if vals.get(key) is not None:
            vals[key] = {int(k): float(v) for k, v in vals[key].items()}
    return SimulationDesign(**vals)
