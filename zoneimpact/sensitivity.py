"""How much the concentration-versus-creation answer depends on who counts as exposed.

The spillover decomposition (:mod:`zoneimpact.estimators.spillover`) needs an exposure map,
and the map is a modelling choice: shared borders, distance rings, the ``k`` nearest units,
the whole region. This module runs the decomposition across such choices:

* :func:`distance_curve` — the spillover effect by distance band to the nearest zone, in
  narrow rings (the nonparametric effect-by-distance curve of Butts 2023, "JUE Insight:
  Difference-in-differences with geocoded microdata", *Journal of Urban Economics* 133):
  where the curve reaches zero the spillover ends;
* :func:`cv_cutoff` — Clarke's (2017, Section 3) data-driven spillover distance: for each
  candidate cutoff ``h`` the model ``Y = a_i + l_t + tau D + delta 1{d <= h, exposed} + e``
  (plus baseline covariates by period, the spillover fit's conditional parallel trends)
  is fitted on ``K - 1`` folds of the unit-periods and predicts the held-out fold; the
  cutoff with the smallest cross-validated mean squared error is chosen;
* :func:`exposure_sensitivity` — direct, spillover, net and displacement share under each
  exposure definition, one row per definition (the table behind the sensitivity figure).

These orchestrate estimates; they live outside the estimators because they call one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import SpecError
from .estimators import _bjs
from .estimators.spillover import _baseline, _trend_terms
from .estimators.spillover import fit as spillover_fit
from .exposure import build_exposure
from .panel import Panel

__all__ = ["cv_cutoff", "distance_curve", "exposure_sensitivity", "DEFAULT_DEFINITIONS"]

#: Exposure definitions compared by default: name -> options of the spillover fit.
DEFAULT_DEFINITIONS: dict[str, dict[str, Any]] = {
    "adjacency": {"exposure": "adjacency"},
    "rings 0-50 km": {"exposure": "rings", "rings_km": [(0, 50)]},
    "rings 0-100 km": {"exposure": "rings", "rings_km": [(0, 100)]},
    "rings 0-200 km": {"exposure": "rings", "rings_km": [(0, 200)]},
    "2 nearest": {"exposure": "knn", "k_nearest": 2},
    "same region": {"exposure": "region"},
}


def _bands(bins_km: Sequence[float]) -> list[tuple[float, float]]:
    edges = [float(b) for b in bins_km]
    if (
        len(edges) < 2
        or any(b <= a for a, b in zip(edges, edges[1:], strict=False))
        or edges[0] < 0
    ):
        raise SpecError(
            f"bins_km must be at least two increasing distances >= 0; received {list(bins_km)}."
        )
    return list(zip(edges[:-1], edges[1:], strict=True))


def distance_curve(
    panel: Panel,
    outcome: str,
    bins_km: Sequence[float] = (0, 25, 50, 75, 100, 150, 200, 300),
    **options: Any,
) -> pd.DataFrame:
    """Spillover effect by distance band to the nearest zone (Butts 2023).

    Parameters
    ----------
    panel : Panel
        Needs ``lat``/``lon`` geography.
    outcome : str
    bins_km : sequence of float
        Band edges; units beyond the last edge are clean controls.
    **options
        Further options of :func:`zoneimpact.estimators.spillover.fit` (covariates, ...).

    Returns
    -------
    DataFrame
        One row per band: ``low_km``, ``high_km``, ``estimate``, ``se``, ``conf_low``,
        ``conf_high`` and ``n_target_unit_periods`` (empty bands have no row).
    """
    res = spillover_fit(
        panel, outcome=outcome, exposure="rings", rings_km=_bands(bins_km), **options
    )
    tidy = res.tidy().set_index("term")
    pieces = res.pieces.set_index("piece")
    rows = []
    for lo, hi in _bands(bins_km):
        term = f"spillover:{lo:g}-{hi:g}km"
        if term not in tidy.index:
            continue
        rows.append(
            {
                "low_km": lo,
                "high_km": hi,
                "estimate": tidy.loc[term, "estimate"],
                "se": tidy.loc[term, "std_error"],
                "conf_low": tidy.loc[term, "conf_low"],
                "conf_high": tidy.loc[term, "conf_high"],
                "n_target_unit_periods": int(pieces.loc[term, "n_target_unit_periods"]),
            }
        )
    return pd.DataFrame(rows)


def cv_cutoff(
    panel: Panel,
    outcome: str,
    candidates_km: Sequence[float] = (25, 50, 75, 100, 150, 200, 300),
    *,
    covariates: Sequence[str] = (),
    n_folds: int = 5,
    rng: np.random.Generator | int | None = 0,
) -> tuple[float, pd.DataFrame]:
    """Clarke's (2017) cross-validated spillover distance.

    For each candidate ``h`` the two-way model with a zone indicator ``D`` and an exposure
    indicator ``S_h`` (a non-zone unit within ``h`` km of an opened zone) is fitted on
    ``K - 1`` random folds of the observed unit-periods and predicts the held-out fold
    (unit and period effects from the fitted folds); the mean squared prediction error over
    all folds is the criterion, the same folds serve every ``h``.

    Parameters
    ----------
    covariates : sequence of str
        Baseline covariates whose period-specific coefficients enter every candidate's
        model (``x_i * 1{t = s}``, as in the spillover fit's ``covariates``). When zone
        timing and trends both depend on a covariate, leaving it out leaves the
        covariate's trend in every candidate's prediction error and lets the zone and
        exposure indicators absorb part of it, which blurs the comparison of cutoffs.
        Units need one period with every covariate observed (their baseline).

    Returns
    -------
    best : float
        The cutoff with the smallest cross-validated MSE.
    table : DataFrame
        ``cutoff_km``, ``cv_mse``, ``n_exposed_units``.
    """
    if n_folds < 2:
        raise SpecError(f"n_folds must be >= 2; received {n_folds}.")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    wide = panel.wide(outcome)
    units = wide.index.to_numpy()
    periods = wide.columns.to_numpy(float)
    Y = wide.to_numpy(float)
    ui, ti = np.nonzero(np.isfinite(Y))
    y = Y[ui, ti]
    cohort = panel.unit_cohort.reindex(units).to_numpy(float)
    D = (periods[ti] >= cohort[ui]).astype(float)
    if covariates:
        xb = _baseline(panel, covariates).reindex(units).to_numpy(float)
        trends = _trend_terms(xb[ui], ti, len(periods))
    else:
        trends = np.zeros((len(y), 0))
    fold = rng.integers(0, n_folds, size=len(y))
    rows = []
    for h in candidates_km:
        emap = build_exposure(panel, "rings", rings_km=[(0.0, float(h))])
        tab = emap.table.reindex(units)
        onset = tab["exposure_onset"].to_numpy(float)
        exposed = (tab["role"] == "exposed").to_numpy()
        S = (exposed[ui] & (periods[ti] >= onset[ui])).astype(float)
        X = np.column_stack([D, S, trends])
        err = np.full(len(y), np.nan)
        for k in range(n_folds):
            test = fold == k
            fit = _bjs.fit_untreated(ui, ti, y, X, ~test, test, what=f"the cutoff {h:g} km model")
            err[fit.target] = fit.tau
        ok = np.isfinite(err)
        rows.append(
            {
                "cutoff_km": float(h),
                "cv_mse": float(np.mean(err[ok] ** 2)),
                "n_exposed_units": int(exposed.sum()),
            }
        )
    table = pd.DataFrame(rows)
    best = float(table.loc[table["cv_mse"].idxmin(), "cutoff_km"])
    return best, table


def exposure_sensitivity(
    panel: Panel,
    outcome: str,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """The decomposition under each exposure definition (one row per definition).

    Parameters
    ----------
    definitions : dict, optional
        Name -> spillover options defining the exposure (default
        :data:`DEFAULT_DEFINITIONS`; definitions the panel's geography cannot support are
        reported with the reason instead of numbers).
    **options
        Options shared by every fit (covariates, n_boot, rng, ...).

    Returns
    -------
    DataFrame
        ``definition``, then for each of direct, spillover, net, displacement_share the
        estimate, ``_low`` and ``_high`` (pointwise CI), ``n_exposed_units`` and ``note``.
    """
    from .errors import ZoneImpactError

    defs = DEFAULT_DEFINITIONS if definitions is None else definitions
    rows = []
    for name, opts in defs.items():
        row: dict[str, Any] = {"definition": name}
        try:
            res = spillover_fit(panel, outcome=outcome, **{**options, **dict(opts)})
        except ZoneImpactError as exc:
            rows.append({**row, "note": str(exc)})
            continue
        ci = res.conf_int()
        for term in ("direct", "spillover", "net", "displacement_share"):
            if term in ci.index:
                row[term] = res.coef(term)
                row[f"{term}_low"] = ci.loc[term, "lower"]
                row[f"{term}_high"] = ci.loc[term, "upper"]
        row["n_exposed_units"] = res.info["n_exposed_units"]
        # why net or the share is missing (pre_exposed="drop_units")
        row["note"] = str(res.info.get("net_note", ""))
        rows.append(row)
    return pd.DataFrame(rows)
