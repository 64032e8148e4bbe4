"""Power analysis by simulation of the study's own design.

A zone study's power depends on its design — how many units, which cohorts in which
years, who is a neighbour of a zone — and on how noisy and how persistent the outcome is.
:func:`power_analysis` keeps the design of the data (the units, the periods observed, the
cohorts, the exposure map and the pattern of missing values), replaces the outcome by
simulated untreated outcomes whose noise is calibrated on the data's untreated
observations, injects effects of known size, re-estimates, and counts rejections
(the simulation approach of Burlig, Preonas & Woerman 2020, "Panel data and experimental
design", *JDE* 144, who show that ignoring serial correlation badly misstates power in
panels).

Calibration (:func:`calibrate_design`) on the *clean* observations (not yet treated, and
not yet exposed when an exposure map is used):

* residuals of the outcome after unit and period effects (absorbed exactly by
  :func:`zoneimpact.estimators._fe.absorb`), their variance ``s^2 = RSS / (n - K)``;
* AR(1) persistence ``rho`` from the first-order autocorrelation ``r`` of those residuals
  within units (pairs of a unit's rows at adjacent positions of the panel's periods, the
  steps the simulated AR(1) takes, whatever the period labels), corrected for the
  within-transformation bias ``E[r] ~ rho - (1 + rho) / (T - 1)`` (Nickell 1981,
  *Econometrica* 49, eq. 18's leading term):
  ``rho = (r + 1/(T-1)) / (1 - 1/(T-1))``, clipped to ``[-0.9, 0.95]``;
* the stationary error SD ``sigma`` from ``s^2`` undoing the shrinkage of demeaning a
  T-period AR(1): ``E[s^2] ~ sigma^2 (1 - c/T) / (1 - 1/T)`` with ``c = 1 + 2
  sum_{k<T} (1 - k/T) rho^k`` (the variance of a mean of an AR(1)).

Simulated untreated outcome: ``y0_it = a_i + l_t + u_it``, ``u`` a stationary AR(1)
(``sigma``, ``rho``) per unit. The unit and period effects ``a_i``, ``l_t`` are the data's
(clean-observation means), for realism only: every estimator offered (TWFE, event study,
Callaway-Sant'Anna, Sun-Abraham, imputation, SDID, the spillover estimator) is invariant to
additive unit and period effects. Injected effects are constant:

* direct: ``+ delta`` on zone unit-periods (``t >= cohort``);
* spillover: ``+ s`` on exposed non-zone unit-periods (``t >=`` exposure onset);
* displacement share ``d``: a direct effect ``delta_d`` plus a spillover ``s = - d *
  delta_d * N_direct / N_exposed`` per exposed unit-period (``N`` the sizes the spillover
  estimator's totals cover: its estimated target unit-periods, or their weight, which
  leave out e.g. units exposed since before the first period), so that the estimand's
  ``- spillover total / direct total = d`` (DESIGN.md).

Power at each size is the share of replications whose two-sided test at level ``alpha``
rejects "no effect" (the estimator's own p-value: t with G-1 df where it gives one); its
Monte Carlo SE is ``sqrt(p(1-p)/R)``. The minimum detectable effect (MDE) is where the
power curve first reaches the target (80%), by linear interpolation between grid points;
the analytic approximation ``(z_{1-alpha/2} + z_{power}) x SE`` (Bloom 1995, *Evaluation
Review* 19, eq. 1) from the mean SE at zero effect is reported beside it.

Spillover and displacement targets use :mod:`zoneimpact.estimators.spillover` (Butts 2021
ring estimator with a cluster bootstrap) and need an exposure map (adjacency, rings or
region) — without geography only the direct effect is analysed, and ``info`` says so.

Why by hand: no Python package simulates DiD power from a staggered panel's own design
(R ``pwr``/``DeclareDesign`` do not calibrate on panel data; Burlig et al.'s ``pcpanel``
is Stata-only and for one treatment date).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from . import registry
from .errors import EstimationError, SpecError
from .estimators import get_estimator
from .estimators._fe import absorb
from .panel import Panel
from .parallel import as_generator, replicate
from .results import check_alpha, check_int, check_number

__all__ = [
    "PowerDesign",
    "PowerResult",
    "calibrate_design",
    "plot_power",
    "power_analysis",
    "simulate_outcome",
]

TARGETS = ("direct", "spillover", "displacement")


# ---------------------------------------------------------------------- design
@dataclass(frozen=True)
class PowerDesign:
    """A study design with calibrated noise, ready to simulate outcomes.

    Attributes
    ----------
    panel : Panel
        The template: units, periods, cohorts, geography, adjacency, missing values.
    outcome : str
        The outcome whose noise was calibrated.
    unit_effect, period_effect : pandas.Series
        Additive levels (by unit, by period).
    sigma, rho : float
        Stationary SD and AR(1) coefficient of the simulated error.
    exposure : ExposureMap or None
        Who is exposed to a zone and from when (for spillover targets).
    info : dict
        Calibration details: clean observations used, raw residual SD and autocorrelation.
    """

    panel: Panel
    outcome: str
    unit_effect: pd.Series
    period_effect: pd.Series
    sigma: float
    rho: float
    exposure: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    # row masks aligned with panel.data
    def direct_rows(self) -> np.ndarray:
        d = self.panel.data
        return (d["time"] >= d["cohort"]).to_numpy()

    def exposed_rows(self) -> np.ndarray:
        d = self.panel.data
        if self.exposure is None:
            return np.zeros(len(d), dtype=bool)
        tab = self.exposure.table
        exposed = tab.index[tab["role"] == "exposed"]
        onset = d["unit"].map(tab["exposure_onset"].loc[exposed]).to_numpy(dtype=float)
        return np.nan_to_num(onset, nan=np.inf) <= d["time"].to_numpy()


def _default_exposure(panel: Panel) -> str | None:
    if panel.adjacency is not None:
        return "adjacency"
    geo = panel.geography
    if geo is not None and {"lat", "lon"} <= set(geo.columns):
        return "rings"
    if geo is not None and "region" in geo.columns:
        return "region"
    return None


def calibrate_design(
    panel: Panel,
    outcome: str,
    *,
    exposure: str | None | bool = True,
    exposure_options: Mapping[str, Any] | None = None,
) -> PowerDesign:
    """Calibrate the noise of ``outcome`` on the panel's clean observations.

    Parameters
    ----------
    panel : Panel
        The study's data.
    outcome : str
        Outcome column.
    exposure : str, None or bool
        Exposure map (``"adjacency"``, ``"rings"``, ``"region"``); ``True`` picks one from
        the panel's geography (adjacency, then coordinates, then region), ``False``/``None``
        uses none (direct effects only).
    exposure_options : mapping, optional
        Passed to :func:`zoneimpact.exposure.build_exposure`.

    Returns
    -------
    PowerDesign
        See the module docstring for the formulas.
    """
    panel._check_outcome(outcome)
    kind = _default_exposure(panel) if exposure is True else (exposure or None)
    emap = None
    if kind is not None:
        from .exposure import build_exposure

        # a warning on default rings points at calibrate_design's caller
        emap = build_exposure(panel, kind, **{"stacklevel": 3, **dict(exposure_options or {})})
    data = panel.data
    y = data[outcome].to_numpy(float)
    clean = np.isfinite(y) & (data["time"] < data["cohort"]).to_numpy()
    if emap is not None:
        onset = data["unit"].map(emap.onset).to_numpy(float)
        clean &= data["time"].to_numpy() < np.nan_to_num(onset, nan=np.inf)
    sub = data.loc[clean, ["unit", "time"]]
    if len(sub) < 10 or sub["unit"].nunique() < 3 or sub["time"].nunique() < 3:
        raise EstimationError(
            f"Too few clean (not yet treated/exposed) observations of {outcome!r} to calibrate "
            f"the noise: {len(sub)} rows, {sub['unit'].nunique()} units, "
            f"{sub['time'].nunique()} periods; need at least 3 units and 3 periods."
        )
    yc = y[clean]
    resid, rank = absorb(yc, [sub["unit"].to_numpy(), sub["time"].to_numpy()])
    dof = len(yc) - rank
    if dof < 2:
        raise EstimationError(
            f"The clean observations of {outcome!r} leave {dof} residual degrees of freedom "
            "after unit and period effects; the noise cannot be calibrated."
        )
    s2 = float(resid @ resid / dof)
    # lag-1 pairs within unit among clean rows at consecutive *positions* of panel.periods,
    # the index simulate_outcome's AR(1) steps over (periods need not be consecutive
    # integers: biennial or census years, or labels with gaps)
    pos = pd.Index(panel.periods).get_indexer(sub["time"])
    r = pd.DataFrame({"unit": sub["unit"].to_numpy(), "pos": pos, "e": resid})
    lag = r.assign(pos=r["pos"] + 1).rename(columns={"e": "e_lag"})
    pairs = r.merge(lag, on=["unit", "pos"])
    t_bar = float(r.groupby("unit").size().mean())
    if len(pairs) >= 5 and t_bar > 2:
        raw = float((pairs["e"] @ pairs["e_lag"]) / (pairs["e_lag"] @ pairs["e_lag"]))
        b = 1.0 / (t_bar - 1)
        rho = float(np.clip((raw + b) / (1 - b), -0.9, 0.95))
    else:
        raw, rho = float("nan"), 0.0
    k = np.arange(1, max(int(round(t_bar)), 1))
    c = 1 + 2 * float(np.sum((1 - k / t_bar) * rho**k))
    shrink = (1 - c / t_bar) / (1 - 1 / t_bar) if t_bar > 1 else 1.0
    sigma = math.sqrt(s2 / shrink) if shrink > 0.05 else math.sqrt(s2)
    # additive levels (cosmetic, see module docstring)
    yc_s = pd.Series(yc, index=sub.index)
    period_effect = (yc_s - yc_s.groupby(sub["unit"]).transform("mean")).groupby(sub["time"]).mean()
    period_effect = period_effect.reindex(panel.periods).interpolate(limit_direction="both")
    unit_effect = (yc_s - sub["time"].map(period_effect)).groupby(sub["unit"]).mean()
    unit_effect = unit_effect.reindex(panel.units).fillna(float(unit_effect.mean()))
    info = {
        "n_clean_obs": int(len(yc)),
        "n_clean_units": int(sub["unit"].nunique()),
        "residual_sd": math.sqrt(s2),
        "raw_autocorrelation": raw,
        "mean_clean_periods": t_bar,
        "exposure": kind,
    }
    return PowerDesign(panel, outcome, unit_effect, period_effect, sigma, rho, emap, info)


def simulate_outcome(
    design: PowerDesign,
    rng: np.random.Generator,
    *,
    direct: float = 0.0,
    spillover: float = 0.0,
) -> np.ndarray:
    """One simulated outcome aligned with ``design.panel.data`` (NaN where the data miss).

    ``y = a_i + l_t + u_it + direct * 1[zone, t >= cohort] + spillover * 1[exposed, t >=
    onset]`` with ``u`` a stationary Gaussian AR(1) per unit (module docstring).
    """
    panel = design.panel
    units, periods = panel.units, panel.periods
    n_u, n_t = len(units), len(periods)
    eps = rng.standard_normal((n_u, n_t))
    u = np.empty_like(eps)
    u[:, 0] = design.sigma * eps[:, 0]
    innov = design.sigma * math.sqrt(1 - design.rho**2)
    for t in range(1, n_t):
        u[:, t] = design.rho * u[:, t - 1] + innov * eps[:, t]
    data = panel.data
    ui = pd.Index(units).get_indexer(data["unit"])
    ti = pd.Index(periods).get_indexer(data["time"])
    y = (
        design.unit_effect.to_numpy()[ui]
        + design.period_effect.to_numpy()[ti]
        + u[ui, ti]
        + direct * design.direct_rows()
        + spillover * design.exposed_rows()
    )
    y[~np.isfinite(data[design.outcome].to_numpy(float))] = np.nan
    return y


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class PowerResult:
    """Power curves and minimum detectable effects.

    Attributes
    ----------
    curves : pandas.DataFrame
        One row per target and effect size: ``target`` (direct / spillover /
        displacement), ``effect``, ``power``, ``mc_se``, ``mean_estimate``, ``mean_se``,
        ``n_reps``.
    mde : dict
        Target -> effect size at which power first reaches ``power`` (NaN if the grid
        never gets there).
    analytic_mde : dict
        Target -> ``(z_{1-alpha/2} + z_power) x`` mean SE at zero effect (Bloom 1995).
    draws : pandas.DataFrame
        Every replication: target, effect, rep, estimate, se, p_value, reject.
    design : PowerDesign
    info : dict
        Estimators, alpha, target power, replications, calibration, notes.
    """

    curves: pd.DataFrame
    mde: dict[str, float]
    analytic_mde: dict[str, float]
    draws: pd.DataFrame
    design: PowerDesign
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per target: MDE (simulated and analytic) and the unit it is in."""
        rows = []
        for t in self.mde:
            rows.append(
                {
                    "target": t,
                    "mde": self.mde[t],
                    "analytic_mde": self.analytic_mde.get(t, float("nan")),
                    "power": self.info["power"],
                    "alpha": self.info["alpha"],
                    "unit": "share" if t == "displacement" else f"{self.design.outcome} level",
                }
            )
        return pd.DataFrame(rows)

    def figure(self, **kwargs: Any) -> Any:
        """The power-curve figure (see :func:`plot_power`)."""
        return plot_power(self, **kwargs)


