"""Referee O's world: cities on a Voronoi map, adjacency exposure, conditional trends.

Written from the public docstrings of ``zoneimpact.estimators.spillover``,
``zoneimpact.exposure`` and ``zoneimpact.panel`` only (README.md in this directory).

Map (fixed by ``DESIGN_SEED``): 240 city sites drawn uniformly in a 6 x 4 degree box; the
cities are their Voronoi cells, neighbours share a border (Delaunay edges). 20 regions are
the Voronoi cells of 20 random region capitals (unequal sizes, at least 4 cities each).

Per replication (seeded by world and replication number): covariate ``x ~ N(0, 1)``; 60
zones drawn without replacement with probability proportional to ``exp(0.8 x)``, each in a
wave 2005, 2009, 2013 or 2017 at random; untreated outcome

    Y_it(0, 0) = a_i + 0.5 (t - 2000) + 0.4 x_i (t - 2000) + u_r(i),t + e_it,

``a_i ~ N(100, 20^2)``, regional AR(1) shocks ``u_rt = 0.6 u_r,t-1 + N(0, 1.5^2)`` (started
stationary), city noise ``e_it ~ N(0, 1)``. A zone city's own gain from its opening ``g``:
``tau_it = b_i (1 + 0.15 (t - g))``, ``b_i = max(0.5, 2 + 0.5 x_i + U(-1, 1))``. With
displacement share ``s``, every open zone moves ``-s tau_zt`` onto its *never-zone*
neighbours, split equally among them (a zone without never-zone neighbours moves nothing);
a non-zone city next to zones of several waves sums their parts. Zone cities get no
spillover (before or after their own opening), so the true ``spillover_on_zones`` is 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import Delaunay

DESIGN_SEED = 20_260_0415
N_CITIES = 240
N_REGIONS = 20
YEARS = np.arange(2000, 2022)
WAVES = (2005, 2009, 2013, 2017)
N_ZONES = 60
WORLDS = {"null": None, "s-0.5": -0.5, "s0": 0.0, "s0.5": 0.5}
WORLD_CODE = {"null": 0, "s-0.5": 1, "s0": 2, "s0.5": 3}

RHO, SD_REGION, SD_CITY = 0.6, 1.5, 1.0


def make_map(design_seed: int = DESIGN_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Geography (unit, region, lat, lon) and adjacency (unit, neighbour) of the cities."""
    rng = np.random.default_rng(design_seed)
    while True:
        sites = rng.uniform(size=(N_CITIES, 2)) * [6.0, 4.0]
        capitals = rng.uniform(size=(N_REGIONS, 2)) * [6.0, 4.0]
        d = ((sites[:, None, :] - capitals[None, :, :]) ** 2).sum(axis=2)
        region = d.argmin(axis=1)
        if np.bincount(region, minlength=N_REGIONS).min() >= 4:
            break
    tri = Delaunay(sites)
    indptr, indices = tri.vertex_neighbor_vertices
    pairs = [(i, int(j)) for i in range(N_CITIES) for j in indices[indptr[i] : indptr[i + 1]]]
    units = np.arange(1, N_CITIES + 1)
    geography = pd.DataFrame(
        {
            "unit": units,
            "region": region + 1,
            "lon": 100.0 + sites[:, 0],
            "lat": 30.0 + sites[:, 1],
        }
    )
    adjacency = pd.DataFrame(
        {"unit": [units[i] for i, _ in pairs], "neighbour": [units[j] for _, j in pairs]}
    )
    return geography, adjacency


GEOGRAPHY, ADJACENCY = make_map()


def _neighbour_lists() -> list[np.ndarray]:
    nb: list[list[int]] = [[] for _ in range(N_CITIES)]
    for u, v in zip(ADJACENCY["unit"], ADJACENCY["neighbour"], strict=True):
        nb[u - 1].append(v - 1)
        nb[v - 1].append(u - 1)
    return [np.unique(np.array(x, dtype=int)) for x in nb]


NEIGHBOURS = _neighbour_lists()


def replication_rng(world: str, rep: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([DESIGN_SEED, WORLD_CODE[world], rep]))


