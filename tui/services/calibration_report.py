"""Pictures and tables of a calibration run: terminal plots (plotext) and one HTML file.

Both draw from the run's stored summary (CalibrationResult.to_dict()), so a run looks the
same in the terminal, in the report and in the app. The HTML is self-contained: the plots
are inline SVG drawn here (matplotlib is not a dependency), the tables plain HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from memgrid.core.calibration import THRESHOLD_SIGNALS
from memgrid.core.display_text import printable
from memgrid.core.taxonomy import Category

PLOT_WIDTH = 72
PLOT_HEIGHT = 16
ROC_CURVES = 4  # signals drawn on one ROC plot: the best and the fitted ones first
# One colour per human label, the same in the terminal and the report.
CATEGORY_COLOURS = {
    Category.EXPLICIT.value: "#1f77b4",
    Category.IMPLICIT.value: "#9467bd",
    Category.UNINTENDED.value: "#d62728",
    Category.NONE.value: "#2ca02c",
}
CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


# ---------------------------------------------------------------- what to draw


def plotted_signals(summary: Mapping[str, Any]) -> list[str]:
    """The signals worth a histogram: those a threshold was fitted on, then the best one."""
    fitted = [
        THRESHOLD_SIGNALS[key]
        for key, how in sorted(summary.get("threshold_fits", {}).items())
        if key in THRESHOLD_SIGNALS and how.startswith(THRESHOLD_SIGNALS[key])
    ]
    names = [*fitted, summary.get("best_signal")]
    available = {h["signal"] for h in summary.get("histograms", []) if h.get("counts")}
    return [name for name in dict.fromkeys(names) if name in available]


def threshold_marks(summary: Mapping[str, Any], signal: str) -> list[tuple[str, float]]:
    """(label, value) lines to draw on a signal's histogram: current and fitted thresholds."""
    marks = []
    for key, name in THRESHOLD_SIGNALS.items():
        if name != signal:
            continue
        current, fitted = summary["current"].get(key), summary["fitted"].get(key)
        if current is not None:
            marks.append((f"{key} now {current:.3g}", float(current)))
        if fitted is not None and fitted != current:
            marks.append((f"{key} fitted {fitted:.3g}", float(fitted)))
    if not marks:
        fit = _signal_fit(summary, signal)
        if fit and fit.get("threshold") is not None:
            marks.append((f"{summary['objective']} cut {fit['threshold']:.3g}", fit["threshold"]))
    return marks


