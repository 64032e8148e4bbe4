"""Placebo inference for synthetic controls (Abadie, Diamond & Hainmueller 2010, Section 4).

- **In-space placebos** (ADH 2010, Section 4.2 and Figures 4-7): every donor in turn is
  treated as if it had been treated, with the other donors as its pool, and its gaps are
  computed by the same procedure (nested V for each). :func:`in_space` runs them through
  :func:`zoneimpact.parallel.replicate`, so ``n_jobs`` parallelises and the result does not
  depend on it.
- **RMSPE ratios and the permutation p-value** (ADH 2010, Figure 8; Abadie, Diamond &
  Hainmueller 2015, Section 4): post/pre root mean squared prediction error of each unit;
  the p-value is the treated unit's rank among all units, ``rank / N`` (ties counted
  against the treated unit). :func:`rmspe_table` and :func:`permutation_p`; optionally
  placebos whose pre-period MSPE exceeds ``drop_ratio`` times the treated unit's are
  excluded first (ADH 2010, Figures 5-7 use 20, 5 and 2).
- **In-time placebos** (ADH 2015, Section 4): a fake treatment date before the real one.
- **Leave-one-out donors** (ADH 2015, Section 4): re-fit without each donor with weight.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..parallel import replicate


def in_space(
    fit_one: Callable[[Any, np.random.Generator], pd.Series],
    units: Sequence[Any],
    *,
    rng: np.random.Generator | int | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Gaps of every placebo unit.

    Parameters
    ----------
    fit_one : callable
        ``fit_one(unit, rng)`` returns that unit's gap path (Series by period), fitted with
        ``unit`` as treated and the other donors as the pool.
    units : sequence
        Placebo units (the donors).
    rng, n_jobs
        Passed to :func:`~zoneimpact.parallel.replicate`.

    Returns
    -------
    DataFrame
        Periods x units.
    """
    paths = replicate(fit_one, list(units), rng=rng, n_jobs=n_jobs, desc="SC placebos")
    out = pd.concat(paths, axis=1)
    out.columns = list(units)
    return out


def rmspe_table(gaps: pd.DataFrame, pre: np.ndarray, post: np.ndarray) -> pd.DataFrame:
    """Pre- and post-period RMSPE and their ratio for every column of ``gaps``.

    ``pre`` / ``post`` are boolean masks over the rows (periods).
    """
    g = gaps.to_numpy(float)
    pre_r = np.sqrt(np.mean(g[pre] ** 2, axis=0))
    post_r = np.sqrt(np.mean(g[post] ** 2, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = post_r / pre_r
    return pd.DataFrame(
        {"pre_rmspe": pre_r, "post_rmspe": post_r, "ratio": ratio},
        index=pd.Index(gaps.columns, name="unit"),
    )


def permutation_p(
    table: pd.DataFrame, treated: Any, *, drop_ratio: float | None = None
) -> tuple[float, pd.DataFrame]:
    """Permutation p-value of the treated unit's post/pre RMSPE ratio.

    ``p = #{units with ratio >= treated's} / N`` over the treated unit and the retained
    placebos (ADH 2010, Figure 8; ADH 2015). With ``drop_ratio = k`` placebos whose
    pre-period MSPE exceeds ``k`` times the treated unit's are dropped first (ADH 2010,
    Figures 5-7).

    Returns
    -------
    p_value : float
    table : DataFrame
        The input with columns ``rank`` (1 = largest ratio) and ``kept``.
    """
    t = table.copy()
    kept = np.ones(len(t), dtype=bool)
    if drop_ratio is not None:
        mspe = t["pre_rmspe"].to_numpy() ** 2
        kept = mspe <= drop_ratio * float(t.loc[treated, "pre_rmspe"]) ** 2
        kept[t.index.get_loc(treated)] = True
    t["kept"] = kept
    r = t.loc[kept, "ratio"]
    t["rank"] = np.nan
    t.loc[kept, "rank"] = r.rank(ascending=False, method="min")
    undefined = [u for u in r.index[r.isna().to_numpy()]]
    if undefined:
        # 0/0: a unit fitted exactly before and after (a donor that duplicates another).
        # Counted as at least as extreme as the treated unit, and a treated 0/0 (no gap at
        # all) gives p = 1, so the p-value stays a valid permutation p-value (>= 1/N);
        # dropped from the count it was 0 with no effect at all (a breaker's check)
        warnings.warn(
            f"The post/pre RMSPE ratio is 0/0 for {len(undefined)} unit(s) (first "
            f"{undefined[0]!r}: no gap before or after); they count as at least as extreme "
            "as the treated unit in the permutation p-value.",
            stacklevel=3,
        )
    if len(r) == 1 and len(t) > 1:
        warnings.warn(
            f"drop_ratio={drop_ratio} leaves no placebo (the treated unit's pre-period fit is "
            f"{float(t.loc[treated, 'pre_rmspe']):.3g}), so the p-value is 1 by construction; "
            "raise drop_ratio.",
            stacklevel=3,
        )
    own = float(r.loc[treated])
    if np.isnan(own):
        p = 1.0
    else:
        others = r.drop(index=treated)
        p = float((1 + (others >= own).sum() + others.isna().sum()) / len(r))
    return p, t


def leave_one_out(
    fit_without: Callable[[Any, np.random.Generator], pd.Series],
    donors: Sequence[Any],
    *,
    rng: np.random.Generator | int | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Synthetic paths re-fitted without each donor in ``donors`` (periods x dropped donor)."""
    paths = replicate(fit_without, list(donors), rng=rng, n_jobs=n_jobs, desc="SC leave-one-out")
    out = pd.concat(paths, axis=1)
    out.columns = list(donors)
    return out
