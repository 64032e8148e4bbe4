"""Library code creates figures without pyplot's registry (report.style.new_figure), so a
claims run or a loop of plots leaks no open figure (found: the China specification-curve
and sensitivity figures were registered with pyplot and stayed open)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from zoneimpact.china.speccurve import curve_figure


def test_curve_figure_is_not_registered_with_pyplot() -> None:
    plt.close("all")
    curve = pd.DataFrame(
        {
            "estimand": ["direct"] * 4,
            "scale": ["levels", "levels", "log1p", "log1p"],
            "estimate": [1.0, 2.0, 0.1, 0.2],
            "ci_low": [0.5, 1.0, 0.0, 0.1],
            "ci_high": [1.5, 3.0, 0.2, 0.3],
        }
    )
    fig = curve_figure(curve, pd.Series(np.array([True, False, True, True])))
    assert plt.get_fignums() == []
    assert len(fig.axes) == 2
