"""Spillover-aware DiD: direct, spillover and net regional effects of zones.

Method
------
Butts (2021), "Difference-in-differences estimation with spatial spillovers",
arXiv:2105.03737, and Clarke (2017), "Estimating difference-in-differences in the presence
of spillovers", MPRA 81604. With an exposure map (:mod:`zoneimpact.exposure`) the
potential outcome of unit ``i`` at ``t`` depends on its own zone ``D_it`` and on its
exposure ``S_it`` to zones nearby. Under parallel trends of ``Y(0, 0)`` and no exposure of
the clean controls (Butts 2021, Assumption 3 and eq. 3.2), the DiD of zone units against
*clean* controls identifies the direct effect ``tau_direct = E[Y(1, s) - Y(0, 0) | D = 1]``
and the DiD of exposed units against the same controls the spillover effect
``tau_spill = E[Y(0, 1) - Y(0, 0) | S = 1]`` (Butts 2021, eqs. 3.4-3.5; the "ring"
estimator). Keeping exposed units among the controls — the usual ("naive") DiD — adds
``- tau_spill`` times the exposed share of the control group to the direct estimate
(Butts 2021, eq. 3.3; Clarke 2017, eq. 4): with displacement (``tau_spill < 0``) the naive
DiD overstates the zone effect.

Net regional effect and displacement share (zoneimpact's estimands, DESIGN.md): in
outcome levels, ``total_direct = tau_direct x N_direct`` and ``total_spill = sum_r
tau_spill_r x N_r``, where ``N`` counts the treated (resp. exposed) unit-periods, so each
total is the sum of unit-period effects. ``net = total_direct + total_spill`` is the
change in the regions' total; ``displacement_share = - total_spill / total_direct`` is 1
under pure relocation (concentration) and 0 under pure creation. The cross-check
``net_region_did`` estimates the net effect directly by DiD on region-by-year totals
(regions treated from their first zone year), where relocation within a region cancels.

Inference: a cluster (region) bootstrap (Cameron, Gelbach & Miller 2008, the pairs
cluster bootstrap) resamples whole regions with replacement and re-estimates *every*
piece on the same draw, so net, displacement share and their components get a joint
distribution. Standard errors are the bootstrap interquartile range over
``qnorm(.75) - qnorm(.25)`` (robust to the heavy tails of a ratio, as R ``did::mboot``);
percentile intervals are in ``info`` and the ``bootstrap`` artifact.

Base estimators: ``"imputation"`` (default; Borusyak, Jaravel & Spiess 2024, Theorem 2:
unit and period effects fitted on the untreated rows, treated rows imputed) is computed
here in closed form for a whole batch of bootstrap draws at once — resampling clusters is
the same as giving each unit a frequency weight, and the period effects of a two-way
model with unit weights solve a ``T x T`` system (concentrating out the unit effects), so
one batched linear solve serves every draw. At unit weights it equals
:func:`zoneimpact.estimators.imputation.fit` without covariates (tested to 1e-8). Any
other registry estimator (``callaway_santanna``, ``twfe``, or ``imputation`` with
options) is called through :func:`zoneimpact.estimators.get_estimator` on each piece and
refitted on relabelled resampled panels in the bootstrap (slower).

Why by hand: no maintained Python package estimates spillover-robust DiD with net effects
and a joint cluster bootstrap; the batched imputation is a few matrix products.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import EstimationError, GeographyError, SpecError, ZoneImpactError
from ..exposure import Controls, ExposureMap, PreExposed, build_exposure
from ..panel import Panel
from ..parallel import as_generator, replicate
from ..results import EstimationResult, terms_frame
from ._scale import scale_equivariant

__all__ = ["SpilloverResult", "fit", "region_panel"]

_IQR_NORMAL = float(stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
_BASES = ("imputation", "callaway_santanna", "twfe")
_CHUNK = 50


@dataclass(frozen=True)
class SpilloverResult(EstimationResult):
    """Direct, spillover, net and displacement estimates with a joint bootstrap.

    Extra fields: ``exposure`` (the :class:`~zoneimpact.exposure.ExposureMap`),
    ``pieces`` (one summary row per piece: direct, spillover rings, naive, region; with
    estimate, total, number of target unit-periods), ``draws`` (bootstrap draws of every
    term, one row per draw), ``base_results`` (the base estimator's results per piece when
    a registry estimator was used).
    """

    SCALE_FREE_TERMS: ClassVar[tuple[str, ...]] = ("displacement_share",)
    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "pieces": {"estimate": 1, "total": 1},
        "draws": {"*": 1, "displacement_share": 0},
        "base_results": 1,
    }
    SCALED_INFO: ClassVar[dict[str, int]] = {"pre_mean": 1, "outcome_sd": 1}

    exposure: ExposureMap | None = None
    pieces: pd.DataFrame = field(default_factory=pd.DataFrame)
    draws: pd.DataFrame = field(default_factory=pd.DataFrame)
    base_results: dict[str, EstimationResult] = field(default_factory=dict)

    def artifacts(self) -> dict[str, pd.DataFrame]:
        out = {"pieces": self.pieces}
        if self.exposure is not None:
            out["exposure"] = self.exposure.table.reset_index()
        if not self.draws.empty:
            out["bootstrap"] = self.draws
        return out


# ---------------------------------------------------------------------- the pieces
@dataclass(frozen=True)
class _Piece:
    """One imputation problem on the wide matrix: ``clean`` rows fit the two-way model,
    ``target`` rows are imputed. Both are boolean (units x periods) masks.
    """

    name: str
    clean: np.ndarray
    target: np.ndarray


def _masks(
    panel: Panel,
    outcome: str,
    emap: ExposureMap,
    controls: Controls,
    pre_exposed: PreExposed,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[_Piece]]:
    """Wide outcome matrix and the masks of every piece (same rows as ``emap.panels``)."""
    wide = panel.wide(outcome)
    units = wide.index.to_numpy()
    periods = wide.columns.to_numpy(float)
    Y = wide.to_numpy(float)
    obs = np.isfinite(Y)
    tab = emap.table.reindex(units)
    role = tab["role"].to_numpy()
    g = tab["cohort"].to_numpy(float)[:, None]
    e = tab["exposure_onset"].to_numpy(float)[:, None]
    ring = tab["ring"].to_numpy()[:, None]
    t = periods[None, :]

    zone = (role == "direct")[:, None]
    exposed = (role == "exposed")[:, None]
    clean_u = (role == "clean")[:, None]
    pre_exp = exposed & (t < e)
    not_yet = controls == "not_yet_exposed"

    zone_rows = np.broadcast_to(zone, Y.shape)
    if pre_exposed == "drop_rows":
        zone_rows = zone & ~((t >= e) & (t < g))
    elif pre_exposed == "drop_units":
        zone_rows = np.broadcast_to(zone & ~(e < g), Y.shape)
    nonzone_clean = clean_u | (pre_exp if not_yet else False)

    pieces = [
        _Piece("direct", obs & ((zone_rows & (t < g)) | nonzone_clean), obs & zone_rows & (t >= g))
    ]
    for r in emap.rings:
        in_ring = exposed & (ring == r)
        if not in_ring.any():
            continue
        other = exposed & (ring != r) & (t < e) if not_yet else False
        pieces.append(
            _Piece(
                f"spillover:{r}",
                obs & (clean_u | (in_ring & (t < e)) | other),
                obs & in_ring & (t >= e),
            )
        )
    # the usual DiD: every not-yet-zone row is a control, neighbours included
    pieces.append(_Piece("naive", obs & (t < g), obs & (t >= g)))
    return Y, units, periods, pieces


def _impute_batch(Y: np.ndarray, piece: _Piece, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Imputation ATT and total for a batch of unit weights (BJS 2024, Theorem 2).

    Parameters
    ----------
    Y : ndarray (N, T)
    piece : _Piece
    W : ndarray (B, N)
        Frequency weights of the units in each draw (1 = the original sample).

    Returns
    -------
    att, total : ndarray (B,)
        NaN in a draw where some weighted target period has no weighted clean row.

    Notes
    -----
    With unit weights ``w_i`` and the two-way model ``Y_it = a_i + l_t`` on clean rows
    ``C``, the first-order condition in ``a_i`` gives ``a_i = ybar_i - (C l)_i / n_i``
    (weights cancel within a unit); substituting, the period effects solve
    ``A l = r`` with ``A = diag(sum_i w_i C_it) - C' diag(w / n) C`` and ``r_t = sum_i w_i
    C_it (Y_it - ybar_i)``. ``A`` has the constant in its null space (the usual
    normalisation), fixed by adding ``v v'`` with ``v`` the indicator of identified
    periods.
    """
    C = piece.clean.astype(float)
    target = piece.target
    n_i = C.sum(1)
    orphan = (target.sum(1) > 0) & (n_i == 0)
    if orphan.any():
        # a unit treated (or exposed) from its first observed period has no untreated row
        # to impute its unit effect from: its targets are dropped, as did_imputation does
        warnings.warn(
            f"Piece {piece.name!r}: {int(orphan.sum())} unit(s) have no untreated "
            "observation; their treated/exposed rows are left out.",
            stacklevel=2,
        )
        target = target & ~orphan[:, None]
    Tm = target.astype(float)
    Yc = np.where(piece.clean, Y, 0.0)
    Yt = np.where(target, Y, 0.0)
    safe_n = np.where(n_i > 0, n_i, 1.0)
    ybar = Yc.sum(1) / safe_n
    B, (N, T) = W.shape[0], Y.shape
    wn = W / safe_n[None, :]
    # A_b = diag(W C) - sum_i (w_i / n_i) C_i C_i'   (one GEMM for every draw)
    outer = (C[:, :, None] * C[:, None, :]).reshape(N, T * T)
    A = -(wn @ outer).reshape(B, T, T)
    diag = W @ C
    idx = np.arange(T)
    A[:, idx, idx] += diag
    r = W @ (Yc - C * ybar[:, None])
    valid = diag > 1e-12
    scale = np.maximum(diag.mean(1, keepdims=True), 1.0)
    A = A + (valid[:, :, None] * valid[:, None, :]) * (scale[:, :, None] / T)
    A[:, idx, idx] += ~valid
    lam = np.linalg.solve(A, r[:, :, None])[:, :, 0]
    # sum over a unit's targets of tau_it = Y_it - a_i - l_t
    K = Tm.sum(1)
    base = Yt.sum(1) - K * ybar
    per_unit = base[None, :] + (lam @ C.T) * (K / safe_n)[None, :] - lam @ Tm.T
    total = (W * per_unit).sum(1)
    count = W @ K
    with np.errstate(invalid="ignore", divide="ignore"):
        att = total / count
    # a weighted target in an unidentified period: the draw cannot impute it
    bad = (((W > 0).astype(float) @ Tm) > 0) & ~valid
    bad = bad.any(1)
    att[bad] = np.nan
    total[bad] = np.nan
    return att, total