def roc_signals(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The signal fits to draw on the ROC plot: the best first, then by AUC."""
    fits = [f for f in summary.get("signals", []) if f.get("roc")]
    fits.sort(key=lambda f: (f["signal"] != summary.get("best_signal"), -(f["auc"] or 0.0)))
    return fits[:ROC_CURVES]


def _signal_fit(summary: Mapping[str, Any], signal: str) -> dict[str, Any] | None:
    return next((f for f in summary.get("signals", []) if f["signal"] == signal), None)


def _histogram(summary: Mapping[str, Any], signal: str) -> dict[str, Any] | None:
    return next((h for h in summary.get("histograms", []) if h["signal"] == signal), None)


def _centres(edges: Sequence[float]) -> list[float]:
    return [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]


# ---------------------------------------------------------------- terminal


def plot_figure(width: int, height: int) -> Any:
    import plotext as plt  # deferred: only plots need it

    figure = plt.figure
    figure.clear()
    plt.terminal.limit(False, False)
    figure.plot_size(width, height)
    figure.theme("simple")
    return figure


def terminal_histogram(
    summary: Mapping[str, Any],
    signal: str,
    *,
    width: int = PLOT_WIDTH,
    height: int = PLOT_HEIGHT,
    colour: bool = True,
) -> str:
    """Counts of a signal per human label, with its thresholds as vertical lines.

    Each series is drawn with its own letter (e, i, u, n for the human labels; `:` for
    the current threshold, `|` for the fitted one), so the plot reads without colour.
    """
    histogram = _histogram(summary, signal)
    if histogram is None or not histogram["counts"]:
        return ""
    figure = plot_figure(width, height)
    centres = _centres(histogram["edges"])
    top = max(max(counts) for counts in histogram["counts"].values()) or 1
    legend = []
    for category, counts in histogram["counts"].items():
        marker = category[0]
        figure.draw(figure.signal(centres, counts, marker=marker).lines())
        legend.append(f"{marker} human: {category}")
    for label, value in threshold_marks(summary, signal):
        marker = ":" if " now " in label else "|"
        figure.draw(figure.signal([value, value], [0, top], marker=marker).lines())
        legend.append(f"{marker} {label}")
    figure.title(f"{signal}: grids per human label")
    return built_plot(figure, colour) + legend_lines(legend, width)


def terminal_roc(
    summary: Mapping[str, Any],
    *,
    width: int = PLOT_WIDTH,
    height: int = PLOT_HEIGHT,
    colour: bool = True,
) -> str:
    """ROC curves (memorized vs not) of the best signals, numbered, over the chance diagonal."""
    fits = roc_signals(summary)
    if not fits:
        return ""
    figure = plot_figure(width, height)
    figure.draw(figure.signal([0.0, 1.0], [0.0, 1.0], marker="·").lines())
    legend = []
    for number, fit in enumerate(fits, start=1):
        xs, ys = zip(*fit["roc"], strict=True)
        figure.draw(figure.signal(list(xs), list(ys), marker=str(number)).lines())
        legend.append(f"{number} {fit['signal']} (AUC {fit['auc']:.3f})")
    figure.title("ROC, memorized vs not (x: FPR, y: TPR)")
    return built_plot(figure, colour) + legend_lines(legend, width)


def legend_lines(entries: Sequence[str], width: int) -> str:
    """The legend under a plot, wrapped to the plot's width."""
    lines, line = [], ""
    for entry in entries:
        if line and len(line) + 3 + len(entry) > width:
            lines.append(line)
            line = ""
        line = f"{line}   {entry}" if line else f"  {entry}"
    return "\n".join([*lines, line]) + "\n"


def built_plot(figure: Any, colour: bool) -> str:
    figure.legend(False)
    return str(figure.build().string(colorless=not colour))


# ---------------------------------------------------------------- HTML


def svg_frame(
    width: int,
    height: int,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    *,
    y_labels: Sequence[tuple[float, str]] | None = None,
    left: int = 48,
) -> tuple[list[str], Any]:
    """An SVG canvas with axes and ticks, and a function mapping data to pixels.

    `y_labels` (value, text) replace the numeric y ticks: the rows of a forest plot.
    """
    right, top, bottom = 12, 12, 32
    (x0, x1), (y0, y1) = x_range, y_range
    x1 = x1 if x1 > x0 else x0 + 1.0
    y1 = y1 if y1 > y0 else y0 + 1.0

    def to_pixels(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return round(px, 2), round(py, 2)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}" fill="none" stroke="#999"/>',
    ]
    for step in range(5):
        fraction = step / 4
        x_value, y_value = x0 + fraction * (x1 - x0), y0 + fraction * (y1 - y0)
        px, _ = to_pixels(x_value, y0)
        _, py = to_pixels(x0, y_value)
        # The last x label ends at its tick: centred, it would run past the right edge.
        anchor = "end" if step == 4 else "middle"
        parts.append(
            f'<text x="{px}" y="{height - bottom + 14}" text-anchor="{anchor}">{x_value:.3g}</text>'
        )
        if y_labels is None:
            parts.append(
                f'<text x="{left - 4}" y="{py + 4}" text-anchor="end">{y_value:.3g}</text>'
            )
    for y_value, text in y_labels or ():
        _, py = to_pixels(x0, y_value)
        parts.append(
            f'<text x="{left - 4}" y="{py + 4}" text-anchor="end">{html_text(text)}</text>'
        )
    return parts, to_pixels


def svg_polyline(points: Sequence[tuple[float, float]], colour: str, dash: str = "") -> str:
    coordinates = " ".join(f"{x},{y}" for x, y in points)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2"{dashed}/>'
    )


def svg_legend(entries: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<span style="color:{colour}">&#9632;</span> {html_text(text)} &nbsp; '
        for text, colour in entries
    )
    return f'<div class="legend">{items}</div>'


