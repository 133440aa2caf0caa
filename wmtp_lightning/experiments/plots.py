"""Figures for token weights (used by the training callback and the analysis notebook)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt  # headless machines fall back to Agg on their own; notebooks keep inline
import numpy as np
from matplotlib.figure import Figure


def weight_histogram(groups: dict[str, np.ndarray], title: str = "token weights", bins: int = 40) -> Figure:
    """Overlaid histograms, e.g. {"correct": w_c, "incorrect": w_i}, on shared bins (so bar heights compare)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    filled = {name: np.asarray(v, dtype=float) for name, v in groups.items() if len(v)}
    edges = np.histogram_bin_edges(np.concatenate(list(filled.values())), bins=bins) if filled else bins
    for name, values in filled.items():
        ax.hist(values, bins=edges, alpha=0.55, label=f"{name} (n={len(values)})")
    ax.set_xlabel("weight")
    ax.set_ylabel("tokens")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def token_heatmap(
    pieces: Sequence[str],
    weights: Sequence[float],
    title: str = "",
    vmin: float = 0.1,
    vmax: float = 5.0,
    width: int = 100,
) -> Figure:
    """Code rendered token by token, each token's background coloured by its weight (log scale).

    pieces: decoded text of each token (newlines break lines); weights: one per piece.
    """
    cmap = plt.get_cmap("coolwarm")
    lo, hi = np.log(vmin), np.log(vmax)
    lines: list[list[tuple[str, float]]] = [[]]
    col = 0
    for piece, w in zip(pieces, weights):
        parts = piece.split("\n")
        for i, part in enumerate(parts):
            if i > 0:
                lines.append([])
                col = 0
            if part:
                if col + len(part) > width:
                    lines.append([])
                    col = 0
                lines[-1].append((part, float(w)))
                col += len(part)
    n = max(len(lines), 1)
    fig = plt.figure(figsize=(width * 0.085, 0.22 * n + 0.6))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, width)
    ax.set_ylim(n + 1, 0)
    ax.axis("off")
    if title:
        ax.text(0, 0.5, title, fontsize=9, fontweight="bold", va="center")
    for row, line in enumerate(lines, start=1):
        col = 0
        for text, w in line:
            shade = cmap((np.clip(np.log(max(w, 1e-9)), lo, hi) - lo) / (hi - lo))
            ax.add_patch(plt.Rectangle((col, row - 0.45), len(text), 0.9, color=shade, linewidth=0))
            ax.text(col, row, text, fontsize=8, family="monospace", va="center")
            col += len(text)
    return fig


def metric_curves(
    runs: dict[str, dict[str, Sequence[tuple[int, float]]]],
    keys: Sequence[str] = ("train/loss", "val/ce_head1"),
    title: str = "",
) -> Figure:
    """Metric histories of several runs on one axis: one colour per run, one line style per metric.

    runs: {run name: {metric: [(step, value), ...]}} (e.g. `tracking.metric_history`); a metric a
    run did not log is left out of the figure.
    """
    styles = [("-", None), ("--", "o"), (":", "s"), ("-.", "^")]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, history) in enumerate(runs.items()):
        color = f"C{i}"
        for (line, marker), key in zip(styles, keys):
            points = history.get(key) or []
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, line, marker=marker, color=color, label=f"{name} {key}", markersize=4)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(" / ".join(keys))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
