"""Exposure maps: which non-zone units are neighbours of a zone, and from when.

A development zone can pull activity from nearby places (displacement, "concentration")
or push activity to them (agglomeration spillovers). Either way the neighbours of a zone
are no longer valid controls: keeping them biases the usual DiD (Clarke 2017, "Estimating
difference-in-differences in the presence of spillovers", MPRA 81604, Section 2; Butts
2021, "Difference-in-differences estimation with spatial spillovers", arXiv:2105.03737,
Section 3). An :class:`ExposureMap` records for every unit its role,

* ``direct``: a zone unit (finite cohort);
* ``exposed``: a non-zone unit near a zone, with its *exposure onset*, the year the first
  zone within the map opens, and a *ring* label (distance band, ``adjacent`` or
  ``region``);
* ``clean``: neither a zone nor ever exposed.

and :meth:`ExposureMap.panels` turns it into the panels of Butts' "ring" DiD: a *direct*
panel (zone units against clean controls) and one *spillover* panel per ring (exposed
units, treated from their exposure onset, against the same clean controls).

Rules (documented choices)
--------------------------
* **Ring of an exposed unit** = the ring of its *closest* zone (ever); its exposure onset
  is the earliest opening among *all* zones within the map (the outermost ring), because
  from that year on it is no longer a clean control whatever its ring.
* **Zone units exposed before their own zone opens** (a neighbour opened earlier) are
  recorded with ``exposure_onset < cohort``. They stay ``direct`` units; the periods
  ``exposure_onset <= t < cohort`` are contaminated (neither treated nor clean), so
  :meth:`ExposureMap.panels` drops those rows by default (``pre_exposed="drop_rows"``),
  which also removes them from the not-yet-treated comparisons. ``"drop_units"`` removes
  such units altogether; ``"keep"`` ignores the issue.
* **Controls**: ``controls="never_exposed"`` keeps only units that are never zones and
  never exposed. ``controls="not_yet_exposed"`` (default) also keeps the rows of exposed
  units *before* their exposure onset as untreated rows (cohort ``inf``), the spatial
  analogue of not-yet-treated controls; panels are then unbalanced, which imputation and
  regression estimators handle directly.

Why by hand: no maintained Python package builds exposure maps for staggered zone
openings; the work is a few vectorised distance and group computations.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .errors import GeographyError, PanelError
from .geo import haversine_km
from .panel import Panel, _v

__all__ = [
    "ExposureMap",
    "build_exposure",
    "exposure_from_adjacency",
    "exposure_from_knn",
    "exposure_from_onsets",
    "exposure_from_region",
    "exposure_from_rings",
]

Controls = Literal["not_yet_exposed", "never_exposed"]
PreExposed = Literal["drop_rows", "drop_units", "keep"]


def _link_weights(
    weights: pd.Series | None, units: pd.Index, zones: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """The weights of a map's linked units and of its zones for
    :meth:`ExposureMap.intensity` (ones without ``weights``; the mean weight where the
    Series has none)."""
    if weights is None:
        return np.ones(len(units)), np.ones(len(zones))
    if not isinstance(weights, pd.Series):
        raise TypeError(
            "Exposure intensity weights must be a pandas Series indexed by unit; got "
            f"{type(weights).__name__}."
        )
    w = weights.astype(float)
    bad = ~(np.isfinite(w.to_numpy()) & (w.to_numpy() > 0))
    if w.empty or bad.any():
        got = "none" if w.empty else repr(float(w[bad].iloc[0]))
        where = "" if w.empty else f" (unit {_v(w.index[bad][0])!r})"
        raise ValueError(
            f"Exposure intensity weights must be positive and finite; got {got}{where}."
        )
    spread = w.groupby(level=0).agg(["min", "max"])
    split = spread.index[(spread["max"] > spread["min"]).to_numpy()]
    if len(split):
        raise ValueError(
            f"Exposure intensity weights give unit {_v(split[0])!r} two weights "
            f"({float(spread.at[split[0], 'min'])!r} and {float(spread.at[split[0], 'max'])!r}); "
            "one per unit."
        )
    w = w[~w.index.duplicated()]
    if not w.index.isin(units).any():
        raise ValueError(
            "Exposure intensity weights hold none of the map's linked units (their index "
            f"should be the unit ids, e.g. {_v(units[0])!r}; got e.g. {_v(w.index[0])!r})."
        )
    mean = float(w.mean())
    return (
        w.reindex(units).fillna(mean).to_numpy(float),
        w.reindex(zones).fillna(mean).to_numpy(float),
    )


@dataclass(frozen=True)
class ExposureMap:
    """Roles, exposure onsets and rings of every unit of a panel.

    Attributes
    ----------
    kind : str
        ``"adjacency"``, ``"rings"``, ``"knn"``, ``"region"`` or ``"onsets"``.
    table : pandas.DataFrame
        Indexed by unit: ``role`` (``direct``/``exposed``/``clean``), ``cohort`` (zone
        year, ``inf`` = never), ``exposure_onset`` (first year a zone within the map
        opens, ``inf`` = never; for zone units only zones *other* than their own count),
        ``ring`` (label of the closest zone's ring; empty for clean units), ``distance_km``
        (to the closest zone within the map, NaN when not measured).
    rings : tuple of str
        Ring labels, inner first.
    settings : dict
        The builder's arguments (for reports).
    links : pandas.DataFrame or None
        Every (``unit``, ``zone``) pair of the map with the zone's opening period
        ``zone_cohort`` (zones outside the panel included); None for maps built from
        onsets alone. :meth:`intensity` reads it.
    """

    kind: str
    table: pd.DataFrame
    rings: tuple[str, ...]
    settings: dict = field(default_factory=dict)
    links: pd.DataFrame | None = None

    # ------------------------------------------------------------------ summaries
    @property
    def onset(self) -> pd.Series:
        """Exposure onset by unit (``inf`` = never exposed)."""
        return self.table["exposure_onset"]

    def pre_exposed_units(self) -> list:
        """Zone units exposed to another zone before their own zone opened."""
        t = self.table
        hit = (t["role"] == "direct") & (t["exposure_onset"] < t["cohort"])
        return t.index[hit.to_numpy()].tolist()

    def intensity(
        self,
        units: Sequence[Any] | np.ndarray | pd.Index,
        periods: Sequence[Any] | np.ndarray,
        counted: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
    ) -> pd.DataFrame:
        """Exposure intensity of the equal-split displacement model, units x periods.

        If every open zone ``z`` draws (or sheds) the same amount from each unit of the
        map that is not yet a zone itself, a unit's spillover at ``t`` is proportional to

            intensity_it = sum over zones z open at t and linked to i of 1 / n_z(t),

        with ``n_z(t)`` the number of ``z``'s linked units that are not zones at ``t``
        (the link matrix standardised by zone: each open zone's links sum to one). A zone
        unit's own zone does not count; 0 where no zone is open.
        :func:`zoneimpact.estimators.spillover.fit` makes BJS's auxiliary ``tau~``
        proportional to it within a cell (``aux_partition``). ``counted`` (zones x
        ``periods``, booleans) keeps only the open zones marked True in each period (a zone
        it does not list counts nowhere); ``n_z(t)`` is unchanged, so it gives a subset's
        part of the same split.

        With unit ``weights`` (a Series indexed by unit, e.g. population) the split is of
        weighted totals, as the weighted estimands count them: each open zone's weighted
        gain ``m_z g`` is drawn from its linked non-zone units in proportion to their
        weights, so a unit's per-weight spillover is proportional to

            intensity_it = sum over zones z open at t and linked to i of m_z / M_z(t),

        ``M_z(t)`` the summed weight of ``z``'s linked units that are not zones at ``t``.
        Equal weights give the unweighted intensity, and rescaling them changes nothing. A
        unit or zone the Series does not hold (e.g. a zone outside the panel) counts at its
        mean weight. A weighted :func:`~zoneimpact.estimators.spillover.fit` tries ``tau~``
        proportional to this one as well as to the unweighted one.

        Raises
        ------
        GeographyError
            When the map has no links (built by :func:`exposure_from_onsets` or on a grid).
        TypeError
            When ``weights`` is not a pandas Series.
        ValueError
            When ``weights`` holds a value that is not positive and finite, two weights
            for one unit, or none of the map's linked units.
        """
        if self.links is None:
            raise GeographyError(
                f"This {self.kind!r} exposure map has no unit-zone links (built from onsets "
                "or on a grid), so its exposure intensity is unknown."
            )
        t = np.asarray(periods, dtype=float)
        # one row per pair (a hand-built map may repeat one); sparse unit x zone links, so
        # memory grows with units + zones, not with links x periods
        lk = self.links.drop_duplicates(["unit", "zone"])
        idx = pd.Index(units)
        if lk.empty:
            return pd.DataFrame(0.0, index=idx, columns=pd.Index(periods))
        ucode, lunits = pd.factorize(lk["unit"])
        zcode, zones = pd.factorize(lk["zone"])
        A = sparse.csr_matrix((np.ones(len(lk)), (ucode, zcode)), shape=(len(lunits), len(zones)))
        own = self.table["cohort"].reindex(lunits).to_numpy(float)
        own = np.where(np.isnan(own), np.inf, own)
        not_zone = (own[:, None] > t[None, :]).astype(float)
        zc = lk.groupby(zcode)["zone_cohort"].first().to_numpy(float)
        open_zone = zc[:, None] <= t[None, :]
        m_unit, m_zone = _link_weights(weights, lunits, zones)
        n_z = np.asarray(A.T @ (not_zone * m_unit[:, None]))
        share = np.divide(open_zone * m_zone[:, None], n_z, out=np.zeros(n_z.shape), where=n_z > 0)
        if counted is not None:
            keep = counted.reindex(index=zones, columns=pd.Index(periods), fill_value=False)
            share = share * keep.to_numpy(bool)
        got = not_zone * np.asarray(A @ share)
        pos = pd.Index(lunits).get_indexer(idx)
        out = np.where((pos >= 0)[:, None], got[np.maximum(pos, 0)], 0.0)
        return pd.DataFrame(out, index=idx, columns=pd.Index(periods))

    def link_matrix(self, units: pd.Index, zones: pd.Index) -> sparse.csr_matrix:
        """The map's links as a 0/1 matrix, ``units`` x ``zones`` (sparse): 1 where the map
        links the unit to the zone. A unit's link to itself, and links to units or zones
        not among those given, are left out; a repeated link counts once.

        Raises
        ------
        GeographyError
            When the map has no links (built by :func:`exposure_from_onsets` or on a grid).
        """
        if self.links is None:
            raise GeographyError(
                f"This {self.kind!r} exposure map has no unit-zone links (built from onsets "
                "or on a grid)."
            )
        lk = self.links.drop_duplicates(["unit", "zone"])
        ui, zi = units.get_indexer(lk["unit"]), zones.get_indexer(lk["zone"])
        keep = (ui >= 0) & (zi >= 0) & (lk["unit"] != lk["zone"]).to_numpy()
        shape = (len(units), len(zones))
        return sparse.csr_matrix((np.ones(int(keep.sum())), (ui[keep], zi[keep])), shape=shape)

    def summary(self) -> pd.DataFrame:
        """Number of units by role and ring."""
        t = self.table.assign(ring=self.table["ring"].replace("", "-"))
        return t.groupby(["role", "ring"]).size().rename("n_units").reset_index()

    # ------------------------------------------------------------------ panels
    def sample_onset(self) -> pd.Series:
        """Exposure onset by unit counting only the zones of the estimation sample
        (``inf``: no such zone exposes it), ``e_est``.

        The zones of the sample are the map's own zone units (finite ``cohort`` in
        :attr:`table`); zones outside it (:attr:`Panel.sources`: zones of units outside the
        panel, and zone units dropped as always treated by ``outside_window="adjust"``, or
        zone units of the panel the map was built on that are not in ``table`` any more)
        expose units too, and set :attr:`onset`, but their own effect is estimated by no
        piece. From ``exposure_onset`` until ``e_est`` a unit's exposure comes only from
        such zones: :func:`zoneimpact.estimators.spillover.fit` keeps those unit-periods
        out of the losses it sets against the zones' gain (``spillover_from_sources``),
        and with them the later ones exposed only by zone units without an estimated gain
        then (its ``_source_only``: this onset is the rule when every zone unit of the
        sample has an estimated gain from its opening on). A
        map without links (built from onsets alone, or on a grid) knows no sources, and
        every exposure counts as the sample's (``e_est = exposure_onset``). Never earlier
        than ``exposure_onset``."""
        tab = self.table
        onset = tab["exposure_onset"].astype(float)
        if self.links is None or self.links.empty:
            return onset.rename("exposure_onset_sample")
        cohort = tab["cohort"].to_numpy(float)
        in_sample = tab.index[np.isfinite(cohort)]
        lk = self.links
        lk = lk[lk["zone"].isin(in_sample) & (lk["unit"] != lk["zone"])]
        first = lk.groupby("unit")["zone_cohort"].min()
        est = first.reindex(tab.index).astype(float).fillna(np.inf)
        return np.fmax(est, onset).rename("exposure_onset_sample")

    def roles_of(self, units: Any) -> pd.DataFrame:
        """The map's rows for ``units``, refusing a unit the map does not have (a map
        built from another panel), with ``exposure_onset_sample`` (:meth:`sample_onset`)
        added."""
        tab = self.table.reindex(units)
        if tab["role"].isna().any():
            u = tab.index[tab["role"].isna().to_numpy()][0]
            raise PanelError(
                f"Unit {u!r} of the panel is not in the exposure map; build the map from "
                "this panel."
            )
        return tab.assign(exposure_onset_sample=self.sample_onset().reindex(tab.index).to_numpy())

    def panels(
        self,
        panel: Panel,
        *,
        controls: Controls = "not_yet_exposed",
        pre_exposed: PreExposed = "drop_rows",
    ) -> tuple[Panel, dict[str, Panel]]:
        """Split a panel into the direct panel and one spillover panel per ring.

        Butts (2021, Section 3.2, the "ring" estimator; Clarke 2017, eq. 3): the direct
        effect compares zone units with clean controls; the spillover effect of ring ``r``
        compares units exposed in ring ``r`` — treated from their exposure onset — with
        the same clean controls. Zone units are dropped from the spillover panels.

        Parameters
        ----------
        panel : Panel
            The panel the map was built from.
        controls : {"not_yet_exposed", "never_exposed"}
            Whether exposed units contribute their pre-exposure rows as controls.
        pre_exposed : {"drop_rows", "drop_units", "keep"}
            Treatment of zone units exposed before their own zone opened (module notes).

        Returns
        -------
        direct : Panel
        spillover : dict of str to Panel
            Keyed by ring label, inner ring first (rings without exposed units omitted).
        """
        if controls not in ("not_yet_exposed", "never_exposed"):
            raise PanelError(
                f"controls={controls!r} is not allowed; use 'not_yet_exposed' or 'never_exposed'."
            )
        if pre_exposed not in ("drop_rows", "drop_units", "keep"):
            raise PanelError(
                f"pre_exposed={pre_exposed!r} is not allowed; use 'drop_rows', "
                "'drop_units' or 'keep'."
            )
        data = panel.data
        tab = self.roles_of(data["unit"].unique())
        unit = data["unit"].to_numpy()
        t = data["time"].to_numpy()
        role = tab["role"].reindex(unit).to_numpy()
        onset = tab["exposure_onset"].reindex(unit).to_numpy(float)
        ring = tab["ring"].reindex(unit).to_numpy()
        g = data["cohort"].to_numpy(float)

        zone = role == "direct"
        exposed = role == "exposed"
        clean = role == "clean"
        pre_rows = exposed & (t < onset)
        keep_nonzone = clean | (pre_rows if controls == "not_yet_exposed" else False)

        contaminated = zone & (t >= onset) & (t < g)
        if pre_exposed == "drop_rows":
            keep_zone = zone & ~contaminated
        elif pre_exposed == "drop_units":
            bad = set(self.pre_exposed_units())
            keep_zone = zone & ~np.isin(unit, list(bad))
        else:
            keep_zone = zone
        direct = _subpanel(panel, keep_zone | keep_nonzone, None)

        spill: dict[str, Panel] = {}
        for r in self.rings:
            in_ring = exposed & (ring == r)
            if not in_ring.any():
                continue
            other_pre = exposed & (ring != r) & pre_rows
            rows = in_ring | clean | (other_pre if controls == "not_yet_exposed" else False)
            cohort = np.where(in_ring, onset, np.inf)
            spill[r] = _subpanel(panel, rows, cohort)
        return direct, spill


def _subpanel(panel: Panel, rows: np.ndarray, cohort: np.ndarray | None) -> Panel:
    """A new panel with the selected rows (and a new cohort column), re-validated.

    With the zones' own cohorts (``cohort`` None) the subset keeps the panel's exposure
    :attr:`~Panel.sources` (zones outside the sample, e.g. those that predate the data)
    and their links to the units left: they still expose those units, so an exposure map
    built on a sample restricted by years (or any other row subset) sees them as the full
    panel's does; sources opening after the subset's last period are ignored by the map
    builders, as ever. Zone units whose cohort falls outside the subset's periods are
    handled as ``outside_window="adjust"`` handles them in :meth:`Panel.from_frame`: a
    zone opening after the subset's last period is a never-treated unit of the subset (it
    is untreated in every period kept and, like a source opening after the data, exposes
    nobody within them; it is listed in ``report["recoded_late_cohort"]``), and a zone
    opening in or before the subset's first period has no untreated period left, so it
    leaves the subset and becomes one more source (with its coordinates, region and
    adjacency links), listed with the parent's in ``report["dropped_always_treated"]``.
    A new ``cohort`` (an exposure onset) redefines the treatment, so the zones are no
    sources of it and are not carried (units exposed since before the first period become
    that panel's sources, as ``outside_window="adjust"`` makes them). Zone units the
    subset leaves out altogether are not added as sources.
    """
    df = panel.data.loc[rows].copy()
    if cohort is not None:
        df["cohort"] = cohort[rows]
    if df.empty:
        raise PanelError("The exposure split left an empty panel (no units in this group).")
    units = df["unit"].unique()
    geo = panel.geography
    geo = None if geo is None else geo.loc[geo.index.isin(units)].reset_index()
    adj = panel.adjacency
    if adj is not None:
        adj = adj[adj["unit"].isin(units) & adj["neighbour"].isin(units)]
    out = Panel.from_frame(
        df,
        unit="unit",
        time="time",
        cohort="cohort",
        outcomes=list(panel.outcomes),
        covariates=list(panel.covariates),
        geography=geo,
        adjacency=adj,
        never_values=(),
        # a ring unit exposed since before the first period (its zone predates the data)
        # has no unexposed period: it leaves the ring panel, as always-treated units do;
        # a zone outside a year-restricted subset's window is adjusted likewise (above)
        outside_window="adjust",
    )
    if cohort is None and panel.sources is not None:
        links = panel.source_links
        if links is not None:
            links = links[links["unit"].isin(out.units)]
        sources = panel.sources
        if out.sources is not None:
            # zones the subset's window leaves always treated join the parent's sources
            new = out.sources.loc[~out.sources.index.isin(sources.index)]
            sources = pd.concat([sources, new]) if len(new) else sources
            if out.source_links is not None and len(out.source_links):
                links = (
                    out.source_links
                    if links is None
                    else pd.concat([links, out.source_links]).drop_duplicates()
                )
        if links is not None:
            links = links.reset_index(drop=True)
        # the parent's always-treated zones, dropped and kept as sources, stay so here
        dropped = list(panel.report.get("dropped_always_treated", []))
        dropped += [u for u in out.report["dropped_always_treated"] if u not in dropped]
        report = {**out.report, "n_sources": int(len(sources)),
                  "dropped_always_treated": dropped}  # fmt: skip
        out = out.replace(sources=sources, source_links=links, report=report)
    return out.replace(names=dict(panel.names))


# ---------------------------------------------------------------------- builders
def _assemble(
    panel: Panel,
    kind: str,
    relation: pd.DataFrame,
    rings: Sequence[str],
    settings: dict,
) -> ExposureMap:
    """Turn a (unit, zone, ring, distance_km) relation into an :class:`ExposureMap`.

    ``relation`` lists every pair where ``zone`` is a zone unit within the map of
    ``unit`` (``unit != zone``); ``ring`` is the pair's ring label.
    """
    uc = panel.unit_cohort.astype(float)
    tab = pd.DataFrame({"cohort": uc})
    rel = relation[relation["unit"] != relation["zone"]].copy()
    rel["zone_cohort"] = _zone_cohorts(panel, stacklevel=3).reindex(rel["zone"]).to_numpy()
    rel = rel[np.isfinite(rel["zone_cohort"])]
    onset = rel.groupby("unit")["zone_cohort"].min()
    tab["exposure_onset"] = onset.reindex(tab.index).fillna(np.inf).astype(float)
    # ring of the closest zone: smallest distance, ties to the inner ring
    order = {r: k for k, r in enumerate(rings)}
    rel["ring_order"] = rel["ring"].map(order)
    closest = rel.sort_values(["unit", "distance_km", "ring_order"], na_position="last")
    closest = closest.drop_duplicates("unit").set_index("unit")
    tab["ring"] = closest["ring"].reindex(tab.index).fillna("").astype(str)
    tab["distance_km"] = closest["distance_km"].reindex(tab.index).astype(float)
    zone = np.isfinite(tab["cohort"].to_numpy())
    exposed = ~zone & np.isfinite(tab["exposure_onset"].to_numpy())
    tab["role"] = np.select([zone, exposed], ["direct", "exposed"], "clean")
    # a zone unit's ring label is kept (it tells where it was exposed before its zone)
    tab.index.name = "unit"
    tab = tab[["role", "cohort", "exposure_onset", "ring", "distance_km"]]
    links = rel[["unit", "zone", "zone_cohort"]].reset_index(drop=True)
    return ExposureMap(kind=kind, table=tab, rings=tuple(rings), settings=settings, links=links)


def _zone_cohorts(panel: Panel, stacklevel: int = 2) -> pd.Series:
    """Opening period of every zone: the panel's treated units and its source zones
    (zones outside the estimation sample, :attr:`Panel.sources`).

    A source zone opening after the panel's last period exposes nobody within the data
    (a panel unit with such a cohort is refused, or recoded never treated with
    ``outside_window="adjust"``); it is left out with a warning (at ``stacklevel``) rather
    than making its neighbours "exposed" from a period the data never reach (they would
    leave the never-exposed controls)."""
    uc = panel.unit_cohort.astype(float)
    zc = uc[np.isfinite(uc.to_numpy())]
    if panel.sources is not None:
        sc = panel.sources["cohort"].astype(float)
        last = panel.periods[-1]
        late = sc.index[sc.to_numpy() > float(last)]
        if len(late):
            warnings.warn(
                f"{len(late)} source zone(s) open after the panel's last period {last} "
                f"(first: {late[0]!r}, cohort {sc[late[0]]:g}); they expose nobody within "
                "the data and are ignored. Drop them from sources= (a panel unit with such "
                "a cohort is refused).",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
            sc = sc.drop(late)
        zc = pd.concat([zc, sc])
    return zc[~zc.index.duplicated(keep="first")]


def _check_source_regions(geo: pd.DataFrame, src: pd.DataFrame, column: str) -> None:
    """Refuse region codes of different kinds in the geography and in ``sources=`` (e.g.
    integers read from one file, strings from another): they never compare equal, and
    every source zone would silently expose nobody."""
    if src.empty or column not in src.columns:
        return

    def kind(v: Any) -> str:
        if isinstance(v, str):
            return "str"
        if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)):
            return "number"
        return type(v).__name__

    def kinds(values: pd.Series) -> set[str]:
        return {kind(v) for v in values.dropna().to_numpy(dtype=object)}

    have, given = kinds(geo[column]), kinds(src[column])
    if have and given and not given <= have:
        first = src[column].dropna().iloc[0]
        raise GeographyError(
            f"Region column {column!r} holds {sorted(have)} codes in the geography but "
            f"{sorted(given)} in sources= (e.g. source zone {src[column].dropna().index[0]!r}: "
            f"{first!r}); they never match, so the sources would expose nobody. Give both "
            "the same type (e.g. convert both to str)."
        )


def _source_points(panel: Panel, cols: Sequence[str], kind: str | None = None) -> pd.DataFrame:
    """Source zones that have the geography columns ``cols`` (others cannot be placed).

    With ``kind`` (the exposure map being built, which needs ``cols`` to place a zone) a
    source lacking them is refused by name, as a panel zone unit lacking them is
    (:meth:`Panel.require_geography`): left out, it would expose nobody and its
    neighbours would silently become clean controls."""
    src = panel.sources
    placed = (
        src[list(cols)].notna().all(axis=1).to_numpy()
        if src is not None and set(cols) <= set(src.columns)
        else np.zeros(0 if src is None else len(src), bool)
    )
    # a source opening after the data exposes nobody anyway (:func:`_zone_cohorts`)
    late = (
        np.zeros(len(placed), bool)
        if src is None
        else src["cohort"].to_numpy(float) > float(panel.periods[-1])
    )
    if src is not None and kind is not None and not (placed | late).all():
        lost = src.index[~(placed | late)]
        first = src.loc[lost[0]]
        missing = [c for c in cols if c not in src.columns or pd.isna(first.get(c))]
        raise GeographyError(
            f"Geography missing for source zone {lost[0]!r}: it lacks {missing} "
            f"({len(lost)} of {len(src)} source zone(s) lack some of {list(cols)}), so it "
            f"cannot be placed under exposure={kind!r} and its neighbours would count as clean "
            "controls. Give the source zones those columns (in sources=, or in the "
            "geography table for zone units dropped as always treated), or drop them from "
            "sources=."
        )
    if src is None or not placed.any():
        return pd.DataFrame(columns=["cohort", *cols])
    return src.loc[placed, ["cohort", *cols]]


def exposure_from_adjacency(panel: Panel, *, label: str = "adjacent") -> ExposureMap:
    """Exposure through the panel's adjacency list (shared borders, contiguity).

    A non-zone unit is exposed from the first year any adjacent unit gets a zone.

    Raises
    ------
    GeographyError
        When the panel has no adjacency list.
    """
    if panel.adjacency is None:
        raise GeographyError(
            "exposure='adjacency' needs an adjacency list but the panel has none; pass "
            "adjacency= (columns unit, neighbour) to Panel.from_frame, or use "
            "exposure='rings' (coordinates) or 'region'."
        )
    adj = panel.adjacency
    rel = pd.DataFrame(
        {"unit": adj["unit"].to_numpy(), "zone": adj["neighbour"].to_numpy(), "ring": label}
    )
    if panel.source_links is not None and len(panel.source_links):
        links = panel.source_links
        rel = pd.concat(
            [rel, pd.DataFrame({"unit": links["unit"], "zone": links["source"], "ring": label})],
            ignore_index=True,
        )
    rel["distance_km"] = np.nan
    if panel.geography is not None and {"lat", "lon"} <= set(panel.geography.columns):
        geo = panel.geography[["lat", "lon"]]
        src = _source_points(panel, ["lat", "lon"])[["lat", "lon"]]
        # a source zone is placed by its sources= coordinates (the geography table's only
        # fill its gaps), as the rings and k-nearest maps place it; no empty frame in the
        # concat: pandas 2.1 warns that its dtype will count later
        pts = pd.concat([src, geo]) if len(src) else geo
        pts = pts[~pts.index.duplicated(keep="first")]
        a = pts.reindex(rel["unit"])
        b = pts.reindex(rel["zone"])
        rel["distance_km"] = haversine_km(
            a["lat"].to_numpy(float),
            a["lon"].to_numpy(float),
            b["lat"].to_numpy(float),
            b["lon"].to_numpy(float),
        )
    return _assemble(panel, "adjacency", rel, (label,), {"label": label})


def _ring_label(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}km"


#: The bands :func:`exposure_from_rings` uses when none are given (Butts 2021's example
#: scale for counties; :func:`build_exposure` warns when it falls back on them)
DEFAULT_RINGS_KM: tuple[tuple[float, float], ...] = ((0, 50), (50, 100), (100, 200))


def exposure_from_rings(
    panel: Panel,
    rings_km: Sequence[Sequence[float]] = DEFAULT_RINGS_KM,
    *,
    within_region: bool = False,
    region_column: str = "region",
) -> ExposureMap:
    """Exposure by great-circle distance bands ("rings") around zones (Butts 2021, eq. 3.3).

    Parameters
    ----------
    panel : Panel
        Needs ``lat`` and ``lon`` in its geography for every unit.
    rings_km : sequence of (low, high)
        Distance bands ``low <= d < high`` in km, inner first, non-overlapping.
    within_region : bool
        Count only zones of the unit's own region (needs ``region_column``).
    """
    try:
        rings_km = [(float(lo), float(hi)) for lo, hi in rings_km]
    except (TypeError, ValueError):
        raise GeographyError(
            f"rings_km must be a list of (low, high) distance bands in km, e.g. [(0, 50), "
            f"(50, 100)]; received {rings_km!r}."
        ) from None
    if not rings_km:
        raise GeographyError("rings_km is empty; give at least one (low, high) band in km.")
    for k, (lo, hi) in enumerate(rings_km):
        if not 0 <= lo < hi:
            raise GeographyError(f"Ring {k} = ({lo}, {hi}) km is invalid; need 0 <= low < high.")
        if k and lo < rings_km[k - 1][1]:
            raise GeographyError(
                f"Rings overlap: ({rings_km[k - 1]}) and ({lo}, {hi}); give inner rings first."
            )
    cols = ["lat", "lon", *([region_column] if within_region else [])]
    geo = panel.require_geography(cols)
    units = geo.index.to_numpy()
    zones_in = panel.unit_cohort.index[np.isfinite(panel.unit_cohort.to_numpy(float))]
    src = _source_points(panel, cols, "rings")
    if within_region:
        _check_source_regions(geo, src, region_column)
    zgeo = pd.concat([geo.loc[zones_in, cols], src[cols]])
    zgeo = zgeo[~zgeo.index.duplicated(keep="first")]
    zones = zgeo.index.to_numpy()
    lat, lon = geo["lat"].to_numpy(float), geo["lon"].to_numpy(float)
    zlat, zlon = zgeo["lat"].to_numpy(float), zgeo["lon"].to_numpy(float)
    # units x zones distances (zones are a fraction of units: memory stays modest)
    dist = haversine_km(lat[:, None], lon[:, None], zlat[None, :], zlon[None, :])
    labels = [_ring_label(lo, hi) for lo, hi in rings_km]
    ring_idx = np.full(dist.shape, -1)
    for k, (lo, hi) in enumerate(rings_km):
        ring_idx[(dist >= lo) & (dist < hi)] = k
    if within_region:
        reg = geo[region_column].to_numpy()
        ring_idx[reg[:, None] != zgeo[region_column].to_numpy()[None, :]] = -1
    _warn_ring_gaps(dist, ring_idx, units, zones, rings_km, within_region, geo, zgeo, region_column)
    iu, iz = np.nonzero(ring_idx >= 0)
    rel = pd.DataFrame(
        {
            "unit": units[iu],
            "zone": zones[iz],
            "ring": np.asarray(labels, dtype=object)[ring_idx[iu, iz]],
            "distance_km": dist[iu, iz],
        }
    )
    settings = {"rings_km": rings_km, "within_region": within_region}
    return _assemble(panel, "rings", rel, labels, settings)


def _warn_ring_gaps(
    dist: np.ndarray,
    ring_idx: np.ndarray,
    units: np.ndarray,
    zones: np.ndarray,
    rings_km: Sequence[Sequence[float]],
    within_region: bool,
    geo: pd.DataFrame,
    zgeo: pd.DataFrame,
    region_column: str,
) -> None:
    """Warn when rings that do not start at 0 km or leave gaps miss units closer to a zone
    than the outer edge: that zone does not expose them, so they fall in a farther zone's
    ring (with its onset) or count as clean controls although a zone is nearby."""
    gap = (dist < rings_km[-1][1]) & (ring_idx < 0) & (units[:, None] != zones[None, :])
    if within_region:
        gap &= geo[region_column].to_numpy()[:, None] == zgeo[region_column].to_numpy()[None, :]
    if not gap.any():
        return
    iu, iz = np.nonzero(gap)
    k = int(np.argmin(dist[iu, iz]))
    bands = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in rings_km)
    warnings.warn(
        f"{np.unique(iu).size} unit(s) lie within {rings_km[-1][1]:g} km of a zone but in no "
        f"ring of [{bands}] km from it (closer than the innermost edge, or between rings), "
        f"e.g. unit {units[iu[k]]!r} at {dist[iu[k], iz[k]]:.1f} km from zone "
        f"{zones[iz[k]]!r}. That zone does not expose them: they fall in a farther zone's "
        "ring or count as clean controls. Start the rings at 0 km without gaps unless "
        "that is the design.",
        stacklevel=3,
    )


KnnAmong = Literal["places", "panel"]
#: the conventions :func:`exposure_from_knn` accepts for ``among``
KNN_AMONG: tuple[str, ...] = ("places", "panel")


def exposure_from_knn(
    panel: Panel, k: int = 2, *, label: str | None = None, among: KnnAmong = "places"
) -> ExposureMap:
    """Each zone exposes its ``k`` nearest units (great-circle distance; Butts 2021,
    "Difference-in-differences estimation with spatial spillovers", arXiv:2105.03737,
    Section 3: the alternative to fixed radii when unit density varies).

    Parameters
    ----------
    panel : Panel
        Needs ``lat`` and ``lon`` for every unit (and for source zones to count them).
    k : int
        Neighbours per zone. Sources opening after the last period are left out, as
        everywhere (:func:`_zone_cohorts`). A zone with fewer than ``k`` other candidates
        exposes them all; the ring label keeps the ``k`` asked for. Candidates tied with
        the ``k``-th nearest (equal distances, as on a grid or at shared centroids) are all
        neighbours, so the map does not depend on the units' labels or order.
    label : str, optional
        The ring label (default ``"<k>-nearest"``).
    among : {"places", "panel"}
        Among which places the ``k`` nearest are counted; in both conventions every zone,
        in the panel or a located source zone (:attr:`Panel.sources` with ``lat``/``lon``,
        e.g. always-treated zone units dropped by ``outside_window="adjust"``), exposes its
        neighbours, and only panel units are ever "exposed".

        * ``"places"`` (default): the ``k`` nearest *places* other than the zone itself,
          i.e. the panel's units and its located source zones. A source zone takes a
          neighbour slot although it is not exposed (it is no panel unit). Exposure then
          does not depend on whether a zone is kept in the sample or held as a source
          (e.g. an always-treated zone unit dropped by ``outside_window="adjust"``): the
          ``cohort=`` and ``treatment=`` readings of the same data give the same map. Use
          it when exposure is a property of the map of places, sampled or not.
        * ``"panel"``: the ``k`` nearest *panel units* other than the zone itself; source
          zones take no slot (they still expose their own ``k`` nearest panel units).
          A zone's ``k`` neighbours are then all units of the sample (fewer only when
          the panel holds fewer): the convention of a referee or simulation that links
          zones to the estimation sample only. The map can change when a zone moves
          between the panel and the sources (an always-treated unit dropped from the
          window frees a slot for a farther unit).

        The two agree when the panel has no located source zones.

    Raises
    ------
    GeographyError
        When ``k`` is not a whole number >= 1, ``among`` is not one of the conventions
        above, or the panel lacks ``lat``/``lon`` (for a unit or a source zone).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise GeographyError(f"k must be a whole number >= 1; received {k!r}.")
    if not isinstance(among, str) or among not in KNN_AMONG:
        allowed = ", ".join(repr(c) for c in KNN_AMONG)
        raise GeographyError(
            f"among must be one of {allowed} (the k nearest places, source zones included, "
            f"or the k nearest panel units); received {among!r}."
        )
    geo = panel.require_geography(["lat", "lon"])
    units = geo.index.to_numpy()
    zones_in = panel.unit_cohort.index[np.isfinite(panel.unit_cohort.to_numpy(float))]
    src = _source_points(panel, ["lat", "lon"], "knn")[["lat", "lon"]]
    # sources the map builders ignore (opening after the data) take no slot either
    if len(src) and panel.sources is not None:
        opens = panel.sources["cohort"].reindex(src.index).to_numpy(float)
        src = src[opens <= float(panel.periods[-1])]
    zgeo = pd.concat([geo.loc[zones_in, ["lat", "lon"]], src]) if len(src) else geo.loc[zones_in]
    zgeo = zgeo[~zgeo.index.duplicated(keep="first")][["lat", "lon"]]
    # candidates: panel units first, then (among places) the source zones (not panel units)
    places = among == "places" and len(src) > 0
    cand = pd.concat([geo[["lat", "lon"]], src]) if places else geo[["lat", "lon"]]
    cand = cand[~cand.index.duplicated(keep="first")]
    dist = haversine_km(
        zgeo["lat"].to_numpy(float)[:, None],
        zgeo["lon"].to_numpy(float)[:, None],
        cand["lat"].to_numpy(float)[None, :],
        cand["lon"].to_numpy(float)[None, :],
    )  # zones x candidates
    self_pos = cand.index.get_indexer(zgeo.index)
    rows = np.flatnonzero(self_pos >= 0)
    dist[rows, self_pos[rows]] = np.inf  # a zone is not its own neighbour
    # the k-th nearest among each zone's own candidates (all of them when fewer than k)
    kk = np.minimum(int(k), np.isfinite(dist).sum(axis=1))
    kth = np.full(len(zgeo), -np.inf)
    for m in np.unique(kk[kk > 0]):
        at = kk == m
        kth[at] = np.partition(dist[at], m - 1, axis=1)[:, m - 1]
    # ties at the k-th distance all count (a label-order tie-break moved a breaker's grid
    # estimates); equal distances on a grid can differ in the last bits
    near = np.isfinite(dist) & (dist <= kth[:, None] * (1 + 1e-12) + 1e-9)
    near[:, len(units) :] = False  # source zones fill slots but are no panel units
    zi, ui = np.nonzero(near)
    ring = label or f"{int(k)}-nearest"
    rel = pd.DataFrame(
        {
            "unit": units[ui],
            "zone": zgeo.index.to_numpy()[zi],
            "ring": ring,
            "distance_km": dist[zi, ui],
        }
    )
    return _assemble(panel, "knn", rel, (ring,), {"k": int(k), "among": among})