def svg_histogram(
    summary: Mapping[str, Any], signal: str, width: int = 640, height: int = 260
) -> str:
    """The histogram of one signal per human label as inline SVG, thresholds dashed."""
    histogram = _histogram(summary, signal)
    if histogram is None or not histogram["counts"]:
        return ""
    edges = histogram["edges"]
    top = max(max(counts) for counts in histogram["counts"].values()) or 1
    marks = threshold_marks(summary, signal)
    # The axis reaches every threshold drawn, so no line falls outside the frame.
    values = [edges[0], edges[-1], *(value for _, value in marks)]
    parts, to_pixels = svg_frame(width, height, (min(values), max(values)), (0.0, float(top)))
    legend = []
    for category, counts in histogram["counts"].items():
        steps = []
        for index, count in enumerate(counts):
            steps += [to_pixels(edges[index], count), to_pixels(edges[index + 1], count)]
        colour = CATEGORY_COLOURS.get(category, "#333")
        parts.append(svg_polyline(steps, colour))
        legend.append((f"human: {category}", colour))
    for index, (label, value) in enumerate(marks):
        colour = "#444" if "now" in label else "#000"
        dash = "6,4" if "now" in label else "2,2"
        parts.append(
            svg_polyline([to_pixels(value, 0.0), to_pixels(value, float(top))], colour, dash)
        )
        legend.append((label + (" (dashed)" if index == 0 else " (dotted)"), colour))
    parts.append("</svg>")
    return "".join(parts) + svg_legend(legend)


def svg_roc(summary: Mapping[str, Any], width: int = 420, height: int = 380) -> str:
    fits = roc_signals(summary)
    if not fits:
        return ""
    parts, to_pixels = svg_frame(width, height, (0.0, 1.0), (0.0, 1.0))
    parts.append(svg_polyline([to_pixels(0.0, 0.0), to_pixels(1.0, 1.0)], "#bbb", "4,4"))
    legend = []
    for fit, colour in zip(fits, CURVE_COLOURS, strict=False):
        parts.append(svg_polyline([to_pixels(x, y) for x, y in fit["roc"]], colour))
        legend.append((f"{fit['signal']} (AUC {fit['auc']:.3f})", colour))
    parts.append("</svg>")
    return "".join(parts) + svg_legend(legend)


