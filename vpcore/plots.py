"""DET curves and score histograms (needs matplotlib: ``pip install '.[bench]'`` from a
vpcore checkout, or ``pip install matplotlib``)."""

import numpy as np
from scipy.stats import norm

from .errors import ParameterError
from .metrics import det_curve, eer

__all__ = ["plot_det", "plot_score_histogram"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ParameterError("plots need matplotlib: pip install matplotlib "
                             "(from a vpcore checkout: pip install '.[bench]')") from None
    return plt


def plot_det(systems, path, title="DET curve"):
    """Write a DET plot (normal-deviate axes) of ``{name: (scores, labels)}`` to ``path``."""
    plt = _pyplot()
    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for name, (scores, labels) in systems.items():
        p_miss, p_fa, _ = det_curve(scores, labels)
        clip = lambda p: np.clip(p, 1e-4, 1 - 1e-4)  # noqa: E731
        ax.plot(norm.ppf(clip(p_fa)), norm.ppf(clip(p_miss)),
                label=f"{name} (EER {100 * eer(scores, labels):.2f} %)")
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf([0.0005, 0.5]))
    ax.set_ylim(norm.ppf([0.0005, 0.5]))
    ax.plot(norm.ppf([0.0005, 0.5]), norm.ppf([0.0005, 0.5]), ":", color="grey", lw=0.8)
    ax.set_xlabel("false-accept rate (%)")
    ax.set_ylabel("false-reject rate (%)")
    ax.set_title(title)
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_score_histogram(scores, labels, path, threshold=None, xlabel="score", title=None):
    """Write overlaid histograms of target and non-target scores to ``path``."""
    plt = _pyplot()
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(scores.min(), scores.max(), 60)
    ax.hist(scores[~labels], bins=bins, density=True, alpha=0.6, label="different speaker")
    ax.hist(scores[labels], bins=bins, density=True, alpha=0.6, label="same speaker")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