def plot_power(result: PowerResult, *, ax: Any = None) -> Any:
    """Power curves, one panel per target, with the target power and MDE marked.

    Returns the matplotlib Figure (never shown).
    """
    from .report.style import COLUMN_WIDTH, new_figure, paper_style, root_figure

    targets = list(dict.fromkeys(result.curves["target"]))
    with paper_style():
        if ax is None:
            # not registered with pyplot (like every report figure): nothing leaks or shows
            fig, grid = new_figure(
                width=COLUMN_WIDTH * len(targets), height=2.6, ncols=len(targets), squeeze=False
            )
            axes = list(grid[0])
        else:
            axes = list(np.atleast_1d(ax))
            fig = root_figure(axes[0])
            if len(axes) < len(targets):
                raise SpecError(f"Pass {len(targets)} axes (one per target {targets}).")
        _draw_power(result, axes, targets)
    return fig


def _draw_power(result: PowerResult, axes: list[Any], targets: list[str]) -> None:
    for a, target in zip(axes, targets, strict=False):
        # drawn along the effect axis, whatever order the grid was given in
        cur = result.curves[result.curves["target"] == target].sort_values("effect", kind="stable")
        x, p, se = cur["effect"], cur["power"], cur["mc_se"]
        a.fill_between(x, np.clip(p - 1.96 * se, 0, 1), np.clip(p + 1.96 * se, 0, 1), alpha=0.2)
        a.plot(x, p, marker="o")
        a.axhline(result.info["power"], color="grey", ls="--", lw=0.8)
        a.axhline(result.info["alpha"], color="grey", ls=":", lw=0.8)
        mde = result.mde.get(target, float("nan"))
        if np.isfinite(mde):
            a.axvline(mde, color="black", lw=0.8)
            a.annotate(f"MDE {mde:.3g}", (mde, 0.05), xytext=(4, 0), textcoords="offset points")
        label = "displacement share" if target == "displacement" else f"{target} effect"
        a.set_xlabel(label)
        a.set_ylabel("power")
        a.set_ylim(0, 1.02)
        a.set_title(target)