def number_text(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def interval_text(value: Any, interval: Sequence[float] | None, digits: int = 3) -> str:
    """`0.912 [0.88, 0.94]` (the interval one digit shorter), or the value alone."""
    if value is None:
        return "–"
    if not interval:
        return number_text(value, digits)
    short = max(digits - 1, 1)
    return f"{number_text(value, digits)} [{interval[0]:.{short}f}, {interval[1]:.{short}f}]"


def signal_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """Signal table rows: best separating first, then by AUC."""
    fits = sorted(
        summary.get("signals", []),
        key=lambda f: (f["signal"] != summary.get("best_signal"), -(f["auc"] or -1.0)),
    )
    return [
        [
            fit["signal"],
            f"{fit['positives']}/{fit['negatives']}",
            interval_text(fit["auc"], fit["auc_interval"]),
            interval_text(fit["tpr_at_1pct_fpr"], fit["tpr_interval"]),
            number_text(fit["average_precision"]),
            interval_text(fit["threshold"], fit["threshold_interval"]),
            fit["note"] or "",
        ]
        for fit in fits
    ]


SIGNAL_HEADERS = ["signal", "mem/not", "AUC [CI]", "TPR@1%FPR [CI]", "AP", "cut [CI]", "note"]
THRESHOLD_HEADERS = ["threshold", "current", "fitted [CI]", "fitted on"]


def threshold_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    fits = summary.get("threshold_fits", {})
    intervals = summary.get("threshold_intervals", {})
    keys = sorted(set(summary["current"]) | set(summary["fitted"]))
    return [
        [
            key,
            number_text(summary["current"].get(key), 4),
            interval_text(summary["fitted"].get(key), intervals.get(key), 4),
            fits.get(key, "kept"),
        ]
        for key in keys
    ]


def confusion_rows(evaluation: Mapping[str, Any]) -> list[list[str]]:
    """Rows: human category; columns: predicted category, then recall and precision."""
    categories = evaluation["categories"]
    rows = []
    for index, category in enumerate(categories):
        rows.append(
            [
                category,
                *(str(count) for count in evaluation["matrix"][index]),
                interval_text(
                    evaluation["recall"][category], evaluation["recall_intervals"][category], 2
                ),
                interval_text(
                    evaluation["precision"][category],
                    evaluation["precision_intervals"][category],
                    2,
                ),
            ]
        )
    return rows


def confusion_headers(evaluation: Mapping[str, Any]) -> list[str]:
    return ["human \\ proposed", *evaluation["categories"], "recall [CI]", "precision [CI]"]


def html_text(value: object) -> str:
    """A user's string (a model name, a prompt) as HTML shows it: markup escaped, and
    control characters escaped as the terminal shows them, so that a report saved to a file
    or written to /dev/stdout carries no terminal escape sequence."""
    return html.escape(printable(str(value)))


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html_text(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html_text(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


HTML_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.warning { color: #a40; }
.legend { font-size: 12px; margin-bottom: 1.5em; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
"""


def html_report(runs: Sequence[Mapping[str, Any]]) -> str:
    """One self-contained HTML page of one or more runs (one per model with --by-model)."""
    labels = ", ".join(
        f"run {run.get('run_id', '')} of {run.get('threshold_set', '')}" for run in runs
    )
    title = f"memgrid calibration: {labels}"
    body = "\n".join(_html_run(run) for run in runs)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html_text(title)}</title><style>{HTML_STYLE}</style></head><body>"
        f"{body}</body></html>\n"
    )


def _html_run(run: Mapping[str, Any]) -> str:
    """The sections of one run: thresholds, signals, confusion matrices and plots."""
    summary = run
    title = f"Calibration run {run.get('run_id', '')} of {run.get('threshold_set', '')}"
    sections = [
        f"<h1>{html_text(title)}</h1>",
        f"<p>{summary['label_count']} labelled grids; objective {html_text(summary['objective'])}; "
        f"bootstrap 95% intervals from {summary['bootstraps']} resamples, seed {summary['seed']}"
        + (f"; model {html_text(summary['model'])}" if summary.get("model") else "")
        + (f"; accepted as {html_text(run['accepted'])}" if run.get("accepted") else "")
        + "</p>",
    ]
    sections += [f'<p class="warning">warning: {html_text(w)}</p>' for w in summary["warnings"]]
    if summary.get("refused"):  # the terminal says it too: the fit made the labels worse
        sections.append(
            f'<p class="warning">Not accepted: {html_text(summary["refused"])}; '
            "the current thresholds stay active.</p>"
        )
    sections.append("<h2>Thresholds</h2>")
    sections.append(html_table(THRESHOLD_HEADERS, threshold_rows(summary)))
    best = summary.get("best_signal")
    sections.append(
        "<h2>Signals: memorized vs not</h2>"
        + (f"<p>Best separating signal: <b>{html_text(best)}</b></p>" if best else "")
    )
    sections.append(html_table(SIGNAL_HEADERS, signal_rows(summary)))
    for name in ("before", "after"):
        evaluation = summary.get(name)
        if evaluation:
            sections.append(
                f"<h2>Confusion matrix {name} (macro-F1 "
                f"{interval_text(evaluation['macro_f1'], evaluation['macro_f1_interval'])})</h2>"
            )
            sections.append(html_table(confusion_headers(evaluation), confusion_rows(evaluation)))
    plots = [
        (f"{signal}: grids per human label", svg_histogram(summary, signal))
        for signal in plotted_signals(summary)
    ]
    plots.append(
        ("ROC, memorized vs not (x: false positive rate, y: true positive rate)", svg_roc(summary))
    )
    sections.append("<h2>Plots</h2><div class='plots'>")
    sections += [
        f"<div><h3>{html_text(caption)}</h3>{plot}</div>" for caption, plot in plots if plot
    ]
    sections.append("</div>")
    return "\n".join(sections)
