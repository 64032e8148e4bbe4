r"""Delete-one-cluster jackknife (CV3) of the spillover decomposition's Callaway-Sant'Anna base.

``SpilloverResult.with_inference("jackknife")``. Each CS piece (direct, every spillover
ring, the spillover onto zone units, the naive comparison) is re-estimated on its own
panel without the units of cluster ``g`` (propensity scores and outcome regressions
included, with the fit's options; every deletion's cells at once,
:func:`zoneimpact.estimators.callaway_santanna.cells_without`), and its mean effect over
the target unit-periods recomputed as
the fit computes it: CS's ATT(g,t) of the estimated post-treatment cells, each weighted by
its number of targets (with unit weights, their weight sum) in the refitted panel. That is
CS's own ``att`` on a balanced piece and the target-weighted mean on the others
(:func:`zoneimpact.estimators.spillover._target_weighted_att`); a deletion that removes a
cohort's every unit averages the cells left (the jackknife of the procedure, as
:meth:`CallawaySantAnnaResult.with_inference` does). The naive comparison keeps CS's own
``att`` (cohort-share weights), as the fit reports it. A piece whose targets all sit in
one cluster has no SE under either inference (the one-cluster rule of
:func:`zoneimpact.estimators.spillover._one_cluster`); it keeps its analytic scores, so a
term that adds it to other pieces (net) keeps an SE without its part, as the analytic
inference does, instead of none.

**Scores.** The decomposition's joint inference reads per-cluster scores ``s_g`` whose
cross-products are the covariance (:func:`zoneimpact.estimators.spillover._linear_terms`).
With :math:`\hat\theta_{(g)}` a piece's mean without cluster ``g``,

.. math:: s_g = -\sqrt{(G-1)/G}\,(\hat\theta_{(g)} - \hat\theta)

gives :math:`\sum_g s_g s_g'` = the CV3 covariance of MacKinnon, Nielsen & Webb (2023,
"Cluster-robust inference: a guide to empirical practice", J. Econometrics 232(2)),
centred at the estimate (:func:`zoneimpact.inference.jackknife.cluster_jackknife_vcov`),
jointly over the pieces: totals, net and the displacement share are linear in the pieces'
means with their target counts held fixed, as in the analytic scores. The sign makes
``s_g`` the analytic score's analogue (for a mean, :math:`\hat\theta_{(g)} - \hat\theta =
-G/(G-1)\,\psi_g` under equal clusters), so the region check's own scores stack with them.
The terms keep t(G - 1).

**Why.** The analytic influence-function SEs of the CS base under-cover in the package's
Monte Carlo (SE/SD 0.63-0.93, a true null rejected in 6-13% of worlds at 5%;
``benchmarks/RESULTS.md``, session 15): the doubly robust cells' heavy tails (reported
zeros carried by each cell's single base period) are linearised away, and refitting keeps
them. Its calibration on the same worlds is in ``benchmarks/RESULTS.md`` (session 33);
it is therefore the CS base's default inference with up to 100 clusters
(:func:`zoneimpact.estimators.spillover._cs_default`).

Why by hand: CV3 itself is one outer product (:mod:`zoneimpact.inference.jackknife`); no
library refits this decomposition's pieces.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ZoneImpactError
from ..panel import Panel


def piece_mean(
    panel: Panel, outcome: str, fit_options: Mapping[str, Any], own_att: bool = False
) -> float:
    """A CS piece's mean effect over its estimated target unit-periods on ``panel``: CS's
    cells refitted with ``fit_options``, post-treatment cells weighted by their targets
    (module notes); with ``own_att`` CS's own ``att`` (cells weighted by their cohort's
    share), which the naive comparison reports whatever its balance. Raises where CS
    cannot estimate any cell."""
    from . import callaway_santanna as cs

    gt = cs._refit_cells(panel, outcome, dict(fit_options))
    return _mean_from_cells(gt, panel.data, outcome, fit_options, own_att)


def cell_keys(data: pd.DataFrame) -> pd.MultiIndex:
    """Each row's (cohort, time) cell, as floats (CS's cell labels)."""
    return pd.MultiIndex.from_frame(data[["cohort", "time"]].astype(float))


def target_rows(
    data: pd.DataFrame, outcome: str, cells: pd.MultiIndex, key: pd.MultiIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A CS piece's target rows (observed at or after their cohort) in the post cells
    ``cells`` it estimated, and its other target rows: the one rule by which the fit's
    totals (:func:`zoneimpact.estimators.spillover._cs_targets`) and every deletion's mean
    count targets. ``key``: :func:`cell_keys` of ``data``, if already built."""
    post = ((data["time"] >= data["cohort"]) & data[outcome].notna()).to_numpy()
    in_cell = (cell_keys(data) if key is None else key).isin(cells)
    return post & in_cell, post & ~in_cell