# ---------------------------------------------------------------------- the loop
def _test(res: Any, term: str) -> tuple[float, float, float]:
    est = float(res.coef(term))
    row = res.terms.loc[res.terms["term"] == term].iloc[0]
    p = float(res.pvalues.loc[term])
    return est, float(row["se"]), p


def _one_rep(
    rep: int,
    rng: np.random.Generator,
    *,
    design: PowerDesign,
    estimator: str,
    options: Mapping[str, Any],
    spill_options: Mapping[str, Any],
    grids: Mapping[str, Sequence[float]],
    displacement_direct: float,
    displacement_sizes: tuple[float, float] | None = None,
) -> list[tuple[str, float, int, float, float, float]]:
    """One noise draw, re-used for every effect size (common random numbers: the curve's
    points differ only by the effect).

    ``displacement_sizes`` are the direct and spillover target sizes of the spillover
    estimator (:func:`_displacement_sizes`); without them, the observed post unit-periods.
    """
    noise_rng, est_rng = rng.spawn(2)
    base = simulate_outcome(design, noise_rng)
    d_rows, s_rows = design.direct_rows(), design.exposed_rows()
    observed = np.isfinite(base)
    if displacement_sizes is None:
        n_d, n_s = float((d_rows & observed).sum()), float((s_rows & observed).sum())
    else:
        n_d, n_s = displacement_sizes
    out = []
    fit = get_estimator(estimator)
    # one generator per fit (bootstraps), spawned in a fixed order
    kids = iter(est_rng.spawn(sum(len(g) for g in grids.values())))
    for target, grid in grids.items():
        for effect in grid:
            if target == "direct":
                y = base + effect * d_rows
            elif target == "spillover":
                y = base + effect * s_rows
            else:
                spill = -effect * displacement_direct * n_d / max(n_s, 1.0)
                y = base + displacement_direct * d_rows + spill * s_rows
            panel = design.panel.with_outcome(design.outcome, y, overwrite=True)
            child = next(kids)
            try:
                if target == "direct":
                    res = fit(panel, outcome=design.outcome, rng=child, **options)
                    est, se, p = _test(res, res.main_term)
                else:
                    from .estimators import spillover as spill_mod

                    res = spill_mod.fit(
                        panel,
                        outcome=design.outcome,
                        rng=child,
                        exposure=design.exposure,
                        **spill_options,
                    )
                    term = "spillover" if target == "spillover" else "displacement_share"
                    est, se, p = _test(res, term)
            except EstimationError:
                est, se, p = float("nan"), float("nan"), float("nan")
            out.append((target, float(effect), rep, est, se, p))
    return out


