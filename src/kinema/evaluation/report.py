"""Evaluation reports: report.json, and report.html with tables, a real-vs-generated frame grid and a PSNR plot.

The HTML is one self-contained file (the grid is an inline base64 PNG, the plot inline SVG drawn
here), so it can be mailed or attached to an issue as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from kinema.io.atomic import atomic_path
from kinema.io.grid import frame_grid
from kinema.io.image import write_image

GRID_COLUMNS = 8
_MIN_THUMB = 96  # small frames (Shapes are 64 px) are enlarged to at least this height, pixel for pixel


def to_json(report: dict[str, Any]) -> str:
    """JSON text of a report; infinite and NaN values (not JSON) become the strings "inf", "-inf", "nan"."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    return json.dumps(clean(report), indent=2, allow_nan=False) + "\n"


def _thumbnails(video: np.ndarray, size: tuple[int, int], columns: int) -> np.ndarray:
    """``columns`` frames evenly spaced over the video, each resized to size (h, w): (columns, h, w, 3)."""
    picks = np.linspace(0, len(video) - 1, columns).round().astype(int)
    frames = [video[t] if video[t].shape[:2] == size else np.asarray(Image.fromarray(video[t]).resize(size[::-1], Image.BILINEAR))
              for t in picks]  # fmt: skip
    return np.stack(frames)


