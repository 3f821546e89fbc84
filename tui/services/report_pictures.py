"""Tables and pictures of a memorization report: terminal plots (plotext) and one HTML file.

All of them draw from the report's dict (Report.to_dict(), what `--json` prints), so the
terminal, the HTML and a saved JSON read the same. Plots are forest plots: one row per
figure (and model), the rate as a point, its 95% interval as a line. The HTML follows the
calibration report: self-contained, inline SVG, plain tables. Terminal plots carry no user
text (model names go in a legend the caller prints as text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from memgrid.core.report import FIGURES, Scheme
from memgrid.tui.services.calibration_report import (
    CURVE_COLOURS,
    HTML_STYLE,
    PLOT_WIDTH,
    built_plot,
    html_table,
    html_text,
    plot_figure,
    svg_frame,
    svg_legend,
    svg_polyline,
)

TITLES = {figure.key: figure.title for figure in FIGURES}
# Short names where a table or plot is tight: the category's value, the Webster code.
SHORT_TITLES = {figure.key: figure.key for figure in FIGURES} | {
    "none": "not memorized",
    "memorized": "memorized",
}
# Figures in the overview and the plots: "not memorized" is one minus "memorized".
SHOWN_FIGURES = tuple(figure.key for figure in FIGURES if figure.key != "none")
MOVED_SHOWN = 20  # moved prompts listed in the terminal per direction; --json has them all
PROMPT_SHOWN = 70  # characters of a prompt shown in a table
PLOTTED_MODELS = 9  # the terminal's rate plot marks each model with one digit


# ---------------------------------------------------------------- numbers in words


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def interval_percent(interval: Sequence[float] | None, digits: int = 1) -> str:
    if not interval:
        return ""
    return f"[{100 * interval[0]:.{digits}f}, {100 * interval[1]:.{digits}f}]"


def points(value: float | None) -> str:
    """A change in rate, in percentage points, signed."""
    return "–" if value is None else f"{100 * value:+.1f}"


def p_value(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "<0.001"


def method_text(report: Mapping[str, Any]) -> str:
    """How the figures were made, in one line, for the terminal and the HTML."""
    level = round(report["level"] * 100)
    intervals = (
        f"{level}% intervals: percentile bootstrap over grids (pairs of grids when "
        f"comparing), {report['bootstraps']} resamples, seed {report['seed']}"
        if report["bootstraps"]
        else "no intervals (--bootstraps 0)"
    )
    return (
        "A grid counts with its agreed human label (adjudicated, else the majority) where "
        f"it has one, else with its proposal; {intervals}."
    )


def model_title(model: Mapping[str, Any]) -> str:
    return model["model"] if model["group"] is None else f"{model['model']} · {model['group']}"


def model_summary(model: Mapping[str, Any]) -> str:
    """`120 grids: 80 human-labelled (66.7%), 40 by proposal`."""
    grids = model["grids"]
    text = (
        f"{grids} grids: {model['human']} human-labelled "
        f"({percent(model['human'] / grids if grids else None)}), {model['proposed']} by proposal"
    )
    return text + (f", {model['unknown']} with neither" if model["unknown"] else "")


def _rate(model: Mapping[str, Any], figure: str) -> Mapping[str, Any]:
    return next(rate for rate in model["rates"] if rate["figure"] == figure)


# ---------------------------------------------------------------- tables


def overview_headers(scheme: Scheme) -> list[str]:
    known = ["grids", "human"] if scheme is Scheme.CATEGORY else ["typed"]
    return ["model", *known, *(SHORT_TITLES[key] for key in _shown_in(scheme))]


def overview_rows(report: Mapping[str, Any], scheme: Scheme) -> list[list[str]]:
    """One row per model (and group): the share of grids of each figure of one scheme.

    A category's share is of all grids with a label or proposal; a Webster type's of the
    grids with a known type (`typed`).
    """
    rows = []
    for model in report["models"]:
        keys = _shown_in(scheme)
        if scheme is Scheme.CATEGORY:
            grids = model["grids"]
            known = [str(grids), percent(model["human"] / grids if grids else None, 0)]
        else:
            known = [str(_rate(model, keys[0])["total"])]
        rows.append(
            [model_title(model), *known, *(percent(_rate(model, key)["rate"]) for key in keys)]
        )
    return rows


OVERVIEW_TITLES = {
    Scheme.CATEGORY: "Primary category per model, share of grids",
    Scheme.WEBSTER: "Webster type per model, share of grids with a known type",
}


def _shown_in(scheme: Scheme) -> list[str]:
    return [f.key for f in FIGURES if f.scheme is scheme and f.key in SHOWN_FIGURES]


# `human`: how many of the grids counted came from human labels; `human share`: the share
# of all grids with a known code (the denominator) that a human labelled.
RATE_HEADERS = ["figure", "grids", "rate [95% CI]", "human", "human share"]


def rate_rows(model: Mapping[str, Any]) -> list[list[str]]:
    """One row per figure: count of known, the rate with its interval, the human share."""
    return [
        [
            TITLES[rate["figure"]],
            f"{rate['count']}/{rate['total']}",
            f"{percent(rate['rate'])} {interval_percent(rate['interval'])}".strip(),
            f"{rate['count_human']}/{rate['count']}",
            percent(rate["human_share"], 0),
        ]
        for rate in model["rates"]
    ]


# `A/B only`: pairs where the figure holds under A only / under B only (McNemar's discordant
# pairs); `human`: pairs where both grids' codes come from human labels.
CHANGE_HEADERS = [
    "figure",
    "pairs",
    "A",
    "B",
    "B − A, pp [95% CI]",
    "A/B only",
    "McNemar p",
    "human",
]


def change_rows(comparison: Mapping[str, Any]) -> list[list[str]]:
    """One row per figure: both rates, the change with its interval, the discordant pairs."""
    rows = []
    for change in comparison["changes"]:
        test = change["mcnemar"]
        rows.append(
            [
                SHORT_TITLES[change["figure"]],
                str(change["pairs"]),
                percent(change["rate_a"]),
                percent(change["rate_b"]),
                f"{points(change['change'])} {interval_percent(change['interval'])}".strip(),
                f"{change['a_only']} / {change['b_only']}",
                p_value(test["p_exact"]),
                str(change["pairs_human"]),
            ]
        )
    return rows


MOVED_HEADERS = ["prompt", "grid A", "label A", "grid B", "label B"]


def moved_rows(items: Sequence[Mapping[str, Any]], limit: int | None = None) -> list[list[str]]:
    """A moved prompt per row; a label's source is `(h)` human or `(p)` proposal."""
    rows = []
    for item in items[:limit]:
        prompt = item["prompt"]
        if len(prompt) > PROMPT_SHOWN:
            prompt = prompt[: PROMPT_SHOWN - 1] + "…"
        rows.append(
            [
                prompt,
                str(item["grid_a"]),
                f"{item['category_a']} ({'h' if item['human_a'] else 'p'})",
                str(item["grid_b"]),
                f"{item['category_b']} ({'h' if item['human_b'] else 'p'})",
            ]
        )
    return rows