def _displacement_sizes(
    design: PowerDesign, spill_options: Mapping[str, Any]
) -> tuple[float, float] | None:
    """The sizes the spillover estimator's direct and spillover totals multiply their means
    by (``target_weight``, else ``n_target_unit_periods``, summed over the rings).

    They depend on the design and the missing values only, not on the noise, so one fit
    (no bootstrap) on one simulated outcome gives every replication's. The estimator leaves
    out targets it cannot impute (an exposed unit exposed since before the first period has
    no clean row for its unit effect; periods without clean rows), so the observed post
    unit-periods overstate ``N_exposed`` and the injected share would fall short of the
    grid's ``d``. None when the fit fails (the replications then report NaN anyway).
    """
    from .estimators import spillover as spill_mod

    # any fixed noise: the sizes do not depend on it
    y = simulate_outcome(design, np.random.default_rng(0))
    panel = design.panel.with_outcome(design.outcome, y, overwrite=True)
    try:
        with warnings.catch_warnings():
            # the replications' fits give the same warnings at the caller's line
            warnings.simplefilter("ignore")
            res = spill_mod.fit(
                panel,
                outcome=design.outcome,
                rng=0,
                exposure=design.exposure,
                **{**dict(spill_options), "n_boot": 0},
            )
    except EstimationError:
        return None
    tab = res.pieces
    size = tab["target_weight"] if "target_weight" in tab else tab["n_target_unit_periods"]
    size = size.astype(float)
    piece = tab["piece"].astype(str)
    n_d = float(size[piece == "direct"].sum())
    n_s = float(size[piece.str.startswith("spillover:")].sum())
    return (n_d, n_s) if n_d > 0 and n_s > 0 else None


