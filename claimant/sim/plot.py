"""The comparison chart, as SVG written by hand (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from claimant.sim.runner import SimResult

COLOURS = {"legacy": "#d62728", "claimant": "#1f77b4"}
PANELS = (
    ("build_failures_from_races", "build failures from races"),
    ("retries", "reschedules (failed builds retried)"),
    ("placements_per_s", "placements per second"),
    ("p99_ms", "p99 request latency (ms)"),
)
W, H = 300, 220  # one panel
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 28, 36


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10.0 ** (len(str(int(v))) - 1)  # a float power: int ** int is Any to mypy
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= v:
            return step * mag
    return v


def _panel(
    x0: int, metric: str, title: str, runs: dict[str, list[SimResult]], levels: Sequence[int]
) -> list[str]:
    out = [f'<g transform="translate({x0},0)">']
    out.append(
        f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="12">{escape(title)}</text>'
    )
    top = _nice_max(max((float(getattr(r, metric)) for rs in runs.values() for r in rs), default=1))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(i: int) -> float:
        return PAD_L + (pw * i / (len(levels) - 1) if len(levels) > 1 else pw / 2)

    def py(v: float) -> float:
        return PAD_T + ph - ph * v / top

    out.append(
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>'
    )
    for frac in (0, 0.5, 1):
        y = py(top * frac)
        out.append(
            f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{top * frac:g}</text>"
        )
    for i, level in enumerate(levels):
        out.append(
            f'<text x="{px(i):.1f}" y="{H - PAD_B + 14}" text-anchor="middle" font-size="10">'
            f"{level}</text>"
        )
    out.append(
        f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="10">'
        "concurrent schedulers</text>"
    )
    for mode, rs in runs.items():
        by_level = {r.schedulers: float(getattr(r, metric)) for r in rs}
        pts = [(px(i), py(by_level[lv])) for i, lv in enumerate(levels) if lv in by_level]
        colour = COLOURS.get(mode, "#333")
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    out.append("</g>")
    return out


def comparison_svg(runs: dict[str, list[SimResult]], caption: str = "") -> str:
    levels = sorted({r.schedulers for rs in runs.values() for r in rs})
    width = W * len(PANELS)
    height = H + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for i, (metric, title) in enumerate(PANELS):
        out += _panel(i * W, metric, title, runs, levels)
    x = 12
    for mode in runs:
        colour = COLOURS.get(mode, "#333")
        out.append(f'<rect x="{x}" y="{H + 10}" width="14" height="4" fill="{colour}"/>')
        out.append(f'<text x="{x + 18}" y="{H + 16}" font-size="11">{escape(mode)}</text>')
        x += 90
    if caption:
        out.append(f'<text x="{x + 10}" y="{H + 16}" font-size="10">{escape(caption)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_plot(path: str, runs: dict[str, list[SimResult]], caption: str = "") -> None:
    if path.lower().endswith(".svg"):
        with open(path, "w") as f:
            f.write(comparison_svg(runs, caption))
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from claimant.model import InvalidInput

        raise InvalidInput(
            f"{path}: PNG needs matplotlib (not installed); write an .svg instead"
        ) from exc
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2))
    for ax, (metric, title) in zip(axes, PANELS, strict=True):
        for mode, rs in runs.items():
            rs = sorted(rs, key=lambda r: r.schedulers)
            ax.plot(
                [r.schedulers for r in rs],
                [getattr(r, metric) for r in rs],
                marker="o",
                label=mode,
                color=COLOURS.get(mode),
            )
        ax.set_xscale("log", base=2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("concurrent schedulers")
    axes[0].legend()
    if caption:
        fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