def _mean_from_cells(
    gt: Any, data: pd.DataFrame, outcome: str, fit_options: Mapping[str, Any], own_att: bool
) -> float:
    """:func:`piece_mean` from CS's cells ``gt`` on the panel rows ``data``."""
    from . import callaway_santanna as cs

    if own_att:
        agg = cs.aggregate_terms(gt, ["simple"])
        return float(agg.estimates[agg.names.index("att")])
    post = (gt.cell_t >= gt.cell_g) & np.isfinite(gt.att)
    cells = pd.MultiIndex.from_arrays(
        [np.asarray(gt.cell_g, float)[post], np.asarray(gt.cell_t, float)[post]]
    )
    att = pd.Series(np.asarray(gt.att, float)[post], index=cells)
    key = cell_keys(data)
    target, _ = target_rows(data, outcome, cells, key)
    weights = fit_options.get("weights")
    w = np.ones(len(data)) if weights is None else data[weights].to_numpy(float)
    size = pd.Series(w[target], index=key[target]).groupby(level=[0, 1]).sum()
    if not len(size) or size.sum() <= 0:
        return np.nan
    return float(att.reindex(size.index).to_numpy() @ size.to_numpy() / size.sum())


def jackknife_scores(
    base_results: Mapping[str, Any],
    estimates: Mapping[str, float],
    of_unit: pd.Series,
    n_clusters: int,
    outcome: str,
    n_jobs: int = 1,
    skip: Collection[str] = (),
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-cluster jackknife scores of every CS piece in ``base_results`` but ``skip``
    (module notes); the naive comparison's mean is CS's own ``att``, as the fit's.

    Parameters
    ----------
    base_results : mapping of piece name to CallawaySantAnnaResult
        The pieces' CS fits, each keeping its panel and options.
    estimates : mapping of piece name to float
        The pieces' means as the fit reported them (the jackknife's centre).
    of_unit : pandas.Series
        Cluster code (0 .. ``n_clusters`` - 1) of every unit.
    n_clusters : int
    outcome : str
    n_jobs : int
        Parallel refits (one task per deleted cluster).
    skip : collection of str
        Pieces not refitted (the fit's one-cluster pieces, whose terms carry no SE and
        whose analytic scores the caller keeps).

    Returns
    -------
    scores : dict of piece name to ndarray (n_clusters,)
        NaN for a piece some deletion leaves undefined.
    info : dict
        ``jackknife_clusters`` and ``jackknife_undefined`` (piece: the clusters whose
        deletion left it without an estimate, each named by one of its units, and why).
    """
    names = [k for k in base_results if k not in skip and np.isfinite(estimates.get(k, np.nan))]
    rows = {k: of_unit.reindex(base_results[k]._panel().data["unit"]).to_numpy(int) for k in names}
    present = {k: set(np.unique(rows[k]).tolist()) for k in names}

    from . import callaway_santanna as cs

    # each piece's cells without every cluster at once (cs.cells_without: one batch of
    # 2x2s per cell with covariates, refits otherwise); a cluster outside the piece's
    # panel leaves it as fitted
    reps: list[dict[str, float | str]] = [{} for _ in range(n_clusters)]
    for k in names:
        res, panel = base_results[k], base_results[k]._panel()
        options = res.settings["fit_options"]
        keeps = {g: rows[k] != g for g in range(n_clusters) if g in present[k]}
        found = cs.cells_without(panel, outcome, dict(options), list(keeps.values()),
                                 n_jobs=n_jobs)  # fmt: skip
        for g in range(n_clusters):
            reps[g][k] = float(estimates[k])
        for (g, keep), gt in zip(keeps.items(), found, strict=True):
            if isinstance(gt, str):
                reps[g][k] = gt
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reps[g][k] = _mean_from_cells(
                        gt, panel.data.loc[keep], outcome, options, own_att=k == "naive"
                    )
            except (ZoneImpactError, np.linalg.LinAlgError) as exc:
                reps[g][k] = str(exc)[:200]
    factor = np.sqrt((n_clusters - 1) / n_clusters)
    units = of_unit.index.to_series().groupby(of_unit.to_numpy())
    first, size = units.first(), units.size()
    scores: dict[str, np.ndarray] = {}
    undefined: dict[str, list[str]] = {}
    for k in names:
        theta = np.array([r[k] if not isinstance(r[k], str) else np.nan for r in reps], float)
        bad = [
            f"the cluster of unit {first[g]} ({size[g]} units): "
            f"{r[k] if isinstance(r[k], str) else 'no estimated target'}"
            for g, r in enumerate(reps)
            if isinstance(r[k], str) or not np.isfinite(r[k])
        ]
        if bad:
            undefined[k] = bad
            scores[k] = np.full(n_clusters, np.nan)
        else:
            scores[k] = -factor * (theta - float(estimates[k]))
    return scores, {"jackknife_clusters": n_clusters, "jackknife_undefined": undefined}