# ---------------------------------------------------------------- forest plots


def _forest_rows(report: Mapping[str, Any]) -> list[tuple[str, int, Mapping[str, Any]]]:
    """(figure, model number, rate) per plotted row: each figure's models one under another."""
    models = [model for model in report["models"] if model["group"] is None]
    return [
        (figure, number, _rate(model, figure))
        for figure in SHOWN_FIGURES
        for number, model in enumerate(models, start=1)
    ]


def model_legend(report: Mapping[str, Any]) -> list[str]:
    """`1 model-name` per model, as the plots number them."""
    models = [model for model in report["models"] if model["group"] is None]
    return [f"{number} {model['model']}" for number, model in enumerate(models, start=1)]


def _row_positions(count: int, per_group: int) -> list[float]:
    """Plot rows from the top down, with a blank row between figures."""
    return [-(index + index // per_group) for index in range(count)]


def terminal_rates(
    report: Mapping[str, Any], *, width: int = PLOT_WIDTH, colour: bool = True
) -> str:
    """Each figure's rate per model with its 95% interval; models drawn by their number.

    Empty for more than PLOTTED_MODELS models: one digit each is all a row has room for.
    """
    rows = _forest_rows(report)
    models = len(model_legend(report))
    if not rows or models > PLOTTED_MODELS:
        return ""
    positions = _row_positions(len(rows), models)
    figure = _forest_figure(width, positions)
    for (_, number, rate), y in zip(rows, positions, strict=True):
        if rate["rate"] is not None:
            _forest_row(figure, rate["rate"], rate["interval"], y, str(number % 10))
    figure.ruler("y").ticks(
        [y for (_, number, _), y in zip(rows, positions, strict=True) if number == 1],
        [SHORT_TITLES[key] for key in SHOWN_FIGURES],
    )
    figure.title("rate per model, % (digit: the model, line: its 95% interval)")
    return built_plot(figure, colour)


def _forest_figure(width: int, positions: Sequence[float]) -> Any:
    """A plot with one text row per position: rows span the positions and each gets its own."""
    span = int(-min(positions)) + 1
    figure = plot_figure(width, span + 4)  # title, two borders and the x ticks take four
    figure.ruler("y").lim(-span + 0.5, 0.5)
    return figure


def _forest_row(
    figure: Any, value: float, interval: Sequence[float] | None, y: float, marker: str
) -> None:
    """One estimate (in %) at row `y`: its interval as a line, the value as `marker`."""
    low, high = interval or (value, value)
    figure.draw(figure.segment([100 * low, 100 * high], [y, y], marker="-"))
    figure.draw(figure.signal([100 * value], [y], marker=marker))


def terminal_changes(
    comparison: Mapping[str, Any], *, width: int = PLOT_WIDTH, colour: bool = True
) -> str:
    """Each figure's change from A to B with its 95% interval, against a dotted zero."""
    changes = [c for c in comparison["changes"] if c["figure"] in SHOWN_FIGURES]
    drawn = [c for c in changes if c["change"] is not None]
    if not drawn:
        return ""
    positions = [-index for index in range(len(changes))]
    figure = _forest_figure(width, positions)
    figure.draw(figure.segment([0.0, 0.0], [0.5, -len(changes) + 0.5], marker=":"))
    for change, y in zip(changes, positions, strict=True):
        if change["change"] is not None:
            _forest_row(figure, change["change"], change["interval"], y, "o")
    figure.ruler("y").ticks(positions, [SHORT_TITLES[c["figure"]] for c in changes])
    figure.title("change in rate, B minus A, percentage points (o), with its 95% interval")
    return built_plot(figure, colour)


def svg_rates(report: Mapping[str, Any], width: int = 640) -> str:
    """The terminal's rate plot as SVG: each model its colour, x in percent."""
    rows = _forest_rows(report)
    if not rows:
        return ""
    legend = model_legend(report)
    positions = _row_positions(len(rows), len(legend))
    labels = [
        (y, TITLES[key]) for (key, number, _), y in zip(rows, positions, strict=True) if number == 1
    ]
    top = max((r["interval"] or [0, r["rate"] or 0])[1] for _, _, r in rows)
    parts, to_pixels = svg_frame(
        width,
        40 + 14 * (len(rows) + len(SHOWN_FIGURES)),
        (0.0, 100 * max(top, 0.05)),
        (min(positions) - 0.5, 0.5),
        y_labels=labels,
        left=170,
    )
    for (_, number, rate), y in zip(rows, positions, strict=True):
        if rate["rate"] is not None:
            colour = CURVE_COLOURS[(number - 1) % len(CURVE_COLOURS)]
            parts += _svg_forest_row(to_pixels, rate["rate"], rate["interval"], y, colour)
    parts.append("</svg>")
    entries = [
        (text, CURVE_COLOURS[index % len(CURVE_COLOURS)]) for index, text in enumerate(legend)
    ]
    return "".join(parts) + svg_legend(entries)


def svg_changes(comparison: Mapping[str, Any], width: int = 640) -> str:
    """The terminal's change plot as SVG, in percentage points, zero dashed."""
    changes = [c for c in comparison["changes"] if c["figure"] in SHOWN_FIGURES]
    drawn = [c for c in changes if c["change"] is not None]
    if not drawn:
        return ""
    ends = [100 * v for c in drawn for v in (c["interval"] or [c["change"], c["change"]])]
    bottom = -len(changes) + 0.5
    parts, to_pixels = svg_frame(
        width,
        60 + 22 * len(changes),
        (min(0.0, *ends), max(0.0, *ends)),
        (bottom, 0.5),
        y_labels=[(-index, TITLES[c["figure"]]) for index, c in enumerate(changes)],
        left=170,
    )
    parts.append(svg_polyline([to_pixels(0.0, 0.5), to_pixels(0.0, bottom)], "#888", dash="4,4"))
    for index, change in enumerate(changes):
        if change["change"] is not None:
            parts += _svg_forest_row(
                to_pixels, change["change"], change["interval"], -index, "#1f77b4"
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_forest_row(
    to_pixels: Any, value: float, interval: Sequence[float] | None, y: float, colour: str
) -> list[str]:
    """One estimate (in %) at row `y`: its interval as a line, the value as a dot."""
    low, high = interval or (value, value)
    x, py = to_pixels(100 * value, y)
    return [
        svg_polyline([to_pixels(100 * low, y), to_pixels(100 * high, y)], colour),
        f'<circle cx="{x}" cy="{py}" r="3.5" fill="{colour}"/>',
    ]


# ---------------------------------------------------------------- HTML


def html_report(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page: overview, each model's figures, the comparison, plots."""
    comparison = report.get("comparison")
    title = "memgrid memorization report"
    if comparison:
        title += f": {comparison['model_a']} vs {comparison['model_b']}"
    sections = [
        f"<h1>{html_text(title)}</h1>",
        f"<p>{html_text(method_text(report))}</p>",
        *(f'<p class="warning">warning: {html_text(w)}</p>' for w in report["warnings"]),
    ]
    for scheme, heading in OVERVIEW_TITLES.items():
        sections.append(f"<h2>{html_text(heading)}</h2>")
        sections.append(html_table(overview_headers(scheme), overview_rows(report, scheme)))
    if comparison:
        sections += _html_comparison(comparison)
    plot = svg_rates(report)
    if plot:
        sections += ["<h2>Rates (%) with their 95% intervals</h2>", plot]
    for model in report["models"]:
        sections += [
            f"<h2>{html_text(model_title(model))}</h2>",
            f"<p>{html_text(model_summary(model))}</p>",
            html_table(RATE_HEADERS, rate_rows(model)),
        ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html_text(title)}</title><style>{HTML_STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def comparison_heading(comparison: Mapping[str, Any]) -> str:
    return (
        f"A = {comparison['model_a']}, B = {comparison['model_b']}: "
        f"{comparison['prompts']} prompts with a grid under both"
    )


def _html_comparison(comparison: Mapping[str, Any]) -> list[str]:
    sections = [
        "<h2>Paired comparison</h2>",
        f"<p>{html_text(comparison_heading(comparison))}</p>",
        html_table(CHANGE_HEADERS, change_rows(comparison)),
        "<h3>Change, B minus A, in percentage points, with its 95% interval</h3>",
        svg_changes(comparison),
    ]
    for key, words in (
        ("memorized_under_a_only", "Memorized under A, not under B"),
        ("memorized_under_b_only", "Memorized under B, not under A"),
    ):
        items = comparison[key]
        sections.append(f"<h3>{words}: {len(items)} prompts</h3>")
        if items:
            sections.append(html_table(MOVED_HEADERS, moved_rows(items)))
    return sections