def _check_identified(pieces: Sequence[_Piece], periods: np.ndarray) -> None:
    """Refuse (rather than return NaN) when the direct effect cannot be imputed.

    The direct piece needs zone unit-periods and, in every period that has some, clean
    (untreated, unexposed) rows to estimate that period's effect from; its units also
    need an untreated row of their own (BJS 2024, Theorem 2's identification).
    """
    direct = next(p for p in pieces if p.name == "direct")
    if periods.size < 2:
        raise EstimationError(
            f"The spillover decomposition needs at least two periods; the panel has "
            f"{periods.size} ({periods.tolist()})."
        )
    if not direct.target.any():
        raise EstimationError(
            "No zone unit-period to estimate a direct effect from: the panel has no treated "
            "unit observed after its cohort (every cohort is infinite or outside the data)."
        )
    has_target = direct.target.any(0)
    no_clean = has_target & ~direct.clean.any(0)
    if no_clean.all():
        raise EstimationError(
            "No clean control (untreated and unexposed) unit-period in any treated period: "
            "every unit is a zone or a zone's neighbour by then. Add never-treated, "
            "unexposed units or use controls='not_yet_exposed' with later-treated units."
        )
    own = direct.clean.sum(1) > 0
    if not (direct.target.any(1) & own).any():
        raise EstimationError(
            "No zone unit has an untreated period of its own before its zone opens, so no "
            "unit effect can be imputed; the data must start before the first zone."
        )