def _mde(effects: np.ndarray, power: np.ndarray, target: float) -> float:
    """First crossing of ``target`` by the power curve over increasing positive effects."""
    order = np.argsort(effects)
    e, p = effects[order], power[order]
    keep = e >= 0
    e, p = e[keep], p[keep]
    for i in range(len(e)):
        if p[i] >= target:
            if i == 0 or p[i - 1] >= target:
                return float(e[i])
            return float(e[i - 1] + (target - p[i - 1]) * (e[i] - e[i - 1]) / (p[i] - p[i - 1]))
    return float("nan")


def _grid(values: Sequence[float] | None, name: str) -> list[float] | None:
    """A list of finite numbers (effect sizes or shares), or None for the default."""
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise SpecError(f"{name} must be a list of numbers; received {values!r}.")
    return [check_number(v, name) for v in values]


def power_analysis(
    panel_or_design: Panel | PowerDesign,
    *,
    outcome: str | None = None,
    estimator: str = "callaway_santanna",
    effect_grid: Sequence[float] | None = None,
    spillover_grid: Sequence[float] | None = None,
    displacement_grid: Sequence[float] | None = None,
    displacement_direct: float | None = None,
    targets: Sequence[str] | None = None,
    n_reps: int = 200,
    rng: np.random.Generator | int | None = None,
    n_jobs: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
    estimator_options: Mapping[str, Any] | None = None,
    spillover_options: Mapping[str, Any] | None = None,
    exposure: str | None | bool = True,
) -> PowerResult:
    """Simulated power curves and minimum detectable effects of a zone study.

    Parameters
    ----------
    panel_or_design : Panel or PowerDesign
        The study's data (calibrated here with :func:`calibrate_design`) or a design.
    outcome : str, optional
        Outcome to calibrate on (default: the panel's first outcome).
    estimator : str
        Registry name of the direct-effect estimator (``"callaway_santanna"``, ``"twfe"``,
        ``"sun_abraham"``, ``"imputation"``, ...). Its headline term is tested.
    effect_grid, spillover_grid : sequence of float, optional
        Effect sizes (outcome units). Default: 0 to 2 x the analytic MDE from a pilot
        replication.
    displacement_grid : sequence of float, optional
        Displacement shares (default 0, 0.1, 0.25, 0.5, 0.75, 1).
    displacement_direct : float, optional
        Direct effect injected in the displacement analysis (default: twice the direct
        MDE — at the MDE itself a share is rarely detectable — or the largest direct
        effect of the grid when the MDE is not reached).
    targets : sequence of str, optional
        Among ``direct``, ``spillover``, ``displacement``; default all that the design
        allows (spillover targets need an exposure map with exposed and clean units).
    n_reps : int
        Replications per effect size (the Monte Carlo SE of a power p is sqrt(p(1-p)/n)).
    rng : Generator or int, optional
        Parent generator; one child per replication (identical results for any n_jobs).
    n_jobs : int
        joblib workers (a dask cluster through ``joblib.parallel_config(backend="dask")``).
    alpha : float
        Test level (two-sided).
    power : float
        Target power of the MDE (default 0.8).
    estimator_options, spillover_options : mapping, optional
        Options of the direct estimator (default for ``callaway_santanna``:
        ``bootstrap=False``, the analytic influence-function SE) and of
        :func:`zoneimpact.estimators.spillover.fit` (default ``n_boot=99``).
    exposure : str, None or bool
        Exposure map, as in :func:`calibrate_design`.

    Returns
    -------
    PowerResult
    """
    check_alpha(alpha, "alpha")
    check_alpha(power, "power")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise SpecError(f"alpha and power must lie in (0, 1); received {alpha}, {power}.")
    n_reps = check_int(n_reps, "n_reps", minimum=2)
    if check_int(n_jobs, "n_jobs") == 0:
        raise SpecError("n_jobs must be a whole number >= 1, or -1 for every core; received 0.")
    if not isinstance(estimator, str):
        raise SpecError(f"estimator must be a registered name; received {estimator!r}.")
    effect_grid = _grid(effect_grid, "effect_grid")
    spillover_grid = _grid(spillover_grid, "spillover_grid")
    displacement_grid = _grid(displacement_grid, "displacement_grid")
    displacement_direct = check_number(displacement_direct, "displacement_direct", none=True)
    if isinstance(targets, str):
        targets = [targets]
    for name, opts in (
        ("estimator_options", estimator_options),
        ("spillover_options", spillover_options),
    ):
        if opts is not None and not isinstance(opts, Mapping):
            raise SpecError(f"{name} must be a table of options; received {opts!r}.")
    if outcome is not None and not isinstance(outcome, str):
        raise SpecError(f"outcome must be a column name; received {outcome!r}.")
    if rng is not None and not isinstance(rng, np.random.Generator):
        check_int(rng, "rng (a seed)", minimum=0)
    if isinstance(panel_or_design, PowerDesign):
        design = panel_or_design
    elif isinstance(panel_or_design, Panel):
        design = calibrate_design(
            panel_or_design, outcome or panel_or_design.outcomes[0], exposure=exposure
        )
    else:
        raise SpecError(
            f"power_analysis needs a Panel or a PowerDesign; received {type(panel_or_design).__name__}."
        )
    rng = as_generator(rng)
    pilot_rng, main_rng = rng.spawn(2)
    entry = registry.entry(estimator)
    if entry is None:
        raise SpecError(f"Unknown estimator {estimator!r}; use one of {registry.names()}.")
    # the registry's power defaults (e.g. analytic SEs) under the caller's own options
    options = {**entry.power_options, **dict(estimator_options or {})}
    spill_options = {"n_boot": 99, **dict(spillover_options or {})}

    notes = []
    roles = design.exposure.table["role"] if design.exposure is not None else pd.Series(dtype=str)
    can_spill = bool((roles == "exposed").any() and (roles == "clean").any())
    wanted = list(targets) if targets is not None else list(TARGETS)
    bad = [t for t in wanted if t not in TARGETS]
    if bad:
        raise SpecError(f"Unknown power target(s) {bad}; use {list(TARGETS)}.")
    if not can_spill and any(t != "direct" for t in wanted):
        notes.append(
            "spillover and displacement not analysed: no exposure map with both exposed and "
            "clean units (give the panel geography/adjacency)"
        )
        wanted = [t for t in wanted if t == "direct"]

    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    grids: dict[str, list[float]] = {}

    def task(
        grid: dict[str, list[float]],
        disp_direct: float = 0.0,
        disp_sizes: tuple[float, float] | None = None,
    ) -> Any:
        return partial(
            _one_rep,
            design=design,
            estimator=estimator,
            options=options,
            spill_options=spill_options,
            grids=grid,
            displacement_direct=disp_direct,
            displacement_sizes=disp_sizes,
        )

    # a pilot replication at zero effect sets the default grids around the analytic MDE
    need_pilot = {
        t: g
        for t, g in (("direct", effect_grid), ("spillover", spillover_grid))
        if t in wanted and g is None
    }
    if need_pilot:
        pilot = task({t: [0.0] for t in need_pilot})(0, pilot_rng)
        for target, _, _, _, se, _ in pilot:
            if not np.isfinite(se):
                raise EstimationError(f"The pilot {target} estimate has no standard error.")
            grids[target] = list(np.linspace(0, 2 * z * se, 9))
    if "direct" in wanted and effect_grid is not None:
        grids["direct"] = [float(e) for e in effect_grid]
    if "spillover" in wanted and spillover_grid is not None:
        grids["spillover"] = [float(e) for e in spillover_grid]
    grids = {t: grids[t] for t in TARGETS if t in grids}

    def collect(
        grid: dict[str, list[float]],
        disp_direct: float,
        gen: np.random.Generator,
        disp_sizes: tuple[float, float] | None = None,
    ) -> list:
        reps = replicate(
            task(grid, disp_direct, disp_sizes), int(n_reps), rng=gen, n_jobs=n_jobs, desc="power"
        )
        return [row for rows in reps for row in rows]

    main_rng, disp_rng = main_rng.spawn(2)
    rows = collect(grids, 0.0, main_rng) if grids else []
    draws = _draws_frame(rows)
    curves = _curves(draws, alpha)
    mde = {t: _mde(*_curve_arrays(curves, t), power) for t in grids}

    if "displacement" in wanted:
        if displacement_direct is None:
            direct_mde = mde.get("direct", float("nan"))
            displacement_direct = (
                2 * direct_mde if np.isfinite(direct_mde) else max(grids.get("direct", [1.0]))
            )
        dgrid = [float(e) for e in (displacement_grid or (0, 0.1, 0.25, 0.5, 0.75, 1.0))]
        sizes = _displacement_sizes(design, spill_options)
        drows = collect({"displacement": dgrid}, float(displacement_direct), disp_rng, sizes)
        ddraws = _draws_frame(drows)
        draws = pd.concat([d for d in (draws, ddraws) if len(d)] or [ddraws], ignore_index=True)
        curves = _curves(draws, alpha)
        mde["displacement"] = _mde(*_curve_arrays(curves, "displacement"), power)

    analytic = {}
    for t in mde:
        zero = curves[(curves["target"] == t) & (curves["effect"] == 0)]
        analytic[t] = float(z * zero["mean_se"].iloc[0]) if len(zero) else float("nan")
    info = {
        "estimator": estimator,
        "spillover_estimator": "spillover (imputation base, cluster bootstrap)",
        "alpha": alpha,
        "power": power,
        "n_reps": int(n_reps),
        "sigma": design.sigma,
        "rho": design.rho,
        "displacement_direct": displacement_direct,
        "notes": "; ".join(notes),
        **{f"calibration_{k}": v for k, v in design.info.items()},
    }
    return PowerResult(curves, mde, analytic, draws, design, info)


