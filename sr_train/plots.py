"""Pictures of training runs, drawn with matplotlib's Agg renderer (no display needed): figures,
and their PNG bytes for the caller to write atomically:
- `run_figure`/`run_curves`: RUN/curves.png, training loss (log scale) and validation PSNR/SSIM
  against bicubic;
- `compare_figure`/`compare_curves`: `sr-train runs --plot`, several runs' validation curves together.
Both read metrics.jsonl rows (`sr_train.run_files.read_metrics`).
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from srdata.jsonio import is_finite_number

LOSS_TERMS = ("l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake")  # drawn beside `loss` when there are several
PANEL_SIZE = (4.6, 3.6)  # inches per panel
DPI = 100


def series(history: list[dict], key: str, positive: bool = False) -> tuple[list[int], list[float]]:
    """(iterations, values) of `key` in metrics rows, finite (and > 0 when `positive`) values only."""
    points = [(r["iter"], r[key]) for r in history if is_finite_number(r.get(key)) and (r[key] > 0 or not positive)]
    return [p[0] for p in points], [p[1] for p in points]


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _panels(count: int) -> tuple[Figure, list]:
    figure = Figure(figsize=(PANEL_SIZE[0] * count, PANEL_SIZE[1]), layout="constrained")
    axes = figure.subplots(1, count)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, list(axes)


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, color="grey")


def run_curves(history: list[dict], title: str = "") -> bytes:
    """`run_figure` as PNG bytes."""
    return png(run_figure(history, title))


def run_figure(history: list[dict], title: str = "") -> Figure:
    """Loss terms (log scale) | val PSNR with bicubic's | val SSIM with bicubic's, against iteration."""
    figure, (loss_ax, psnr_ax, ssim_ax) = _panels(3)
    if title:
        figure.suptitle(title)
    loss_ax.set(title="training loss", ylabel="loss (log scale)", yscale="log")
    terms = [key for key in LOSS_TERMS if series(history, key, positive=True)[0]]
    for key in ["loss"] + (terms if len(terms) > 1 else []):  # one term alone is the loss itself
        x, y = series(history, key, positive=True)
        if x:
            loss_ax.plot(x, y, label=key, linewidth=1.2 if key == "loss" else 0.9)
    if loss_ax.lines:
        loss_ax.legend(fontsize="small")
    else:
        _no_data(loss_ax)
    for ax, metric, unit in ((psnr_ax, "psnr", "PSNR (dB)"), (ssim_ax, "ssim", "SSIM")):
        ax.set(title=f"validation {metric.upper()}", ylabel=unit)
        x, y = series(history, f"val_{metric}")
        bx, by = series(history, f"bicubic_{metric}")
        if x:
            ax.plot(x, y, marker="o", markersize=3, label="model")
        if bx:
            ax.plot(bx, by, linestyle="--", color="grey", label="bicubic")
        elif any(r.get(f"bicubic_{metric}", 0) is None for r in history):  # null in metrics.jsonl: infinite
            ax.plot([], [], linestyle="--", color="grey", label="bicubic: infinite (an image upscales exactly)")
        if x or bx:
            ax.legend(fontsize="small")
        else:
            _no_data(ax)
    return figure


def compare_curves(runs: list[tuple[str, list[dict]]]) -> bytes:
    """`compare_figure` as PNG bytes."""
    return png(compare_figure(runs))


def compare_figure(runs: list[tuple[str, list[dict]]]) -> Figure:
    """Validation PSNR and SSIM of each (name, metrics rows) run on shared axes; bicubic dashed, once
    when every run has the same (the same val images), else per run in its colour."""
    figure, axes = _panels(2)
    for ax, metric, unit in zip(axes, ("psnr", "ssim"), ("PSNR (dB)", "SSIM")):
        ax.set(title=f"validation {metric.upper()}", ylabel=unit)
        baseline_key = f"bicubic_{metric}"
        baselines = {name: series(history, baseline_key)[1][-1] for name, history in runs
                     if series(history, baseline_key)[1]}
        shared = len(set(baselines.values())) == 1
        for name, history in runs:
            x, y = series(history, f"val_{metric}")
            if x:
                line, = ax.plot(x, y, marker="o", markersize=3, label=name)
                if name in baselines and not shared:
                    ax.plot(*series(history, baseline_key), linestyle="--", color=line.get_color(), alpha=0.6,
                            label=f"{name}: bicubic")
        if shared:
            ax.axhline(next(iter(baselines.values())), linestyle="--", color="grey", label="bicubic")
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            _no_data(ax)
    return figure