# ---------------------------------------------------------------------- region level
def region_panel(panel: Panel, outcome: str, column: str = "region") -> Panel:
    """Region-by-period totals of ``outcome``; cohort = the region's first zone period.

    A region-period is missing (NaN) when any of the region's units lacks the outcome
    that period, so that each region total always sums the same units.
    """
    geo = panel.require_geography([column])
    d = panel.data[["unit", "time", "cohort", outcome]].copy()
    d["region"] = geo[column].reindex(d["unit"]).to_numpy()
    n_units = d.groupby("region")["unit"].nunique()
    grp = d.groupby(["region", "time"])[outcome]
    agg = pd.DataFrame({"total": grp.sum(), "n_obs": grp.count()}).reset_index()
    agg.loc[agg["n_obs"] < n_units.reindex(agg["region"]).to_numpy(), "total"] = np.nan
    first = d.groupby("region")["cohort"].min()
    agg["cohort"] = first.reindex(agg["region"]).to_numpy()
    frame = agg.rename(columns={"total": outcome})[["region", "time", "cohort", outcome]]
    geo_r = pd.DataFrame({"unit": first.index.to_numpy(), "region": first.index.to_numpy()})
    return Panel.from_frame(
        frame,
        unit="region",
        time="time",
        cohort="cohort",
        outcomes=[outcome],
        geography=geo_r,
        never_values=(),
    )