def _draws_frame(rows: Sequence[tuple[str, float, int, float, float, float]]) -> pd.DataFrame:
    """The replications as a typed frame (typed also when empty: a displacement-only
    analysis has no direct or spillover draws, and object columns break ``_curves``)."""
    frame = pd.DataFrame(
        list(rows), columns=["target", "effect", "rep", "estimate", "se", "p_value"]
    )
    return frame.astype(
        {
            "target": object,
            "effect": float,
            "rep": int,
            "estimate": float,
            "se": float,
            "p_value": float,
        }
    )


def _curves(draws: pd.DataFrame, alpha: float) -> pd.DataFrame:
    d = draws.assign(reject=(draws["p_value"] < alpha).astype(float))
    d.loc[~np.isfinite(draws["p_value"]), "reject"] = np.nan
    g = d.groupby(["target", "effect"], sort=False)
    out = g.agg(
        power=("reject", "mean"),
        n_reps=("reject", "count"),
        mean_estimate=("estimate", "mean"),
        mean_se=("se", "mean"),
    ).reset_index()
    out["mc_se"] = np.sqrt(out["power"] * (1 - out["power"]) / out["n_reps"].clip(lower=1))
    return out


def _curve_arrays(curves: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray]:
    c = curves[curves["target"] == target]
    return c["effect"].to_numpy(float), c["power"].to_numpy(float)


