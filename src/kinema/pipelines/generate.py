"""`kinema generate`: load a model once, generate clips, write them with a provenance record."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from kinema.hub import DEFAULT_MODEL, model_class, resolve_model
from kinema.io import Provenance, write_video
from kinema.io.image import read_image

FORMATS = ("mp4", "webm", "gif", "png")


@dataclass
class GenerateResult:
    path: Path
    frames: np.ndarray  # uint8 (f, h, w, 3)
    seconds: float  # sampling time, without model loading
    warnings: list[str] = field(default_factory=list)


def load_pipeline(model: str | os.PathLike | None = None, device: str = "cpu", scheduler: str | None = None):
    """The pipeline for a built-in name, a model folder or a training run folder."""
    folder = resolve_model(model)
    cls = model_class(folder)
    if cls == "VideoUNet":
        from kinema.pipelines.text2video import Text2VideoPipeline

        return Text2VideoPipeline.from_pretrained(folder, device=device, scheduler=scheduler)
    if cls == "VideoGenerator":
        if scheduler is not None:
            raise ValueError(f"{folder} holds a GAN, which samples in one pass: it takes no scheduler")
        from kinema.pipelines.gan import GANPipeline

        return GANPipeline.from_pretrained(folder, device=device)
    raise ValueError(f"{folder} holds a {cls or 'model of unknown class'}, which `kinema generate` cannot drive yet")


def needs_prompt(model: str | os.PathLike | None = None) -> bool:
    """Whether the model needs a prompt (or a first frame) to generate: False only for unconditional GANs."""
    config = json.loads((resolve_model(model) / "config.json").read_text())
    return not (config.get("model_class") == "VideoGenerator" and config.get("condition", "none") == "none")


def output_path(out: str | os.PathLike, fmt: str | None) -> tuple[Path, str]:
    """Settle the format (from --format or the suffix) and the path (a folder for png)."""
    out = Path(out)
    fmt = fmt or (out.suffix.lstrip(".").lower() or "mp4")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "png" and out.suffix.lower() != f".{fmt}":
        out = out.with_suffix(f".{fmt}") if out.suffix else out.parent / f"{out.name}.{fmt}"
    return out, fmt


def generate(
    prompt: str = "",
    out: str | os.PathLike = "video.mp4",
    *,
    image: str | os.PathLike | np.ndarray | None = None,
    negative: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
    guidance_cutoff: float | None = None,
    frames: int | None = None,
    fps: float | None = None,
    format: Literal["mp4", "webm", "gif", "png"] | None = None,
    model: str | os.PathLike | None = None,
    pipeline=None,
    overwrite: bool = False,
    progress: Callable[[int, int, np.ndarray | None], None] | None = None,
) -> GenerateResult:
    """Generate one clip and write it to ``out`` (a folder of PNGs for format png)."""
    path, fmt = output_path(out, format)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite to replace it)")
    pipe = pipeline or load_pipeline(model)
    first = read_image(image) if isinstance(image, (str, os.PathLike)) else image
    start = time.perf_counter()
    result = pipe(
        prompt, negative_prompt=negative, image=first, num_frames=frames, num_inference_steps=steps,
        guidance_scale=guidance, guidance_cutoff=guidance_cutoff, generator=torch.Generator().manual_seed(seed), callback=progress,
    )
    seconds = time.perf_counter() - start
    clip = result.frames[0]
    provenance = Provenance(
        model=str(model or DEFAULT_MODEL), seed=seed, prompt=prompt or None,
        extra={k: v for k, v in {"negative_prompt": negative, "steps": steps, "guidance": guidance,
                                 "guidance_cutoff": guidance_cutoff,
                                 "image": str(image) if isinstance(image, (str, os.PathLike)) else None}.items() if v is not None},
    )
    write_video(path, clip, fps=fps or pipe.config.fps, provenance=provenance, overwrite=overwrite, format=fmt)
    return GenerateResult(path=path, frames=clip, seconds=seconds, warnings=result.warnings)


def read_prompts(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(zero-based line index, prompt) for every non-empty line of a prompts file."""
    lines = Path(path).read_text().splitlines()
    prompts = [(i, line.strip()) for i, line in enumerate(lines) if line.strip()]
    if not prompts:
        raise ValueError(f"{path} has no prompts (one per line)")
    return prompts


def this_process() -> tuple[int, int]:
    """(rank, world size) under `accelerate launch` / torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def generate_batch(
    prompts: str | os.PathLike | Sequence[tuple[int, str]] | None,
    out_dir: str | os.PathLike,
    *,
    count: int | None = None,
    prompt: str = "",
    seed: int = 0,
    format: Literal["mp4", "webm", "gif", "png"] = "mp4",
    model: str | os.PathLike | None = None,
    overwrite: bool = False,
    on_done: Callable[[GenerateResult], None] | None = None,
    **options,
) -> list[GenerateResult]:
    """One clip per prompt line, named by its line index (0000.mp4, ...; 0000/ of PNG frames for png)
    with seed ``seed + index``. Without a prompts file, ``count`` clips of ``prompt`` (by default none:
    unconditional models), 0000 to count - 1.

    The model is loaded once. Under several processes each takes every world-size-th line.
    """
    if (prompts is None) == (count is None):
        raise ValueError("give a prompts file or a count, not both" if prompts is not None else "give a prompts file or a count")
    if count is not None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        items = [(index, prompt) for index in range(count)]
    else:
        items = read_prompts(prompts) if isinstance(prompts, (str, os.PathLike)) else list(prompts)
    rank, world = this_process()
    pipe = load_pipeline(model)
    results = []
    for index, text in items[rank::world]:
        name = Path(out_dir) / (f"{index:04d}" if format == "png" else f"{index:04d}.{format}")
        result = generate(text, name, seed=seed + index, format=format, model=model, pipeline=pipe, overwrite=overwrite, **options)
        results.append(result)
        if on_done:
            on_done(result)
    return results


def generate_clips(
    prompts: str | os.PathLike | Sequence[str],
    model: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    batch_size: int = 8,
    **options,
) -> tuple[list[np.ndarray], list[str]]:
    """Clips in memory for a prompts file or list (seed + index each, batched): (frames, prompts).

    For evaluating a model on the fly, without writing (and lossily encoding) videos first.
    """
    texts = [p for _, p in read_prompts(prompts)] if isinstance(prompts, (str, os.PathLike)) else list(prompts)
    if not texts:
        raise ValueError("no prompts to generate from")
    pipe = load_pipeline(model)
    clips = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        out = pipe(chunk, generator=torch.Generator().manual_seed(seed + start), **options)
        clips.extend(out.frames)
    return clips, texts