def _region_piece(rp: Panel, outcome: str) -> tuple[np.ndarray, np.ndarray, _Piece]:
    wide = rp.wide(outcome)
    Y = wide.to_numpy(float)
    obs = np.isfinite(Y)
    g = rp.unit_cohort.reindex(wide.index).to_numpy(float)[:, None]
    t = wide.columns.to_numpy(float)[None, :]
    return Y, wide.index.to_numpy(), _Piece("net_region_did", obs & (t < g), obs & (t >= g))


# ---------------------------------------------------------------------- generic base
def _relabel(
    data: pd.DataFrame, regions: pd.Series, draw: np.ndarray, labels: np.ndarray
) -> pd.DataFrame:
    """Rows of ``data`` for the drawn regions, units renamed ``unit#k`` per copy."""
    parts = []
    reg = regions.reindex(data["unit"]).to_numpy()
    for k, lab in enumerate(labels):
        for c in range(int(draw[k])):
            sub = data.loc[reg == lab].copy()
            sub["unit"] = sub["unit"].astype(str) + f"#{c}"
            parts.append(sub)
    return pd.concat(parts, ignore_index=True)


def _panel_from(data: pd.DataFrame, template: Panel) -> Panel:
    units = data["unit"].unique()
    geo = pd.DataFrame({"unit": units})
    if template.geography is not None:
        base = pd.Series(units).str.rsplit("#", n=1).str[0].to_numpy()
        g = template.geography.copy()
        g.index = g.index.astype(str)
        geo = pd.concat([geo, g.reindex(base).reset_index(drop=True)], axis=1)
    return Panel.from_frame(
        data,
        unit="unit",
        time="time",
        cohort="cohort",
        outcomes=list(template.outcomes),
        covariates=list(template.covariates),
        geography=geo,
        never_values=(),
    )


def _n_target(pp: Panel, outcome: str) -> int:
    d = pp.data
    return int(((d["time"] >= d["cohort"]) & d[outcome].notna()).sum())


def _base_att(
    fit_fn: Any,
    piece_panel: Panel,
    outcome: str,
    options: dict,
    rng: np.random.Generator,
    alpha: float,
) -> tuple[float, float, EstimationResult]:
    """ATT and total (ATT x observed target unit-periods) from a registry estimator."""
    res = fit_fn(piece_panel, outcome=outcome, rng=rng, alpha=alpha, n_jobs=1, **options)
    att = res.coef("att")
    return att, att * _n_target(piece_panel, outcome), res


