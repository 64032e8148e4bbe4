"""Result objects shared by every estimator.

Estimators return an :class:`EstimationResult` (or a subclass carrying estimator-specific
pieces such as ``att_gt`` or ``donor_weights``). Results are immutable: inference methods
that change the standard errors return a *new* result (the linearmodels convention), and
tables, plots and run directories only read them.

The coefficient table ``terms`` has one row per reported number, keyed by ``term``:
``att`` for an overall effect, ``event:E``, ``cohort:G``, ``calendar:T`` for aggregations,
``weight:DONOR`` for synthetic-control donor weights, or a regression coefficient name.
"""

from __future__ import annotations

import fnmatch
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, overload

import numpy as np
import pandas as pd
from scipy import stats

from . import _maketables
from .errors import SpecError, ZoneImpactError

TERM_COLUMNS = ("term", "estimate", "se")


class TermError(ZoneImpactError, KeyError):
    """A result has no term of that name (the message lists the terms it has)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------- option checks
# Every estimator's ``fit`` checks its options here, once, before any work: a value of the
# wrong type or out of range is a SpecError naming the option, the value received and what
# is allowed (the option names are the spec's names, so the same message serves a notebook
# and a run spec).


def _shown(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """``alpha`` as a float in the open interval (0, 1), else a :class:`SpecError`."""
    if (
        isinstance(alpha, bool | np.bool_)
        or not isinstance(alpha, numbers.Real)
        or not 0 < float(alpha) < 1
    ):
        example = ", e.g. 0.05 for 95% intervals" if name == "alpha" else ""
        raise SpecError(f"{name} must be a number in (0, 1){example}; received {_shown(alpha)}.")
    return float(alpha)


def band_alpha(result: Any) -> float:
    """The level (alpha) a result's stored uniform bands were computed at (duck-typed:
    ``info["band_alpha"]``, else the result's ``alpha``, else 0.05)."""
    info = getattr(result, "info", None) or {}
    return float(info.get("band_alpha", getattr(result, "alpha", 0.05)))


def intervals_alpha(result: Any) -> float:
    """The level (alpha) of a result's ``prediction_intervals`` (duck-typed:
    ``info["intervals_alpha"]``, else the result's ``alpha``, else 0.05)."""
    info = getattr(result, "info", None) or {}
    return float(info.get("intervals_alpha", getattr(result, "alpha", 0.05)))


#: ``info`` keys that record the level of intervals or bands computed at another level than
#: the result's (:meth:`EstimationResult.with_terms`); an inference that recomputes them
#: at the result's level drops the records (:func:`without_level_records`)
LEVEL_RECORDS = ("ci_alpha", "band_alpha")


def without_level_records(info: Mapping[str, Any]) -> dict[str, Any]:
    """``info`` without :data:`LEVEL_RECORDS`, for an inference that recomputes the
    intervals and bands at the result's own level."""
    return {k: v for k, v in info.items() if k not in LEVEL_RECORDS}


@overload
def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    none: Literal[False] = False,
) -> int: ...
@overload
def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    none: bool,
) -> int | None: ...
def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    none: bool = False,
) -> int | None:
    """A whole number (``3`` or ``3.0``; not ``True``, ``"3"`` or ``3.5``) within the
    bounds, as an int; ``None`` passes when ``none``."""
    if value is None and none:
        return None
    ok = not isinstance(value, bool | np.bool_) and (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
    )
    if ok:
        v = int(value)
        ok = (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
    if not ok:
        bounds = (
            f" between {minimum} and {maximum}"
            if minimum is not None and maximum is not None
            else f" >= {minimum}"
            if minimum is not None
            else f" <= {maximum}"
            if maximum is not None
            else ""
        )
        raise SpecError(
            f"{name} must be a whole number{bounds}{' or None' if none else ''}; received "
            f"{_shown(value)}."
        )
    return int(value)


@overload
def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    none: Literal[False] = False,
) -> float: ...
@overload
def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    none: bool,
) -> float | None: ...
def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    none: bool = False,
) -> float | None:
    """A finite real number (``>= minimum``, ``> 0`` when ``positive``) as a float."""
    if value is None and none:
        return None
    ok = (
        not isinstance(value, bool | np.bool_)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
    )
    if ok:
        v = float(value)
        ok = (minimum is None or v >= minimum) and (not positive or v > 0)
    if not ok:
        rule = " > 0" if positive else f" >= {minimum:g}" if minimum is not None else ""
        raise SpecError(
            f"{name} must be a finite number{rule}{' or None' if none else ''}; received "
            f"{_shown(value)}."
        )
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    """``True`` or ``False`` (a string such as ``"false"`` would be true: refused)."""
    if not isinstance(value, bool | np.bool_):
        raise SpecError(f"{name} must be true or false; received {_shown(value)}.")
    return bool(value)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """One of ``choices`` (compared by equality; unhashable values are refused too)."""
    if not any(type(value) is type(c) and value == c for c in choices):
        allowed = ", ".join(repr(c) for c in choices)
        raise SpecError(f"{name} must be one of {allowed}; received {_shown(value)}.")
    return value