def exposure_from_region(panel: Panel, column: str = "region") -> ExposureMap:
    """Exposure of every non-zone unit of a region from the region's first zone year."""
    geo = panel.require_geography([column])
    reg = geo[column]
    zones = panel.unit_cohort.index[np.isfinite(panel.unit_cohort.to_numpy(float))]
    src = _source_points(panel, [column], "region")
    _check_source_regions(geo, src, column)
    zdf = pd.concat(
        [
            pd.DataFrame({"zone": zones, "r": reg.reindex(zones).to_numpy()}),
            pd.DataFrame({"zone": src.index, "r": src[column].to_numpy()}),
        ],
        ignore_index=True,
    )
    udf = pd.DataFrame({"unit": reg.index, "r": reg.to_numpy()})
    rel = udf.merge(zdf, on="r")[["unit", "zone"]].assign(ring="region", distance_km=np.nan)
    return _assemble(panel, "region", rel, ("region",), {"column": column})


def exposure_from_onsets(
    panel: Panel, onset: pd.Series | dict, *, ring: str = "exposed"
) -> ExposureMap:
    """An exposure map from user-given exposure onsets (any exposure definition).

    Parameters
    ----------
    panel : Panel
    onset : Series or dict
        Exposure onset by unit, on the panel's period scale; NaN, ``inf`` or a missing unit
        mean never exposed, and so does ``0`` unless 0 is one of the panel's periods after
        the first (then it is an onset like any other, as are negative periods; the rule of
        the panel's ``never_values``). Zone units' values are kept as their pre-zone
        exposure (module notes).
    ring : str
        The single ring label.
    """
    s = pd.Series(onset, dtype=float)
    unknown = s.index.difference(panel.unit_cohort.index)
    if len(unknown):
        raise GeographyError(
            f"Exposure onsets given for unit {unknown[0]!r}, which is not in the panel "
            f"({len(unknown)} such unit(s))."
        )
    s = s.reindex(panel.unit_cohort.index)
    # 0 means never (R did's code for cohorts) unless it is a period after the first
    zero_never = 0 not in set(panel.periods[1:].tolist())
    s = s.where(s.notna() & ~((s == 0) & zero_never), np.inf)
    uc = panel.unit_cohort.astype(float)
    tab = pd.DataFrame({"cohort": uc, "exposure_onset": s})
    zone = np.isfinite(tab["cohort"].to_numpy())
    exposed = ~zone & np.isfinite(tab["exposure_onset"].to_numpy())
    tab["role"] = np.select([zone, exposed], ["direct", "exposed"], "clean")
    tab["ring"] = np.where(np.isfinite(tab["exposure_onset"].to_numpy()), ring, "")
    tab["distance_km"] = np.nan
    tab.index.name = "unit"
    tab = tab[["role", "cohort", "exposure_onset", "ring", "distance_km"]]
    return ExposureMap(kind="onsets", table=tab, rings=(ring,), settings={"ring": ring})