# ---------------------------------------------------------------------- fit
@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | int | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    exposure: str | ExposureMap = "adjacency",
    rings_km: Sequence[Sequence[float]] | None = None,
    within_region: bool = False,
    controls: Controls = "not_yet_exposed",
    pre_exposed: PreExposed = "drop_rows",
    base_estimator: str = "imputation",
    base_options: Mapping[str, Any] | None = None,
    boot_options: Mapping[str, Any] | None = None,
    n_boot: int = 499,
    cluster: str = "region",
    region_column: str = "region",
    region_sdid: bool = False,
) -> SpilloverResult:
    """Direct, spillover, net regional effect and displacement share of zones.

    Parameters
    ----------
    panel : Panel
        Zone panel with geography (``region``; ``lat``/``lon`` for rings) or adjacency.
    outcome : str
        Outcome in levels (totals of logs are meaningless).
    rng : Generator or int, optional
        Source of the bootstrap draws.
    alpha : float
        Level of the stored confidence intervals.
    n_jobs : int
        Workers for the bootstrap chunks.
    exposure : {"adjacency", "rings", "region"} or ExposureMap
        Exposure map (:mod:`zoneimpact.exposure`).
    rings_km : list of (low, high), optional
        Distance bands for ``exposure="rings"``.
    within_region : bool
        Rings count only zones of the unit's own region.
    controls : {"not_yet_exposed", "never_exposed"}
        Clean controls (see :meth:`ExposureMap.panels`).
    pre_exposed : {"drop_rows", "drop_units", "keep"}
        Zone units exposed before their own zone (see :mod:`zoneimpact.exposure`).
    base_estimator : {"imputation", "callaway_santanna", "twfe"}
        Estimator of each piece's ATT. ``"imputation"`` without ``base_options`` uses the
        batched closed form (fast); otherwise the registry estimator is called per piece
        and per bootstrap draw.
    base_options : dict, optional
        Options passed to the registry estimator (e.g. ``{"control_group":
        "notyettreated"}``).
    boot_options : dict, optional
        Extra options for the bootstrap refits only (e.g. ``{"bootstrap": False}`` to turn
        off an estimator's own inference inside each draw).
    n_boot : int
        Cluster-bootstrap draws (0 = none; standard errors are then NaN).
    cluster : str
        Geography column whose values are resampled (``"region"``), or ``"unit"``.
    region_column : str
        Geography column defining regions for the region exposure map and
        ``net_region_did``.
    region_sdid : bool
        Also estimate the net effect by synthetic DiD on region totals (term
        ``net_region_sdid``; point estimate and SDID's own placebo SE, not bootstrapped).

    Returns
    -------
    SpilloverResult
        Terms ``att`` (= ``direct``), ``direct``, ``spillover`` (pooled over rings),
        ``spillover:RING``, ``direct_total``, ``spillover_total``, ``net``,
        ``net_per_treated`` (net / treated unit-periods), ``displacement_share``,
        ``naive`` (neighbours kept as controls), ``net_region_did``.
    """
    if outcome not in panel.outcomes:
        raise SpecError(
            f"Outcome {outcome!r} is not among the panel's outcomes {list(panel.outcomes)}."
        )
    if base_estimator not in _BASES:
        raise SpecError(
            f"base_estimator={base_estimator!r} is not supported; use one of {list(_BASES)}."
        )
    if n_boot < 0:
        raise SpecError(f"n_boot must be >= 0; received {n_boot}.")
    if controls not in ("not_yet_exposed", "never_exposed"):
        raise SpecError(
            f"controls={controls!r} is not allowed; use 'not_yet_exposed' or 'never_exposed'."
        )
    if pre_exposed not in ("drop_rows", "drop_units", "keep"):
        raise SpecError(
            f"pre_exposed={pre_exposed!r} is not allowed; use 'drop_rows', 'drop_units' or 'keep'."
        )
    base_options = dict(base_options or {})
    boot_options = dict(boot_options or {})
    rng = as_generator(rng)
    emap = build_exposure(
        panel, exposure, rings_km=rings_km, region_column=region_column, within_region=within_region
    )
    Y, units, periods, pieces = _masks(panel, outcome, emap, controls, pre_exposed)
    _check_identified(pieces, periods)
    fast = base_estimator == "imputation" and not base_options

    # clusters for the bootstrap
    if cluster == "unit":
        clus = pd.Series(units, index=units)
    else:
        try:
            clus = panel.require_geography([cluster])[cluster]
        except GeographyError as exc:
            raise GeographyError(
                f"cluster={cluster!r}: {exc} Pass cluster='unit' to resample units."
            ) from exc
        clus = clus.reindex(units)
    # clusters are numbered in an order fixed by the data (Panel.canonical_order), not by
    # their labels, so relabelling units or regions cannot change the bootstrap draws
    canon = clus.reindex(panel.canonical_order(units, outcome)).astype(str)
    labels = pd.unique(canon.to_numpy())
    cluster_pos = {lab: i for i, lab in enumerate(labels)}
    codes = np.array([cluster_pos[c] for c in clus.astype(str).to_numpy()], dtype=int)
    n_clusters = len(labels)

    # region-level cross-check, resampled with the same draw when clusters are regions
    region_note = ""
    try:
        rp = region_panel(panel, outcome, region_column)
        Yr, region_units, rpiece = _region_piece(rp, outcome)
        region_ok = True
    except ZoneImpactError as exc:
        region_ok, region_note = False, str(exc)
    rpos = (
        np.array([cluster_pos[r] for r in region_units.astype(str)], dtype=int)
        if region_ok and cluster == region_column
        else None
    )

    def region_draws(counts: np.ndarray) -> np.ndarray:
        if not region_ok:
            return np.full(counts.shape[0], np.nan)
        if rpos is None:
            # other clusters than regions: the region DiD has no joint draw
            if counts.shape[0] == 1 and np.all(counts == 1):
                return _impute_batch(Yr, rpiece, np.ones((1, len(region_units))))[1]
            return np.full(counts.shape[0], np.nan)
        return _impute_batch(Yr, rpiece, counts[:, rpos].astype(float))[1]

    def estimate_all(counts: np.ndarray) -> dict[str, np.ndarray]:
        """Every piece's ATT and total for cluster-count draws (B x clusters)."""
        W = counts[:, codes].astype(float)
        out: dict[str, np.ndarray] = {}
        for p in pieces:
            att, tot = _impute_batch(Y, p, W)
            out[p.name] = att
            out[p.name + "_total"] = tot
            out[p.name + "_n"] = W @ p.target.sum(1).astype(float)
        out["net_region_did"] = region_draws(counts)
        return out

    base_results: dict[str, EstimationResult] = {}
    if fast:
        point = {k: v[0] for k, v in estimate_all(np.ones((1, n_clusters))).items()}
        engine = "batched imputation (Borusyak, Jaravel & Spiess 2024)"
    else:
        fit_fn = _get(base_estimator)
        direct_p, spill_p = emap.panels(panel, controls=controls, pre_exposed=pre_exposed)
        piece_panels = {
            "direct": direct_p,
            **{f"spillover:{r}": p for r, p in spill_p.items()},
            "naive": panel,
        }
        point = {}
        for name, pp in piece_panels.items():
            att, tot, res = _base_att(fit_fn, pp, outcome, base_options, rng.spawn(1)[0], alpha)
            point[name], point[name + "_total"] = att, tot
            point[name + "_n"] = _n_target(pp, outcome)
            base_results[name] = res
        point["net_region_did"] = region_draws(np.ones((1, n_clusters), dtype=int))[0]
        engine = f"registry estimator {base_estimator!r}"

    if not np.isfinite(point.get("direct", np.nan)):
        direct = next(p for p in pieces if p.name == "direct")
        gap = periods[direct.target.any(0) & ~direct.clean.any(0)]
        raise EstimationError(
            "The direct effect could not be imputed: zone unit-periods in "
            f"{[int(t) for t in gap.tolist()]} have no clean control row (no unit is both "
            "untreated and unexposed then). Drop those periods from the panel, or add "
            "never-treated units that are not zone neighbours."
        )
    terms_point = _combine({k: np.atleast_1d(v) for k, v in point.items()}, pieces)
    names = list(terms_point)
    est = np.array([terms_point[n][0] for n in names])

    # ------------------------------------------------------------------ bootstrap
    draws = pd.DataFrame()
    se = np.full(len(names), np.nan)
    info_boot: dict[str, Any] = {}
    if n_boot > 0:
        sizes = [min(_CHUNK, n_boot - s) for s in range(0, n_boot, _CHUNK)]

        def chunk(b: int, g: np.random.Generator) -> pd.DataFrame:
            counts = g.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=b)
            if fast:
                res = estimate_all(counts)
            else:
                res = _generic_draws(
                    counts,
                    labels,
                    clus,
                    piece_panels,
                    outcome,
                    fit_fn,
                    {**base_options, **boot_options},
                    g,
                    alpha,
                )
                res["net_region_did"] = region_draws(counts)
            comb = _combine(res, pieces)
            return pd.DataFrame(comb)

        parts = replicate(chunk, sizes, rng=rng, n_jobs=n_jobs, desc="cluster bootstrap")
        draws = pd.concat(parts, ignore_index=True)[names]
        with warnings.catch_warnings():
            # a term without draws (e.g. net_region_did when not identified) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            q25, q75 = np.nanquantile(draws.to_numpy(float), [0.25, 0.75], axis=0)
            lo, hi = np.nanquantile(draws.to_numpy(float), [alpha / 2, 1 - alpha / 2], axis=0)
        se = (q75 - q25) / _IQR_NORMAL
        info_boot = {
            "n_boot": n_boot,
            "n_boot_failed": int(draws["net"].isna().sum()),
            "n_clusters": n_clusters,
            "percentile_ci": {
                n: (float(a), float(b)) for n, a, b in zip(names, lo, hi, strict=True)
            },
        }

    # t(G - 1) critical values: few clusters (Cameron, Gelbach & Miller 2008, Section 3.4)
    dfree = np.full(len(names), n_clusters - 1.0 if n_boot > 0 else np.inf)
    terms = terms_frame(names, est, se, df=dfree)
    piece_rows = []
    for p in pieces:
        piece_rows.append(
            {
                "piece": p.name,
                "estimate": point.get(p.name, np.nan),
                "total": point.get(p.name + "_total", np.nan),
                "n_target_unit_periods": point.get(p.name + "_n", np.nan),
                "n_clean_rows": int(p.clean.sum()),
            }
        )
    if region_ok:
        piece_rows.append(
            {
                "piece": "net_region_did",
                "estimate": np.nan,
                "total": point.get("net_region_did", np.nan),
                "n_target_unit_periods": int(rpiece.target.sum()),
                "n_clean_rows": int(rpiece.clean.sum()),
            }
        )
    g_units = emap.table["cohort"].reindex(units).to_numpy(float)
    pre = Y[np.isfinite(g_units)[:, None] & (periods[None, :] < g_units[:, None])]
    info: dict[str, Any] = {
        "exposure": emap.kind,
        "controls": controls,
        "pre_exposed": pre_exposed,
        "base_estimator": base_estimator,
        "engine": engine,
        "cluster": cluster,
        "n_direct_units": int((emap.table["role"] == "direct").sum()),
        "n_exposed_units": int((emap.table["role"] == "exposed").sum()),
        "n_clean_units": int((emap.table["role"] == "clean").sum()),
        "n_pre_exposed_zones": len(emap.pre_exposed_units()),
        "pre_mean": float(np.nanmean(pre)) if pre.size else np.nan,
        "outcome_sd": float(np.nanstd(Y)),
        "n_treated_unit_periods": float(point.get("direct_n", np.nan)),
        **info_boot,
    }
    if not region_ok:
        info["net_region_did_note"] = region_note
    elif np.isnan(point.get("net_region_did", np.nan)):
        info["net_region_did_note"] = (
            "Region totals cannot be imputed for every treated region-year (no untreated "
            "region in some period); net_region_did is NaN."
        )
    result = SpilloverResult(
        estimator="spillover",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=len(units),
        n_obs=int(np.isfinite(Y).sum()),
        info=info,
        alpha=alpha,
        exposure=emap,
        pieces=pd.DataFrame(piece_rows),
        draws=draws,
        base_results=base_results,
    )
    if region_sdid and region_ok:
        result = _add_sdid(result, rp, outcome, rng, alpha)
    return result