def check_names(value: Any, name: str, *, none: bool = True) -> list[Any]:
    """A list of column (or unit) names: one name (a string) counts as a list of one."""
    if value is None and none:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence | np.ndarray | pd.Index | pd.Series | set | frozenset):
        return list(value)
    raise SpecError(
        f"{name} must be a name or a list of names; received {_shown(value)} "
        f"({type(value).__name__})."
    )


def check_fit_arguments(
    panel: Any,
    outcome: Any,
    *,
    alpha: Any = 0.05,
    n_jobs: Any = 1,
    rng: Any = None,
    estimator: str = "this estimator",
) -> None:
    """Check the arguments every ``fit`` shares (see ``docs/DEVELOPING.md``).

    ``panel`` must be a :class:`~zoneimpact.panel.Panel` holding ``outcome``; ``alpha`` a
    number in (0, 1); ``n_jobs`` a whole number other than 0 (``-1``: every core);
    ``rng`` None, a seed (whole number >= 0), a ``numpy.random.Generator``, ``BitGenerator``
    or ``SeedSequence``.

    Raises
    ------
    ZoneImpactError
        A :class:`~zoneimpact.errors.SpecError` or
        :class:`~zoneimpact.errors.PanelError` naming the argument and the value.
    """
    from .panel import Panel

    if not isinstance(panel, Panel):
        raise SpecError(
            f"{estimator} needs a zoneimpact Panel; received {type(panel).__name__}. Build one "
            "with Panel.from_frame(df, unit=..., time=..., outcomes=..., cohort=...)."
        )
    panel._check_outcome(outcome)
    check_alpha(alpha)
    if check_int(n_jobs, "n_jobs") == 0:
        raise SpecError("n_jobs must be a whole number >= 1, or -1 for every core; received 0.")
    if not (
        rng is None
        or isinstance(rng, np.random.Generator | np.random.BitGenerator | np.random.SeedSequence)
    ):
        check_int(rng, "rng (a seed)", minimum=0)


