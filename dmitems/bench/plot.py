"""``--plot FILE``: latency CDFs of each mode, as interactive HTML (plotly) or PNG (matplotlib).

Both libraries are optional (``pip install 'dmitems[plot]'``).  PNG goes
through matplotlib because plotly's image export needs a headless browser.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from dmitems.bench.recorder import decode_histogram
from dmitems.errors import InvalidInput

INSTALL_HINT = "pip install 'dmitems[plot]'"


def check_plot_path(path: Path) -> str:
    """The format for ``path`` (html or png), or a clear error before anything runs."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("html", "png"):
        raise InvalidInput(f"--plot {path}: the file name must end in .html or .png")
    module = "plotly" if suffix == "html" else "matplotlib"
    if importlib.util.find_spec(module) is None:
        raise InvalidInput(f"--plot {path} needs {module}, which is not installed: {INSTALL_HINT}")
    return suffix


def cdf_series(document: dict[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """For each mode and level: latency in ms against the share of requests at or below it."""
    merged: dict[str, Any] = {}
    for run in document["runs"]:
        key = f"{run['mode']} c={run['concurrency']}"
        if len(document["settings"].get("pool_sizes") or []) > 1:
            key += f" pool {run['pool_size']}"
        histogram = decode_histogram(run["histogram"])
        if key in merged:
            merged[key].add(histogram)
        else:
            merged[key] = histogram
    series = {}
    for key, histogram in merged.items():
        total = histogram.get_total_count()
        if not total:
            continue
        xs, ys = [], []
        for item in histogram.get_recorded_iterator():
            xs.append(histogram.get_highest_equivalent_value(item.value_iterated_to) / 1000)
            ys.append(item.total_count_to_this_value / total)
        series[key] = (xs, ys)
    return series


def _title(document: dict[str, Any]) -> str:
    settings = document["settings"]
    database = document["environment"]["database"]
    return (
        f"dmitems bench: {settings['target']} target, {database['backend']}, "
        f"pool {database['pool_capacity']}, {settings['load_model']} loop — latency CDF"
    )


def write_plot(document: dict[str, Any], path: Path) -> None:
    kind = check_plot_path(path)
    series = cdf_series(document)
    if kind == "html":
        import plotly.graph_objects as go

        figure = go.Figure()
        for name, (xs, ys) in series.items():
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, line_shape="hv"))
        figure.update_layout(
            title=_title(document), xaxis_title="latency (ms, log scale)",
            yaxis_title="share of requests at or below", xaxis_type="log",
        )
        figure.write_html(str(path), include_plotlyjs=True)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5.5))
    for name, (xs, ys) in series.items():
        axes.step(xs, ys, where="post", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("share of requests at or below")
    axes.set_title(_title(document), fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