def _get(name: str) -> Any:
    from . import get_estimator

    return get_estimator(name)


def _combine(r: Mapping[str, np.ndarray], pieces: Sequence[_Piece]) -> dict[str, np.ndarray]:
    """Assemble the reported terms from the pieces' ATTs and totals (arrays over draws)."""
    rings = [p.name for p in pieces if p.name.startswith("spillover:")]
    d_tot, d_n = np.asarray(r["direct_total"], float), np.asarray(r["direct_n"], float)
    if rings:
        s_tot = np.sum([np.asarray(r[k + "_total"], float) for k in rings], axis=0)
        s_n = np.sum([np.asarray(r[k + "_n"], float) for k in rings], axis=0)
    else:
        s_tot = np.zeros_like(d_tot)
        s_n = np.zeros_like(d_tot)
    net = d_tot + s_tot
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "att": np.asarray(r["direct"], float),
            "direct": np.asarray(r["direct"], float),
            "spillover": np.where(s_n > 0, s_tot / np.where(s_n > 0, s_n, 1), np.nan),
            **{k: np.asarray(r[k], float) for k in rings},
            "direct_total": d_tot,
            "spillover_total": s_tot,
            "net": net,
            "net_per_treated": net / d_n,
            "displacement_share": -s_tot / d_tot,
            "naive": np.asarray(r["naive"], float),
            "net_region_did": np.asarray(
                r.get("net_region_did", np.full_like(d_tot, np.nan)), float
            ),
        }
    return out