@dataclass(frozen=True)
class EstimationResult:
    """Estimates with their standard errors, read-only.

    Parameters
    ----------
    estimator : str
        Registry name of the estimator (``"twfe"``, ``"callaway_santanna"``...).
    outcome : str
        Outcome column.
    terms : pandas.DataFrame
        Columns ``term``, ``estimate``, ``se`` and optionally ``band_low``/``band_high``
        (simultaneous confidence band) and ``df`` (degrees of freedom for t-based CIs).
    main_term : str
        The headline term reported by :attr:`estimate` and :attr:`se`.
    n_units, n_obs : int
        Units and observations used.
    vcov : numpy.ndarray or pandas.DataFrame, optional
        Covariance of the estimates in ``terms`` order (where available). Stored and
        returned as a DataFrame labelled by term on both axes (linearmodels' and
        pyfixest's ``vcov``); a matrix of another size than ``terms`` is an error.
    info : dict
        Settings and diagnostics worth reporting (control group, clusters, fixed
        effects, pre-trend p-value, ...). Shown by :meth:`glance`.
    """

    estimator: str
    outcome: str
    terms: pd.DataFrame
    main_term: str = "att"
    n_units: int = 0
    n_obs: int = 0
    vcov: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    alpha: float = 0.05

    #: Terms (fnmatch patterns) whose value does not change when the outcome is multiplied
    #: by a constant (donor weights, shares, semi-elasticities); see :meth:`rescaled`.
    SCALE_FREE_TERMS: ClassVar[tuple[str, ...]] = ()
    #: Fields holding outcome-scaled numbers: field -> power of the scale (whole Series,
    #: array or every numeric column of a frame), or a dict column -> power ("*" for the
    #: other numeric columns).
    SCALED_FIELDS: ClassVar[dict[str, Any]] = {}
    #: ``info`` entries that scale with the outcome: key -> power, or for a tuple entry a
    #: tuple of powers, one per element.
    SCALED_INFO: ClassVar[Mapping[str, int | tuple[int, ...]]] = {}
    #: whether the result recomputes its stored ``ci_low``/``ci_high`` at its own level
    #: when built (e.g. the spillover share's Fieller set), so that :meth:`with_terms`
    #: at another level need not record the old one
    RELEVELS_INTERVALS: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        missing = [c for c in TERM_COLUMNS if c not in self.terms.columns]
        if missing:
            raise ZoneImpactError(f"Result terms lack column(s) {missing}.")
        if self.terms["term"].duplicated().any():
            dup = self.terms.loc[self.terms["term"].duplicated(), "term"].iloc[0]
            raise ZoneImpactError(f"Result has the term {dup!r} twice.")
        # private copies: the caller's frames and dicts stay theirs (see __getattribute__)
        object.__setattr__(self, "terms", self.terms)  # read through __getattribute__: a copy
        object.__setattr__(self, "info", dict(self.info))
        if self.vcov is not None:
            object.__setattr__(self, "vcov", _labelled_vcov(self.vcov, self.terms["term"]))
        for f in fields(self):
            # building blocks kept for aggregate / with_inference (the compare=False
            # fields: CS's GroupTime, InfluenceBlocks...) pass through __getattribute__ as
            # they are: their arrays become read-only views here, so they cannot be changed
            # through the result
            if not f.compare:
                _freeze_blocks(object.__getattribute__(self, f.name))

    if not TYPE_CHECKING:  # hidden from mypy, which would type every attribute as Any

        def __getattribute__(self, name: str) -> Any:
            # Deep immutability: a field holding a frame, array or dict is handed out as a copy
            # (frames), a read-only view (arrays) or a read-only mapping (dicts), so that
            # ``res.terms.loc[0, "se"] = 0`` or ``res.info["cluster"] = "x"`` cannot change the
            # result; new results come from ``replace`` (aggregate, with_inference, rescaled).
            value = object.__getattribute__(self, name)
            if name[0] == "_" or not isinstance(value, _CONTAINERS):
                return value
            if name not in _field_names(type(self)):
                return value
            return read_only(value)

    # ------------------------------------------------------------------ headline
    def _row(self, term: str) -> pd.Series:
        hit = self.terms.loc[self.terms["term"] == term]
        if hit.empty:
            raise TermError(f"No term {term!r}; terms are {self.terms['term'].tolist()}.")
        return hit.iloc[0]

    @property
    def estimate(self) -> float:
        """The headline estimate (``main_term``)."""
        return float(self._row(self.main_term)["estimate"])

    @property
    def se(self) -> float:
        """Standard error of the headline estimate."""
        return float(self._row(self.main_term)["se"])

    def coef(self, term: str) -> float:
        return float(self._row(term)["estimate"])

    # ------------------------------------------------------------------ inference
    def _crit(self, alpha: float) -> np.ndarray:
        alpha = check_alpha(alpha)
        if "df" in self.terms.columns:
            df = self.terms["df"].to_numpy(dtype=float)
            return np.where(
                np.isfinite(df),
                stats.t.ppf(1 - alpha / 2, np.where(np.isfinite(df), df, 1)),
                stats.norm.ppf(1 - alpha / 2),
            )
        return np.full(len(self.terms), stats.norm.ppf(1 - alpha / 2))

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Pointwise confidence intervals, indexed by term."""
        alpha = self.alpha if alpha is None else alpha
        est = self.terms["estimate"].to_numpy(float)
        se = self.terms["se"].to_numpy(float)
        crit = self._crit(alpha)
        lower, upper = est - crit * se, est + crit * se
        stored_at = self.info.get("ci_alpha", self.alpha)
        if {"ci_low", "ci_high"} <= set(self.terms.columns) and alpha == stored_at:
            # intervals that are not estimate +- crit x se (wild bootstrap test inversion);
            # NaN marks a term without one, an infinite end an unbounded confidence set.
            # ``info["ci_alpha"]`` is the level they were inverted at, and they are read
            # at it only: a result rebuilt at another (``with_terms(..., alpha=)``) falls
            # back on estimate +- crit x se at its own level
            lo, hi = (self.terms[c].to_numpy(float) for c in ("ci_low", "ci_high"))
            lower = np.where(np.isnan(lo), lower, lo)
            upper = np.where(np.isnan(hi), upper, hi)
        return pd.DataFrame(
            {"lower": lower, "upper": upper},
            index=pd.Index(self.terms["term"], name="term"),
        )

    @property
    def params(self) -> pd.Series:
        """Estimates indexed by term (statsmodels/linearmodels ``params``)."""
        return pd.Series(
            self.terms["estimate"].to_numpy(float),
            index=pd.Index(self.terms["term"], name="term"),
            name="estimate",
        )

    @property
    def bse(self) -> pd.Series:
        """Standard errors indexed by term (statsmodels ``bse``)."""
        return pd.Series(
            self.terms["se"].to_numpy(float),
            index=pd.Index(self.terms["term"], name="term"),
            name="se",
        )

    @property
    def tvalues(self) -> pd.Series:
        """Estimate / standard error, indexed by term; where a term is tested otherwise
        (the terms' ``statistic`` column, e.g. the displacement share's Fieller test) that
        test's statistic: the one its p-value reads (after a wild bootstrap, the t the
        bootstrap studentises; its p-value then comes from the draws, not from t(df))."""
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = (self.params / self.bse).rename("statistic")
        if "statistic" in self.terms.columns:
            own = self.terms["statistic"].to_numpy(float)
            stat = stat.where(~np.isfinite(own), own)
        return stat

    @property
    def nobs(self) -> int:
        """Observations (unit-periods) used, as statsmodels' ``nobs``."""
        return int(self.n_obs)

    @property
    def vcov_frame(self) -> pd.DataFrame | None:
        """The same as :attr:`vcov` (kept for code written against 0.x)."""
        return self.vcov

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values indexed by term (t with the term's ``df`` where given,
        else normal), as statsmodels' ``pvalues``."""
        est = self.terms["estimate"].to_numpy(float)
        se = self.terms["se"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        if "df" in self.terms.columns:
            df = self.terms["df"].to_numpy(float)
            p = np.where(
                np.isfinite(df),
                2 * stats.t.sf(np.abs(z), np.where(np.isfinite(df), df, 1)),
                2 * stats.norm.sf(np.abs(z)),
            )
        else:
            p = 2 * stats.norm.sf(np.abs(z))
        if "p_value" in self.terms.columns:
            # p-values of a resampling test (wild cluster bootstrap) where the result has them
            boot = self.terms["p_value"].to_numpy(float)
            p = np.where(np.isfinite(boot), boot, p)
        return pd.Series(p, index=pd.Index(self.terms["term"], name="term"), name="p_value")

    def tidy(self, alpha: float | None = None) -> pd.DataFrame:
        """Broom-style table: one row per term with estimate, std_error, statistic,
        p_value, conf_low, conf_high (and band_low/band_high when a uniform band exists).
        """
        ci = self.conf_int(alpha)
        t = self.terms
        out = pd.DataFrame(
            {
                "term": t["term"].to_numpy(),
                "estimate": t["estimate"].to_numpy(float),
                "std_error": t["se"].to_numpy(float),
                "statistic": self.tvalues.to_numpy(),
                "p_value": self.pvalues.to_numpy(),
                "conf_low": ci["lower"].to_numpy(),
                "conf_high": ci["upper"].to_numpy(),
            }
        )
        for extra in ("band_low", "band_high"):
            if extra in t.columns:
                # a band is computed at one level (:attr:`band_alpha`): at another, none
                # is shown rather than the fit's beside intervals at the level asked for
                same = (self.alpha if alpha is None else alpha) == self.band_alpha
                out[extra] = t[extra].to_numpy(float) if same else np.nan
        return out

    def glance(self) -> pd.DataFrame:
        """One-row model summary: estimator, outcome, counts and the ``info`` scalars."""
        row: dict[str, Any] = {
            "estimator": self.estimator,
            "outcome": self.outcome,
            "n_units": self.n_units,
            "n_obs": self.n_obs,
        }
        row.update({k: v for k, v in self.info.items() if np.isscalar(v) or v is None})
        return pd.DataFrame([row])

    def summary(self) -> str:
        """A plain-text summary for the console."""
        head = f"{self.estimator} on {self.outcome}: {self.n_units} units, {self.n_obs} obs"
        scalars: dict[str, Any] = {k: v for k, v in self.info.items() if np.isscalar(v)}
        extras = ", ".join(f"{k}={v}" for k, v in scalars.items())
        body = self.tidy().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return "\n".join(x for x in (head, extras, body) if x)

    def __repr__(self) -> str:
        try:
            return f"<{type(self).__name__} {self.estimator} {self.outcome} {self.main_term}={self.estimate:.6g} (se {self.se:.4g})>"
        except KeyError:
            return f"<{type(self).__name__} {self.estimator} {self.outcome}>"

    def records(self, alpha: float | None = None) -> list[dict[str, Any]]:
        """One dict per term in the ``results.json`` schema (without the run's name).

        Missing numbers are None; an unbounded interval's end is ``"inf"`` / ``"-inf"``."""
        tidy = self.tidy(alpha)
        out = []
        for row in tidy.itertuples(index=False):
            out.append(
                {
                    "estimator": self.estimator,
                    "outcome": self.outcome,
                    "term": row.term,
                    "estimate": _num(row.estimate),
                    "se": _num(row.std_error),
                    "ci_low": _bound(row.conf_low),
                    "ci_high": _bound(row.conf_high),
                    "n_units": int(self.n_units),
                }
            )
        return out

    def artifacts(self) -> dict[str, pd.DataFrame]:
        """Tables beyond ``terms`` that a run directory saves as CSV (donor weights, time
        weights, placebo distributions, group-time effects...). Subclasses add theirs.
        """
        return {}

    def rescaled(self, factor: float) -> Self:
        """The result for the outcome multiplied by ``factor``.

        Estimates, standard errors and bands of outcome-scaled terms, the covariance, and
        the fields and ``info`` entries the class declares (:attr:`SCALED_FIELDS`,
        :attr:`SCALED_INFO`) are multiplied by the matching power of ``factor``;
        scale-free terms keep their values. Estimators use it to work on a rescaled copy
        of numerically extreme outcomes (``estimators._scale``) and report in the
        user's units. ``factor`` must be a finite number other than zero.
        """
        c = check_number(factor, "factor")
        if c == 0:
            raise SpecError("factor must be a finite number other than 0; received 0.")
        names = self.terms["term"].astype(str).to_numpy()
        free = np.array(
            [any(fnmatch.fnmatchcase(n, pat) for pat in self.SCALE_FREE_TERMS) for n in names],
            dtype=bool,
        )
        mult = np.where(free, 1.0, c)
        terms = self.terms.copy()
        for col in ("estimate", "se", "band_low", "band_high", "ci_low", "ci_high"):
            if col in terms.columns:
                terms[col] = terms[col].to_numpy(float) * mult
        terms["se"] = terms["se"].abs()
        if "statistic" in terms.columns:
            terms["statistic"] = terms["statistic"].to_numpy(float) * np.sign(mult)
        for lo, hi in (("band_low", "band_high"), ("ci_low", "ci_high")):
            if {lo, hi} <= set(terms.columns) and c < 0:
                # a negative factor turns an interval's ends around
                flip = mult < 0
                a, b = terms[lo].to_numpy(float), terms[hi].to_numpy(float)
                terms[lo], terms[hi] = np.where(flip, b, a), np.where(flip, a, b)
        changes: dict[str, Any] = {"terms": terms}
        if self.vcov is not None:
            # squared units: at outcome scales near 1e160 the covariance is not representable
            # and is inf (the SEs, in the outcome's units, stay exact)
            with np.errstate(over="ignore"):
                changes["vcov"] = self.vcov.to_numpy(float) * np.outer(mult, mult)
        for name, spec in self.SCALED_FIELDS.items():
            changes[name] = _scale_value(getattr(self, name), spec, c, name)
        if self.SCALED_INFO:
            info = dict(self.info)
            for key, power in self.SCALED_INFO.items():
                value = info.get(key)
                if isinstance(power, tuple) and isinstance(value, tuple | list):
                    info[key] = tuple(
                        float(v * _power(c, k)) for v, k in zip(value, power, strict=True)
                    )
                elif (
                    isinstance(power, int)
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    info[key] = float(value * _power(_factor_for(key, c), power))
            changes["info"] = info
        return replace(self, **changes)

    def with_terms(self, terms: pd.DataFrame, **changes: Any) -> EstimationResult:
        """A new result of the same type with other standard errors / terms.

        With ``alpha=`` another level, what was computed at the old one and cannot be
        recomputed here keeps that level on record, so tables, plots and ``tidy`` do not
        show it as the new level's: intervals in ``ci_low``/``ci_high``
        (``info["ci_alpha"]``), uniform bands (``info["band_alpha"]``,
        :attr:`band_alpha`) and prediction intervals (``info["intervals_alpha"]``).
        """
        new_alpha = changes.get("alpha", self.alpha)
        if new_alpha != self.alpha:
            info = dict(changes.get("info", self.info))
            if {"ci_low", "ci_high"} & set(terms.columns) and not self.RELEVELS_INTERVALS:
                info.setdefault("ci_alpha", self.alpha)
            if self._has_bands(terms):
                info.setdefault("band_alpha", self.alpha)
            if getattr(self, "prediction_intervals", None) is not None:
                info.setdefault("intervals_alpha", self.alpha)
            changes["info"] = info
        return replace(self, terms=terms, **changes)

    def _has_bands(self, terms: pd.DataFrame) -> bool:
        """Whether ``terms`` or a table of the result (e.g. ``att_gt``) holds a band."""
        tables = [terms, *(getattr(self, f.name) for f in fields(self) if f.name != "terms")]
        return any(isinstance(t, pd.DataFrame) and "band_low" in t.columns for t in tables)

    @property
    def band_alpha(self) -> float:
        """The level (alpha) the stored uniform bands were computed at: the result's own,
        unless it was rebuilt at another with :meth:`with_terms` (a band's bootstrap
        critical value is not kept for other levels)."""
        return band_alpha(self)

    # ------------------------------------------------------------------ maketables hooks
    # The plug-in format of maketables (PLUGIN_EXTRACTOR_FORMAT.md; maketables 0.2
    # ``extractors.PluginExtractor``): ``maketables.ETable([res1, res2])`` reads these as
    # it reads pyfixest models. Term names use "::" for ":" (pyfixest's ``i()`` level
    # convention), which ETable does not split as an interaction, and the labels below
    # make "event::0" print as "Event time=0". Donor weights are left out, as in our tables.
    @property
    def __maketables_coef_table__(self) -> pd.DataFrame:
        t = self.tidy(0.05)  # the columns are named ci95l/ci95u: always the 95% interval
        t = t.loc[~t["term"].astype(str).str.startswith("weight:")]
        return pd.DataFrame(
            {
                "b": t["estimate"].to_numpy(),
                "se": t["std_error"].to_numpy(),
                "p": t["p_value"].to_numpy(),
                "t": t["statistic"].to_numpy(),
                "ci95l": t["conf_low"].to_numpy(),
                "ci95u": t["conf_high"].to_numpy(),
            },
            index=pd.Index([str(x).replace(":", "::") for x in t["term"]], name="Coefficient"),
        )

    def __maketables_stat__(self, key: str) -> Any:
        from .labels import se_type_label

        if key == "se_type":
            return se_type_label(self) or None
        return {"N": self.n_obs, "n_units": self.n_units, **self.info}.get(key)

    @property
    def __maketables_depvar__(self) -> str:
        return self.outcome

    @property
    def __maketables_var_labels__(self) -> dict[str, str]:
        from .labels import term_label

        out = {"event": "Event time", "cohort": "Cohort", "calendar": "Period"}
        out.update({"unit": "Unit fixed effects", "period": "Period fixed effects"})
        out.update({str(t): term_label(str(t)) for t in self.terms["term"] if ":" not in str(t)})
        return out

    @property
    def __maketables_fixef_string__(self) -> str | None:
        from .labels import fixed_effects_label

        text = fixed_effects_label(self.info.get("fixed_effects"))
        return text.lower().replace(" + ", "+") if text else None

    @property
    def __maketables_vcov_info__(self) -> dict[str, Any]:
        from .labels import se_type_label

        return {"vcov_type": se_type_label(self) or None, "clustervar": self.info.get("cluster")}

    @property
    def __maketables_default_stat_keys__(self) -> list[str]:
        return ["N", "n_units", "n_clusters", "se_type"]

    @property
    def __maketables_stat_labels__(self) -> dict[str, str]:
        return {
            "N": "Observations",
            "n_units": "Units",
            "n_clusters": "Clusters",
            "se_type": "Standard errors",
        }


# maketables.ETable reads results through the hooks above (see zoneimpact/_maketables.py)
_maketables.install(EstimationResult)


_CONTAINERS = (pd.DataFrame, pd.Series, np.ndarray, dict, list)
_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


class ReadOnlyDict(dict[Any, Any]):
    """A dict whose values cannot be changed through it (a result's ``info``); its values
    are handed out read-only as well. Pickles and copies as a plain dict."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "A result's info is read-only; build a new result with dataclasses.replace(res, "
            "info={**res.info, ...})."
        )

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __getitem__(self, key: Any) -> Any:
        return read_only(dict.__getitem__(self, key))

    def get(self, key: Any, default: Any = None) -> Any:
        return read_only(dict.get(self, key, default))

    def values(self) -> Any:
        return [read_only(v) for v in dict.values(self)]

    def items(self) -> Any:
        return [(k, read_only(v)) for k, v in dict.items(self)]

    def copy(self) -> dict[Any, Any]:
        return dict(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


def read_only(value: Any) -> Any:
    """``value`` as nothing can change it through: frames and series copied, arrays as
    read-only views, dicts as :class:`ReadOnlyDict`, lists copied; anything else as is."""
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.copy()
    if isinstance(value, np.ndarray):
        view = value.view()
        view.flags.writeable = False
        return view
    if isinstance(value, ReadOnlyDict):
        return value
    if isinstance(value, dict):
        return ReadOnlyDict(value)
    if isinstance(value, list):
        return list(value)
    return value


def _labelled_vcov(vcov: Any, terms: pd.Series) -> pd.DataFrame:
    """``vcov`` as a DataFrame with the terms on both axes; a matrix that does not match
    the terms is refused rather than labelled with the wrong names."""
    v = np.array(vcov, dtype=float)
    if v.shape != (len(terms), len(terms)):
        raise ZoneImpactError(
            f"vcov has shape {v.shape} but the result has {len(terms)} terms "
            f"({', '.join(map(str, terms[:5]))}{'...' if len(terms) > 5 else ''}); pass the "
            "covariance of the terms, in their order."
        )
    idx = pd.Index(terms.to_numpy(), name="term")
    return pd.DataFrame(v, index=idx, columns=idx.rename(None))


def _is_magnitude(name: Any) -> bool:
    """Whether a column / field / info key named ``name`` holds a non-negative size (a
    standard error, standard deviation, RMSPE, noise level or penalty): it scales with
    ``|c|``, not ``c``."""
    if not isinstance(name, str):
        return False
    n = name.lower()
    return (
        n in ("se", "sd", "std_error", "std_err", "stderr")
        # SDID's noise level and ridge penalties, IFE/MC's penalty path
        or n in ("noise_level", "zeta_omega", "zeta_lambda", "lambda")
        or n.endswith(("_se", "_sd", "_std_error"))
        or n.startswith(("se_", "sd_"))
        or "rmspe" in n
    )


def _factor_for(name: Any, c: float) -> float:
    """The factor a quantity named ``name`` is multiplied by (to its power) when the
    outcome is multiplied by ``c``: ``|c|`` for sizes (:func:`_is_magnitude`), else ``c``."""
    return abs(c) if _is_magnitude(name) else c


#: suffixes of a column pair holding an interval's ends (``band_low``/``band_high``,
#: ``ci_low``/``ci_high``, ``conf_low``/``conf_high``, ``low``/``high``, ``lower``/``upper``)
_INTERVAL_ENDS = (("low", "high"), ("lower", "upper"))


def _interval_pairs(columns: Sequence[Any]) -> list[tuple[Any, Any]]:
    """The (lower end, upper end) column pairs of a table, matched by name."""
    cols = set(columns)
    out = []
    for col in columns:
        if not isinstance(col, str):
            continue
        for lo, hi in _INTERVAL_ENDS:
            if col.endswith(lo):
                partner = col[: len(col) - len(lo)] + hi
                if partner in cols:
                    out.append((col, partner))
    return out


def _scale_value(value: Any, spec: Any, c: float, name: Any = None) -> Any:
    """``value`` (frame, series, array, number or dict of results) with outcome-scaled
    parts multiplied by ``c ** power`` as ``spec`` says (see ``SCALED_FIELDS``).

    Sizes (standard errors, SDs, RMSPEs: :func:`_is_magnitude` of the column or field
    name) take ``|c| ** power``, and for ``c < 0`` the ends of each interval (column pairs
    ``*low``/``*high``, ``*lower``/``*upper``) that scaled by an odd power swap, so that
    a table's SEs stay non-negative and its intervals ordered, as a refit on ``c * y``
    gives them."""
    if value is None:
        return None
    if isinstance(value, EstimationResult) or (
        hasattr(value, "rescaled") and not isinstance(value, pd.DataFrame | pd.Series)
    ):
        # results and building blocks (e.g. CS's GroupTime) know which parts scale
        return value.rescaled(c)
    if isinstance(value, dict):
        return {k: _scale_value(v, spec, c, name) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        out = value.copy()
        numeric = [k for k in out.columns if pd.api.types.is_float_dtype(out[k].dtype)]
        powers: dict[Any, int] = {}
        for col in numeric:
            power = spec.get(col, spec.get("*", 0)) if isinstance(spec, dict) else spec
            if power:
                powers[col] = power
                out[col] = out[col] * _power(_factor_for(col, c), power)
        if c < 0:
            # a negative factor turns an interval's ends around
            for lo, hi in _interval_pairs(list(out.columns)):
                if powers.get(lo, 0) % 2 == 1 and powers.get(hi, 0) % 2 == 1:
                    out[lo], out[hi] = out[hi].copy(), out[lo].copy()
        return out
    if isinstance(value, (pd.Series, np.ndarray)):
        return value * _power(_factor_for(name, c), spec)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value * _power(_factor_for(name, c), spec))
    return value


def _freeze_blocks(value: Any, _seen: set[int] | None = None) -> None:
    """Make the arrays a kept building block (a dataclass instance other than a result or
    panel: CS's ``GroupTime``, ``InfluenceBlocks``...) holds read-only views, in place,
    with its nested blocks too; arrays in tuples or lists (cluster labels) as well. Views:
    no data is copied, and whoever built the block keeps their own array writable."""
    from .panel import Panel  # the user's panel is theirs (and holds frames, not arrays)

    if not is_dataclass(value) or isinstance(value, type | EstimationResult | Panel):
        return
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return
    seen.add(id(value))
    for f in fields(value):
        item = object.__getattribute__(value, f.name)
        if isinstance(item, np.ndarray):
            frozen: Any = _read_only_array(item)
        elif isinstance(item, tuple | list) and any(isinstance(v, np.ndarray) for v in item):
            views = [_read_only_array(v) if isinstance(v, np.ndarray) else v for v in item]
            if type(item) in (tuple, list):
                frozen = type(item)(views)
            elif hasattr(item, "_make"):  # a named tuple keeps its type
                frozen = item._make(views)
            else:
                continue
        else:
            _freeze_blocks(item, seen)
            continue
        if frozen is not item:
            object.__setattr__(value, f.name, frozen)


def _read_only_array(a: np.ndarray) -> np.ndarray:
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def _power(c: float, power: int) -> np.float64:
    """``c ** power`` in numpy floats: a square past 1e308 is inf, as the true value is."""
    with np.errstate(over="ignore"):
        return np.float64(c) ** power


def _num(x: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    x = float(x)
    return x if math.isfinite(x) else None


def _bound(x: float) -> float | str | None:
    """JSON-safe interval end: an unbounded confidence set's end (Fieller's for the
    displacement share where the direct total is not significant) is ``"inf"`` /
    ``"-inf"``, which ``float()`` in Python and ``as.numeric()`` in R read back; None stays
    for an end that was not computed (NaN)."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return _num(x)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile with ``df`` degrees of freedom, the normal's where ``df`` is
    infinite or unknown (NaN)."""
    return float(stats.t.ppf(p, df) if math.isfinite(df) else stats.norm.ppf(p))


def verdict_df(result: EstimationResult, term: str) -> float:
    """Degrees of freedom of the t reference a verdict on ``term`` uses.

    The term's own ``df`` where the result gives a finite one (Bell-McCaffrey, BM). Else, for
    a cluster-robust SE, ``G - 1``: ``G = info["n_clusters"]``, or the number of units for an
    influence-function SE that is not clustered (``info["cluster"]`` None: each unit its own
    cluster). That is the reference for a cluster-robust t with few clusters (Cameron &
    Miller 2015, "A practitioner's guide to cluster-robust inference", Section VI.D; Bester,
    Conley & Hansen 2011); clustered two ways, ``G`` is the smaller dimension's count (the
    estimators' ``n_clusters``; fixest's rule). Conley's spatial HAC and results without a
    cluster count (placebo or jackknife SEs of synthetic controls) keep their own reference,
    the normal where they give none. An estimator's own intervals keep its peer's
    convention (R ``did`` prints normal ones); only a claim's verdict reads this. A term
    the result names in ``info["t_reference_terms"]`` (the spillover's exact t reference)
    keeps its df when infinite too: that reference's normal, where its critical value is
    below the normal's (t(G - 1) there would widen the lighter-tailed law's interval).
    """
    t = result.terms.set_index("term")
    own = float(t.at[term, "df"]) if "df" in t.columns else math.nan
    exact = str(result.info.get("t_reference_terms", "")).split(", ")
    if math.isfinite(own) or (own == math.inf and term in exact):
        return own
    g = cluster_count(result)
    return math.inf if g is None else g - 1.0


def cluster_count(result: EstimationResult) -> int | None:
    """The number of clusters ``G`` behind a result's cluster-robust covariance:
    ``info["n_clusters"]``, or the number of units for an influence-function covariance
    that is not clustered (``info["cluster"]`` None); None for Conley's spatial HAC and
    results without a cluster count (placebo or jackknife SEs), and below two."""
    info = result.info
    if str(info.get("cluster") or "").startswith("Conley"):
        return None
    g = info.get("n_clusters")
    if g is None and "cluster" in info and info["cluster"] is None:
        g = result.n_units
    if isinstance(g, numbers.Real) and not isinstance(g, bool):
        n = float(g)
        if math.isfinite(n) and n >= 2:
            return int(n)
    return None


def terms_frame(terms: list[str], estimate: Any, se: Any, **extra: Any) -> pd.DataFrame:
    """Build a ``terms`` table from parallel arrays."""
    data = {
        "term": list(terms),
        "estimate": np.asarray(estimate, float),
        "se": np.asarray(se, float),
    }
    for k, v in extra.items():
        data[k] = np.asarray(v, float)
    return pd.DataFrame(data)