# ---------------------------------------------------------------------- from a run spec
POWER_KEYS = (
    "outcome",
    "estimator",
    "options",
    "effect_grid",
    "spillover_grid",
    "displacement_grid",
    "displacement_direct",
    "targets",
    "n_reps",
    "alpha",
    "power",
    "n_jobs",
    "exposure",
    "spillover_options",
)


def power_from_spec(spec: Any) -> PowerResult:
    """Run the power analysis a :class:`~zoneimpact.spec.RunSpec` describes.

    The data come from the spec's ``[data]`` (the generator for a simulated panel is the
    first child of the spec's seed, as in ``run``; the power replications use the second),
    the settings from its optional ``[power]`` table (keys: ``outcome`` — default the first
    of ``[data] outcomes`` —, ``estimator`` (default ``"callaway_santanna"``), ``options``,
    ``effect_grid``, ``spillover_grid``, ``displacement_grid``, ``displacement_direct``,
    ``targets``, ``n_reps`` (default 200), ``alpha`` and ``n_jobs`` (default from
    ``[inference]``), ``power`` (0.8), ``exposure``, ``spillover_options``).
    """
    from .datasets import load_data

    cfg = dict(spec.power or {})
    unknown = sorted(set(cfg) - set(POWER_KEYS))
    if unknown:
        raise SpecError(f"Unknown key(s) {unknown} in [power]; allowed: {sorted(POWER_KEYS)}.")
    data_rng, power_rng = np.random.default_rng(spec.seed).spawn(2)
    panel = load_data(spec, data_rng).panel
    outcome = cfg.get("outcome") or (spec.data.outcomes[0] if spec.data.outcomes else None)
    return power_analysis(
        panel,
        outcome=outcome,
        estimator=cfg.get("estimator", "callaway_santanna"),
        effect_grid=cfg.get("effect_grid"),
        spillover_grid=cfg.get("spillover_grid"),
        displacement_grid=cfg.get("displacement_grid"),
        displacement_direct=cfg.get("displacement_direct"),
        targets=cfg.get("targets"),
        n_reps=int(cfg.get("n_reps", 200)),
        rng=power_rng,
        n_jobs=int(cfg.get("n_jobs", spec.inference.n_jobs)),
        alpha=float(cfg.get("alpha", spec.inference.alpha)),
        power=float(cfg.get("power", 0.8)),
        estimator_options=cfg.get("options"),
        spillover_options=cfg.get("spillover_options"),
        exposure=cfg.get("exposure", True),
    )