def _generic_draws(
    counts: np.ndarray,
    labels: np.ndarray,
    clus: pd.Series,
    piece_panels: Mapping[str, Panel],
    outcome: str,
    fit_fn: Any,
    options: dict,
    rng: np.random.Generator,
    alpha: float,
) -> dict[str, np.ndarray]:
    """Refit a registry estimator on relabelled resampled panels (one row per draw)."""
    clus_s = clus.astype(str)
    out: dict[str, list[float]] = {}
    for draw in counts:
        for name, pp in piece_panels.items():
            data = _relabel(pp.data, clus_s, draw, labels)
            try:
                sub = _panel_from(data, pp)
                att, tot, _ = _base_att(fit_fn, sub, outcome, options, rng, alpha)
                n: float = _n_target(sub, outcome)
            except ZoneImpactError:
                att = tot = n = np.nan
            out.setdefault(name, []).append(att)
            out.setdefault(name + "_total", []).append(tot)
            out.setdefault(name + "_n", []).append(n)
    return {k: np.asarray(v, float) for k, v in out.items()}


def _add_sdid(
    result: SpilloverResult, rp: Panel, outcome: str, rng: np.random.Generator, alpha: float
) -> SpilloverResult:
    """Append ``net_region_sdid`` (SDID ATT on region totals x treated region-years)."""
    try:
        sdid = _get("synthetic_did")
        res = sdid(rp, outcome=outcome, rng=rng, alpha=alpha)
    except ZoneImpactError as exc:
        return replace(result, info={**result.info, "net_region_sdid_note": str(exc)})
    d = rp.data
    n_target = int(((d["time"] >= d["cohort"]) & d[outcome].notna()).sum())
    row = terms_frame(["net_region_sdid"], [res.coef("att") * n_target], [res.se * n_target])
    terms = pd.concat([result.terms, row], ignore_index=True)
    return replace(result, terms=terms)