def build_exposure(
    panel: Panel,
    exposure: str | ExposureMap = "adjacency",
    *,
    rings_km: Sequence[Sequence[float]] | None = None,
    region_column: str = "region",
    within_region: bool = False,
    k: int | None = None,
    among: KnnAmong = "places",
    stacklevel: int = 2,
) -> ExposureMap:
    """Dispatch on the spec's ``exposure`` name (or pass an :class:`ExposureMap` through).

    ``k`` and ``among`` go to :func:`exposure_from_knn` (``exposure="knn"``; ``k`` defaults
    to 2 there).

    ``"rings"`` without ``rings_km`` uses :data:`DEFAULT_RINGS_KM` and warns (pointing
    ``stacklevel`` frames up): how far the rings reach decides which units are clean
    controls, so the bands should be the study's choice.
    """
    if isinstance(exposure, ExposureMap):
        return exposure
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emap = _built(panel, exposure, rings_km, region_column, within_region, k, among)
    # the builders' warnings (sources opening after the data) point at this call's caller
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=stacklevel)
    if exposure == "rings" and rings_km is None:
        bands = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in DEFAULT_RINGS_KM)
        warnings.warn(
            f"exposure='rings' without rings_km uses the default bands {bands} km. Rings "
            "that reach too far leave few clean controls (targets are then left out) and "
            "rings too short leave displacement in the controls; choose the bands for "
            "the study, e.g. from zoneimpact.sensitivity.cv_cutoff (Clarke 2017) or "
            "exposure_sensitivity.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return emap


def _built(
    panel: Panel,
    exposure: str,
    rings_km: Sequence[Sequence[float]] | None,
    region_column: str,
    within_region: bool,
    k: int | None,
    among: KnnAmong = "places",
) -> ExposureMap:
    """The exposure map ``exposure`` names (:func:`build_exposure`)."""
    if exposure == "adjacency":
        return exposure_from_adjacency(panel)
    if exposure == "rings":
        return exposure_from_rings(
            panel,
            DEFAULT_RINGS_KM if rings_km is None else rings_km,
            within_region=within_region,
            region_column=region_column,
        )
    if exposure == "region":
        return exposure_from_region(panel, column=region_column)
    if exposure == "knn":
        return exposure_from_knn(panel, k if k is not None else 2, among=among)
    raise PanelError(
        f"exposure={exposure!r} is not allowed; use 'adjacency', 'rings', 'knn' or 'region'."
    )


# ---------------------------------------------------------------------- region onsets
def _period_text(v: Any) -> str:
    """A period as written in messages: ``2010``, not ``2010.0``."""
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def region_onsets(
    panel: Panel, column: str = "region", exposure: ExposureMap | None = None
) -> pd.Series:
    """Each region's onset (``inf``: never), indexed by region: the earliest of its units'
    zone openings, the openings of the panel's :attr:`~zoneimpact.panel.Panel.sources`
    located in it (their ``column``; sources without one cannot be placed and do not count)
    and, with ``exposure`` (an :class:`~zoneimpact.exposure.ExposureMap`), its units'
    exposure onsets: a region whose units lose activity to a zone across its border, or to
    a zone outside the sample, has changed from then on and is no untreated control. Onsets
    after the last period are ``inf`` (never within the data)."""
    geo = panel.require_geography([column])
    uc = panel.unit_cohort.astype(float)
    reg = geo[column].reindex(uc.index)
    first = [uc]
    if exposure is not None:
        first.append(
            exposure.table["exposure_onset"].reindex(uc.index).astype(float).fillna(np.inf)
        )
    own = pd.concat(first, axis=1).min(axis=1)
    onset = own.groupby(reg.to_numpy()).min()
    src = panel.sources
    if src is not None and column in src.columns and len(src):
        placed = src.loc[src[column].notna()]
        by = placed["cohort"].astype(float).groupby(placed[column].to_numpy()).min()
        by = by.reindex(onset.index).fillna(np.inf)
        onset = np.fmin(onset, by)
    last = float(np.max(np.asarray(panel.periods, dtype=float)))
    return onset.where(onset <= last, np.inf).astype(float)


def regions_left_out(onset: pd.Series, panel: Panel) -> pd.Series:
    """Regions treated from the first period or before: no untreated period in the data."""
    first_period = float(np.min(np.asarray(panel.periods, dtype=float)))
    return onset[onset.to_numpy(float) <= first_period]


def left_out_note(left: Mapping[Any, float], what: str) -> str:
    """Why ``what`` leaves out the regions ``left`` (region -> onset)."""
    if not left:
        return ""
    items = list(left.items())
    shown = ", ".join(f"{r!r} (from {_period_text(g)})" for r, g in items[:5])
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return (
        f"{what} leaves out {len(items)} region(s) treated from the data's first period or "
        f"before: {shown}{more} (a zone, a source zone or an exposed unit there). With no "
        "untreated period in the data they are neither clean controls nor a cohort with a "
        "pre-period, so their change is not in this check."
    )