def comparison_grid(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], columns: int = GRID_COLUMNS) -> np.ndarray:
    """One image: a row per pair, the real video's frames on the left and the generated one's on the right.

    Generated frames are resized to the real frames' size if they differ; small frames are enlarged.
    """
    if not real or len(real) != len(fake):
        raise ValueError(f"a comparison grid needs pairs of videos, got {len(real)} real and {len(fake)} generated")
    size = np.asarray(real[0]).shape[1:3]
    columns = min(columns, min(len(v) for v in [*real, *fake]))
    left = frame_grid([_thumbnails(np.asarray(v), size, columns) for v in real], num_columns=columns)
    right = frame_grid([_thumbnails(np.asarray(v), size, columns) for v in fake], num_columns=columns)
    gap = np.full((left.shape[0], 12, 3), 255, np.uint8)
    grid = np.concatenate([left, gap, right], axis=1)
    scale = max(1, math.ceil(_MIN_THUMB / size[0]))
    return np.kron(grid, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else grid


def _png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def line_plot_svg(values: Sequence[float], title: str, y_label: str, width: int = 640, height: int = 260) -> str:
    """A line plot of values against frame index as inline SVG; infinite values (identical frames) are marked, not drawn."""
    left, right, top, bottom = 56, 16, 28, 40
    finite = [v for v in values if math.isfinite(v)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'font-family="sans-serif" font-size="11" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>']  # fmt: skip
    if not finite:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">every frame is identical (PSNR infinite)</text></svg>')
        return "".join(parts)
    lo, hi = min(finite), max(finite)
    pad = max((hi - lo) * 0.1, 0.5)
    lo, hi = math.floor(lo - pad), math.ceil(hi + pad)
    n = len(values)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for k in range(5):  # horizontal grid lines and y ticks
        v = lo + (hi - lo) * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')  # fmt: skip
    step = max(1, math.ceil(n / 16))
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{i}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">frame</text>'
                 f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" transform="rotate(-90 14 {top + plot_h / 2})">'
                 f"{html.escape(y_label)}</text>")  # fmt: skip
    # one polyline per run of finite values; infinite points become a marker on the top edge
    run: list[str] = []
    for i, v in enumerate([*values, float("nan")]):
        if i < n and math.isfinite(v):
            run.append(f"{x(i):.1f},{y(v):.1f}")
            continue
        if run:
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
            parts += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="#1f77b4"/>' for p in run]
            run = []
        if i < n:
            parts.append(f'<text x="{x(i):.1f}" y="{top + 10}" text-anchor="middle" fill="#d62728">&#8734;</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "\u221e" if value > 0 else "-\u221e"
        return f"{value:.{digits}f}"
    return str(value)


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Plain-text rows (metric, generated, real, note) of the computed metrics, for HTML and terminals."""
    metrics, rows = report["metrics"], []
    if "fvd" in metrics:
        m = metrics["fvd"]
        rows.append(("FVD (I3D Kinetics-400 logits; lower is better)", _fmt(m["value"], 2), "",
                     f"{m['num_real']} real vs {m['num_fake']} generated; weights {m['weights']} ({m['port']})"))  # fmt: skip
    if "fd_shapes" in metrics:
        m = metrics["fd_shapes"]
        rows.append(("FD-Shapes (Shapes classifier features, NOT FVD; lower is better)", _fmt(m["value"], 3), "",
                     f"{m['num_real']} real vs {m['num_fake']} generated"))  # fmt: skip
    if "psnr" in metrics:
        m = metrics["psnr"]
        note = f"{m['identical_frames']} identical frames left out of the mean" if m["identical_frames"] else "mean over all frames"
        rows.append(("PSNR (dB; higher is closer)", _fmt(m["mean"], 2), "", note))
    if "ssim" in metrics:
        rows.append(("SSIM (higher is closer)", _fmt(metrics["ssim"]["mean"], 4), "", "7x7 window, mean over frames"))
    if "flicker" in metrics:
        m = metrics["flicker"]
        rows.append(("Temporal flicker (VBench; 1 = static)", _fmt(m["fake"], 4), _fmt(m["real"], 4), "1 - mean |frame difference| / 255"))
    if "acd" in metrics:
        m = metrics["acd"]
        rows.append(("ACD (RGB 0-255; lower keeps colour)", _fmt(m["fake"]["acd"], 3), _fmt(m["real"]["acd"], 3),
                     f"measured on {m['fake']['num_measured']}/{m['fake']['num_videos']} generated videos"))  # fmt: skip
    return rows


def shapes_rows(shapes: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Plain-text rows (measure, generated, real) of the Shapes checker; real is empty without real labels."""
    fake, real = shapes["fake"], shapes.get("real")
    rows = [(f"{name} accuracy", _fmt(acc, 3), _fmt(real["accuracy"].get(name), 3) if real else "")
            for name, acc in fake["accuracy"].items()]  # fmt: skip
    for key, label in (("present_rate", "object present (frames)"), ("single_blob_rate", "single blob (frames)"),
                       ("mean_color_drift", "colour drift (RGB 0-255)"), ("mean_size_drift", "size drift")):  # fmt: skip
        rows.append((label, _fmt(fake[key], 3), _fmt(real[key], 3) if real else ""))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td:nth-child(2), td:nth-child(3) { text-align: right; font-variant-numeric: tabular-nums; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 1em; margin: 0.5em 0; }
.grid img { width: 100%; image-rendering: pixelated; }
.grid .labels { display: flex; } .grid .labels div { flex: 1; text-align: center; font-weight: bold; }
"""


def render_html(report: dict[str, Any], grid: np.ndarray | None = None) -> str:
    """The report as one self-contained HTML page."""
    metrics = report["metrics"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Kinema evaluation</title>",
             f"<style>{_STYLE}</style></head><body><h1>Kinema evaluation</h1>",
             f"<p>Generated: <code>{html.escape(report['fake']['source'])}</code> ({report['fake']['num_videos']} videos); "
             f"real: <code>{html.escape(report['real']['source'])}</code> ({report['real']['num_videos']} videos)"
             + (f"; pairs matched by {report['pairing']}" if report.get("pairing") else "")
             + f". Kinema {html.escape(str(report.get('kinema_version', '')))}.</p>"]  # fmt: skip
    parts += [f"<div class='warn'>{html.escape(w)}</div>" for w in report.get("warnings", [])]
    rows = summary_rows(report)
    if rows:
        parts.append("<h2>Metrics</h2>" + _table(("metric", "generated", "real", "note"), rows))
    if "shapes" in metrics:
        parts.append("<h2>Shapes checker</h2>" + _table(("measure", "generated", "real"), shapes_rows(metrics["shapes"])))
    if grid is not None:
        parts.append("<h2>Frames</h2><div class='grid'><div class='labels'><div>real</div><div>generated</div></div>"
                     f"<img alt='real (left) and generated (right) frames' src='data:image/png;base64,{_png_base64(grid)}'></div>")  # fmt: skip
    if "psnr" in metrics:
        parts.append("<h2>PSNR per frame</h2>" + line_plot_svg(metrics["psnr"]["per_frame"], "PSNR per frame, mean over pairs", "dB"))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(
    report: dict[str, Any],
    out: str | os.PathLike,
    real: Sequence[np.ndarray] = (),
    fake: Sequence[np.ndarray] = (),
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write OUT/report.json, OUT/report.html and, given videos to show, OUT/grid.png; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html"}
    grid = comparison_grid(real, fake) if len(real) else None
    if grid is not None:
        paths["grid"] = write_image(out / "grid.png", grid, overwrite=overwrite)
    with atomic_path(paths["json"], overwrite=overwrite) as tmp:
        tmp.write_text(to_json(report))
    with atomic_path(paths["html"], overwrite=overwrite) as tmp:
        tmp.write_text(render_html(report, grid), encoding="utf-8")
    return paths
