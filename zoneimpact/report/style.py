r"""One figure style for every zoneimpact plot: colour-blind-safe and sized for a paper column.

Colours follow the Okabe–Ito palette (Okabe & Ito 2008, *Color Universal Design*; the
palette recommended by Wong 2011, *Nature Methods* 8:441), distinguishable under the
common forms of colour-vision deficiency and in greyscale by their lightness. Series that
need a continuous scale (many cohorts on a map) use ``viridis``, which is perceptually
uniform and colour-blind safe.

Figures are sized for one column of a two-column journal page (3.5 in wide) with 8 pt
text, so they can be included at 100 % without scaling fonts. The rc settings are applied
through :func:`paper_style`, a context manager, so the caller's global matplotlib state is
never changed.

Text is literal. Unit, donor, outcome and estimate names come from the user's data and
spec, and matplotlib would parse any of them holding two ``$`` as mathtext (a unit named
``$\badcmd{x}$`` aborts the drawing) or hand it to TeX under ``text.usetex``. So
:data:`PAPER_RC` switches ``text.parse_math`` and ``text.usetex`` off for every text
created while a figure is drawn, and :func:`literal` switches them off on the texts that
carry names (labels, titles, tick labels, legends), which also covers axes a caller
created outside :func:`paper_style`. A ``$`` is then a dollar sign. A label that should be
mathtext opts in after drawing, e.g. ``ax.set_ylabel(r"$\bar{M}$", parse_math=True)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.axis import Tick
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.legend import Legend
from matplotlib.rcsetup import cycler
from matplotlib.text import Text

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Okabe–Ito colours by name (hex codes from Okabe & Ito 2008).
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Order in which series take colours. Yellow is last: it is hard to see on white.
PALETTE: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
)

#: Marker shapes paired with :data:`PALETTE`, so series stay distinct in greyscale.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Roles used across plots.
TREATED_COLOR = OKABE_ITO["black"]
SYNTHETIC_COLOR = OKABE_ITO["vermillion"]
PLACEBO_COLOR = "#B0B0B0"
REFERENCE_COLOR = "#7F7F7F"
PRE_COLOR = OKABE_ITO["blue"]
POST_COLOR = OKABE_ITO["vermillion"]
SEQUENTIAL_CMAP = "viridis"

#: Width of one column of a two-column journal page, in inches.
COLUMN_WIDTH = 3.5
#: Width of a full page of text, in inches.
PAGE_WIDTH = 7.0

#: rc settings applied while a figure is drawn (8 pt text for a 3.5 in figure).
PAPER_RC: dict[RcKeyType, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "errorbar.capsize": 0,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    # Names from the data are drawn as typed: no mathtext, no TeX (see the module notes).
    "text.parse_math": False,
    "text.usetex": False,
    # Tick formatters write plain numbers, so no tick label needs mathtext either.
    "axes.formatter.use_mathtext": False,
}


@contextmanager
def paper_style() -> Iterator[None]:
    """Apply :data:`PAPER_RC` within a ``with`` block, restoring the caller's settings after.

    Every text created inside the block is literal (``parse_math`` and ``usetex`` off).
    """
    with mpl.rc_context(PAPER_RC):
        yield


def literal(*items: Any) -> None:
    r"""Draw texts exactly as typed: no mathtext parsing of ``$...$`` and no TeX.

    The one gate for text derived from user input (unit, donor, outcome and estimate
    names, cohort labels, titles and axis labels): a name such as ``$\badcmd{x}$`` is
    then shown as those characters instead of making matplotlib's mathtext parser (or
    LaTeX) fail when the figure is drawn. Setting the property on the text objects, rather
    than escaping ``$`` in the strings, keeps ``Text.get_text()`` equal to the name and
    works whatever the caller's ``text.parse_math``/``text.usetex`` settings are.

    Parameters
    ----------
    *items : Text, Tick, Legend, iterable of these, or None
        Texts to make literal: a :class:`~matplotlib.text.Text` (what ``set_xlabel``,
        ``set_title`` and ``supylabel`` return), a :class:`~matplotlib.axis.Tick` (what
        ``set_xticks`` returns; both its labels), a :class:`~matplotlib.legend.Legend`
        (its entries and title) or any nesting of lists of them. ``None`` is skipped.
    """
    for item in items:
        if item is None:
            continue
        if isinstance(item, Text):
            item.set_parse_math(False)
            item.set_usetex(False)
        elif isinstance(item, Tick):
            literal(item.label1, item.label2)
        elif isinstance(item, Legend):
            literal(item.get_texts(), item.get_title())
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
            literal(*item)
        else:
            raise TypeError(
                f"literal() takes matplotlib Text, Tick or Legend objects; got {type(item).__name__}."
            )


def color(i: int) -> str:
    """The ``i``-th series colour (cycling through :data:`PALETTE`)."""
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    """The ``i``-th series marker (cycling through :data:`MARKERS`)."""
    return MARKERS[i % len(MARKERS)]


def new_figure(
    *,
    nrows: int = 1,
    ncols: int = 1,
    width: float = COLUMN_WIDTH,
    height: float | None = None,
    sharex: bool = False,
    sharey: bool = False,
    squeeze: bool = True,
    **subplot_kw: Any,
) -> tuple[Figure, Any]:
    """A new figure with constrained layout, not registered with pyplot.

    Using :class:`matplotlib.figure.Figure` directly rather than ``plt.subplots`` keeps the
    library free of pyplot's global state: a run writing dozens of figures leaks nothing,
    and nothing is shown unless the caller asks (``display(fig)`` in a notebook,
    ``fig.savefig`` in a script). Call inside :func:`paper_style`.
    """
    if height is None:
        height = width * 0.7 * nrows / max(ncols, 1) ** 0.5
    fig = Figure(figsize=(width, height), layout="constrained")
    # An Agg canvas makes ``fig.canvas.draw()`` and renderer queries work without pyplot.
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        nrows, ncols, sharex=sharex, sharey=sharey, squeeze=squeeze, subplot_kw=subplot_kw or None
    )
    return fig, axes


def root_figure(ax: Axes) -> Figure:
    """The top-level :class:`~matplotlib.figure.Figure` holding ``ax`` (through subfigures)."""
    fig: Any = ax.figure
    while isinstance(fig, SubFigure):
        fig = fig.figure
    return fig


def _fit_ncol(make: Any, n: int, max_width_px: float, ncol: int | None) -> Any:
    """Build a legend with the most columns (at most ``ncol``) that fit in ``max_width_px``.

    Legend entries are measured with the figure's renderer, so long labels wrap into
    more rows instead of running into each other or off the figure.
    """
    k = max(1, min(n, ncol or n))
    while True:
        leg = make(k)
        if k == 1:
            return leg
        try:
            renderer = leg.figure.canvas.get_renderer()
            width = leg.get_window_extent(renderer).width
        except AttributeError:  # a canvas without a renderer: keep the request
            return leg
        if width <= max_width_px:
            return leg
        leg.remove()
        k -= 1


def legend_above(
    ax: Axes, *, ncol: int | None = None, handles: Any = None, labels: Any = None, **kwargs: Any
) -> Any:
    """Put the legend in rows above the axes, where it cannot cover data.

    As many columns as fit the axes' width are used (at most ``ncol``). Constrained layout
    reserves room for it. Returns the legend (or ``None`` when nothing is labelled).
    """
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    fig = root_figure(ax)
    width_px = ax.get_position().width * fig.get_figwidth() * fig.dpi

    def make(k: int) -> Any:
        leg = ax.legend(
            handles,
            labels,
            loc="lower left",
            bbox_to_anchor=(0.0, 1.02),
            borderaxespad=0.0,
            ncol=k,
            handlelength=1.5,
            columnspacing=1.0,
            **kwargs,
        )
        literal(leg)  # entries are unit, outcome and estimate names: before measuring
        return leg

    return _fit_ncol(make, len(handles), width_px, ncol)


def legend_top_of_figure(fig: Figure, handles: Any, labels: Any, *, ncol: int | None = None) -> Any:
    """A figure-level legend above all panels (multi-panel plots), fitted to the width."""
    if not handles:
        return None
    width_px = 0.95 * fig.get_figwidth() * fig.dpi

    def make(k: int) -> Any:
        leg = fig.legend(
            handles, labels, loc="outside upper center", ncol=k, handlelength=1.5, columnspacing=1.0
        )
        literal(leg)
        return leg

    return _fit_ncol(make, len(handles), width_px, ncol)