def simulate(world: str, rep: int, *, noiseless: bool = False) -> tuple[pd.DataFrame, dict]:
    """Long frame (unit, year, y, cohort, x, region) and the true estimands.

    ``noiseless``: no regional shocks and no city noise (effects on; the null world has none).
    """
    s = WORLDS[world]
    rng = replication_rng(world, rep)
    n, T = N_CITIES, len(YEARS)
    region = GEOGRAPHY["region"].to_numpy() - 1

    x = rng.normal(size=n)
    p = np.exp(0.8 * x)
    zones = rng.choice(n, size=N_ZONES, replace=False, p=p / p.sum())
    cohort = np.full(n, np.inf)
    cohort[zones] = rng.choice(WAVES, size=N_ZONES)
    a = rng.normal(100.0, 20.0, size=n)
    b = np.maximum(0.5, 2.0 + 0.5 * x + rng.uniform(-1.0, 1.0, size=n))

    tt = (YEARS - YEARS[0])[None, :].astype(float)
    y0 = a[:, None] + 0.5 * tt + 0.4 * x[:, None] * tt
    innov = rng.normal(0.0, SD_REGION, size=(N_REGIONS, T))
    city = rng.normal(0.0, SD_CITY, size=(n, T))
    u = np.empty((N_REGIONS, T))
    u[:, 0] = innov[:, 0] / np.sqrt(1 - RHO**2)
    for k in range(1, T):
        u[:, k] = RHO * u[:, k - 1] + innov[:, k]
    if not noiseless:
        y0 = y0 + u[region] + city

    # own gains of zone cities
    open_ = YEARS[None, :] >= cohort[:, None]
    direct = np.where(open_, b[:, None] * (1.0 + 0.15 * (YEARS[None, :] - cohort[:, None])), 0.0)
    spill = np.zeros((n, T))
    is_zone = np.isfinite(cohort)
    if s is None:
        direct[:] = 0.0
    else:
        for z in zones:
            never = NEIGHBOURS[z][~is_zone[NEIGHBOURS[z]]]
            if len(never):
                spill[never] += -s * direct[z][None, :] / len(never)
    y = y0 + direct + spill

    # exposure onset as the adjacency map documents it: earliest opening of an adjacent zone
    # (for zone cities, zones other than their own)
    onset = np.array(
        [cohort[NEIGHBOURS[i]].min() if len(NEIGHBOURS[i]) else np.inf for i in range(n)]
    )
    yrs = YEARS[None, :]
    direct_cells = is_zone[:, None] & (yrs >= cohort[:, None])
    exposed_cells = ~is_zone[:, None] & (yrs >= onset[:, None])
    on_zone_cells = is_zone[:, None] & (yrs >= onset[:, None]) & (yrs < cohort[:, None])
    eff = direct + spill
    d_tot = eff[direct_cells].sum()
    s_tot = eff[exposed_cells].sum()
    z_tot = eff[on_zone_cells].sum()
    net = eff.sum()
    truth = {
        "direct": eff[direct_cells].mean(),
        "direct_total": d_tot,
        "spillover": eff[exposed_cells].mean() if exposed_cells.any() else np.nan,
        "spillover_total": s_tot,
        "spillover_on_zones": eff[on_zone_cells].mean() if on_zone_cells.any() else np.nan,
        "spillover_on_zones_total": z_tot,
        "net": net,
        "net_per_treated": net / direct_cells.sum(),
        "displacement_share": 1.0 - net / d_tot if abs(d_tot) > 1e-9 else np.nan,
        "net_region_did": net,
        # bookkeeping: effects outside the three target sets must be zero
        "_outside": eff[~(direct_cells | exposed_cells | on_zone_cells)].__abs__().sum(),
        "_n_direct": int(direct_cells.sum()),
        "_n_exposed": int(exposed_cells.sum()),
        "_n_on_zones": int(on_zone_cells.sum()),
        "_n_clean_units": int((~is_zone & ~np.isfinite(onset)).sum()),
    }
    units = GEOGRAPHY["unit"].to_numpy()
    frame = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "year": np.tile(YEARS, n),
            "y": y.ravel(),
            "cohort": np.repeat(np.where(is_zone, cohort, 0.0), T),
            "x": np.repeat(x, T),
        }
    )
    return frame, truth


def make_panel(frame: pd.DataFrame):
    from zoneimpact.panel import Panel

    return Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        outcomes="y",
        cohort="cohort",
        covariates=["x"],
        geography=GEOGRAPHY,
        adjacency=ADJACENCY,
    )


def fit(frame: pd.DataFrame, seed: int = 0):
    """The default fit: adjacency exposure built by the package, covariates x, region clusters."""
    from zoneimpact.estimators import spillover
    from zoneimpact.exposure import exposure_from_adjacency

    panel = make_panel(frame)
    emap = exposure_from_adjacency(panel)
    return spillover.fit(panel, outcome="y", exposure=emap, covariates=["x"], rng=seed), emap
