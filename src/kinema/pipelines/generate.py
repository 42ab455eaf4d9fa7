"""`kinema generate` and `kinema.generate`: load a model once, generate clips, write them with a provenance record.

Prompts reach a model that declares a closed vocabulary (model_index.json "vocabulary", the Shapes models)
through the scene planner (kinema.text): the caption it understands is generated, and the result keeps the
Scene (``result.scenes``) saying how each attribute was read and which words it could not draw.
``raw_prompt=True`` gives the prompt to the model as written.

Seed rule: clip i of a batch made with seed S uses seed S + i; a prompts file's line i (counting from
0, blank lines included) uses S + i. So `kinema generate --prompts F --seed S`, `kinema generate "<line
i>" --seed S+i` and `kinema evaluate --model M --prompts F --seed S` give the same frames for line i,
whatever the batch size.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
import torch

from kinema.device import resolve_device, resolve_dtype
from kinema.hub import DEFAULT_MODEL, open_model
from kinema.io import Provenance, read_video, write_video
from kinema.io.image import read_image
from kinema.pipelines import contract_of, load_pipeline
from kinema.pipelines.common import Callback, VideoPipeline, check_seed
from kinema.text import Scene, plan, split_shots

FORMATS = ("mp4", "webm", "gif", "png")


@dataclass
class GenerateResult:
    """One generated clip: its frames, how it was made, and where it was written (if it was)."""

    frames: np.ndarray  # uint8 (f, h, w, 3)
    prompt: str
    seed: int
    model: str
    options: dict[str, Any] = field(default_factory=dict)  # every pipeline option as used
    image: str | None = None  # the first frame's file, for image-to-video from a file
    seconds: float = 0.0  # sampling time, without model loading
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    scenes: list[Scene] = field(default_factory=list)  # how the prompt was read: one per shot; caption = what the model was given
    preview: Path | None = None  # the last step preview's GIF, where it was kept (keep_preview)
    setup: dict[str, Any] = field(default_factory=dict)  # what was done to the loaded model (LoRAs, step cache, quantization): pipe.load_record()

    @property
    def caption(self) -> str:
        """What the model was given: the planner's caption(s), or the prompt as written."""
        return "; ".join(s.caption for s in self.scenes) if self.scenes else self.prompt

    @property
    def provenance(self) -> Provenance:
        extra = {k: v for k, v in self.options.items() if k != "preview_every"}
        extra.update(self.setup)
        if self.image is not None:
            extra["image"] = self.image
        planned = any(s.choices for s in self.scenes)  # the model declares a vocabulary and the planner ran
        unplaced = [w for s in self.scenes for w in s.unplaced]
        if unplaced:
            extra["unplaced"] = unplaced
        if len(self.scenes) > 1:
            extra["shots"] = [s.caption for s in self.scenes]
        return Provenance(model=self.model, seed=self.seed, prompt=self.prompt or None, caption=self.caption if planned else None, extra=extra)

    def save(self, path: str | os.PathLike, format: Literal["mp4", "webm", "gif", "png"] | None = None, overwrite: bool = False) -> Path:
        """Write the clip (mp4, webm, gif or a folder of PNGs) with its provenance record; returns the path."""
        target, fmt = output_target(path, format, overwrite)
        self.path = write_video(target, self.frames, fps=self.options.get("fps", 8.0), provenance=self.provenance,
                                overwrite=overwrite, format=fmt)
        return self.path

    def __repr__(self) -> str:
        f, h, w, _ = self.frames.shape
        where = f", path='{self.path}'" if self.path else ""
        caption = f", caption={self.caption!r}" if self.caption != self.prompt else ""
        return (f"GenerateResult({f} frames at {w}x{h}, prompt={self.prompt!r}{caption}, seed={self.seed}, model={self.model!r}{where}, "
                f"{self.seconds:.2f} s)")


def output_target(out: str | os.PathLike, fmt: str | None, overwrite: bool) -> tuple[Path, str]:
    """output_path, refusing a target that exists (a dangling symlink too) unless ``overwrite``: checked
    before any work; the atomic write checks again."""
    path, fmt = output_path(out, fmt)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite to replace it)")
    return path, fmt


def output_path(out: str | os.PathLike, fmt: str | None) -> tuple[Path, str]:
    """Settle the format (from --format or the suffix) and the path (a folder for png)."""
    out = Path(out)
    fmt = fmt or (out.suffix.lstrip(".").lower() or "mp4")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "png" and out.suffix.lower() != f".{fmt}":
        out = out.with_suffix(f".{fmt}") if out.suffix else out.parent / f"{out.name}.{fmt}"
    return out, fmt


@contextlib.contextmanager
def terminal_progress(show: bool | None = None, label: str = "sampling") -> Iterator[Callback | None]:
    """A step callback drawing a progress bar (step/total, elapsed, ETA) on stderr, when stderr is a
    terminal (or ``show`` is True); None otherwise. The bar redraws on its own clock, so it moves on a
    slow machine too, and disappears when done."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("steps"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda step, total, _preview: bar.update(task, completed=step, total=total)


def _load(model: str | os.PathLike | None, device: str, dtype: str | None, progress: bool | Callback | None,
          check: tuple[list[str], bool, dict[str, Any]] | None = None, memory: Any = None, lora: Any = None,
          cache: str | None = None, quantize: str | None = None) -> VideoPipeline:
    """load_pipeline, with a spinner naming the model on a terminal (loading takes seconds on a slow machine).

    ``check`` (prompts, whether an image is given, options) is checked against the model's contract
    first, from its configs alone: a wrong call fails before the weights (and the text encoder) load; so do
    a LoRA file that is not there or a scale that is not a number, a step cache of another name, and a quantization
    mode of another name (or torchao missing).
    """
    from kinema.pipelines.diffusers_backend import check_cache, lora_list
    from kinema.pipelines.quantize import check_quantize

    lora = lora_list(lora) or None
    check_cache(cache)
    check_quantize(quantize, need_package=True)
    folder = open_model(model)
    resolve_dtype(dtype, resolve_device(device))  # a wrong --device or --dtype fails here, before loading too
    if check is not None:
        contract_of(folder).check_call(*check, folder.name)
    show = sys.stderr.isatty() if progress is None else progress is True
    if not show:
        return load_pipeline(folder, device=device, dtype=dtype, memory=memory, lora=lora, cache=cache, quantize=quantize)
    from rich.console import Console

    with Console(stderr=True).status(f"loading {folder.name}"):
        return load_pipeline(folder, device=device, dtype=dtype, memory=memory, lora=lora, cache=cache, quantize=quantize)


def preview_path(out: str | os.PathLike, format: str | None = None) -> Path:
    """Where ``generate(..., preview=True)`` writes its preview: ``<output stem>.preview.gif`` beside the output."""
    path, _ = output_path(out, format)
    return path.with_name(f"{path.stem if path.suffix else path.name}.preview.gif")


class PreviewWriter:
    """A step callback writing each preview it is handed as a looping GIF, atomically: the file at ``path``
    is always a whole preview, the last one, whenever the run stops.

    One palette for the whole clip (Pillow's fast octree): 12 ms for 16 frames of 64x64 (32 ms for noise) where
    write_video's adaptive palette per frame takes 200-240 ms, more than a latent preview itself (1.3 ms for
    shapes-ldm), at 34.3 dB against its 36.0 (benchmarks/latent_preview.py).
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path, self.fps = Path(path), fps
        self.step: int | None = None  # the step of the preview on disk (None: none written yet)
        self.total = 0

    def __call__(self, step: int, total: int, preview: np.ndarray | None) -> None:
        if preview is None:
            return
        from PIL import Image

        from kinema.io.atomic import atomic_path

        frames = np.ascontiguousarray(preview[0])  # (f, h, w, 3)
        palette = Image.fromarray(frames.reshape(-1, frames.shape[2], 3)).quantize(256, method=Image.Quantize.FASTOCTREE)
        images = [Image.fromarray(frame).quantize(palette=palette) for frame in frames]
        with atomic_path(self.path, overwrite=True) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(1000 / self.fps)), loop=0)
        self.step, self.total = step, total

    def remove(self) -> None:
        if self.step is not None:
            self.path.unlink(missing_ok=True)
            self.step = None


def _planner_encoder(pipe: VideoPipeline):
    """The pipeline's own MiniLM when it sits on the CPU in float32 (the numbers the planner was tuned with); else None (the planner loads one)."""
    encoder = getattr(pipe, "text_encoder", None)
    weight = getattr(getattr(getattr(encoder, "bert", None), "word", None), "weight", None)
    if weight is not None and weight.device.type == "cpu" and weight.dtype == torch.float32:
        return encoder
    return None


def clip_fps(pipe: VideoPipeline, options: dict[str, Any]) -> float:
    """The frame rate a call's clip is written at: the fps given, else the model's default, else 8."""
    rate = pipe.contract().option("fps")
    return float(options.get("fps") or (rate.default if rate else None) or 8.0)


def understand(pipe: VideoPipeline, prompt: str, raw_prompt: bool = False, shots: bool = False, fps: float | None = None) -> list[Scene]:
    """How a pipeline's model will read a prompt: one Scene (one per shot with ``shots``), planned onto the
    vocabulary the model declares; the prompt unchanged for a model without one or with ``raw_prompt``. ``fps``: the
    clip's frame rate, for speeds given per second ("16 px/s")."""
    vocabulary = None if raw_prompt else getattr(pipe, "vocabulary", None)
    encoder = _planner_encoder(pipe) if vocabulary is not None else None
    if shots:
        return split_shots(prompt, vocabulary, encoder=encoder, fps=fps)
    return [plan(prompt, vocabulary, encoder=encoder, fps=fps)]


def _image_input(image: str | os.PathLike | np.ndarray | None) -> tuple[np.ndarray | None, str | None]:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image), str(image)
    return image, None


def generate(
    prompt: str = "",
    out: str | os.PathLike | None = None,
    *,
    model: str | os.PathLike | None = None,
    pipeline: VideoPipeline | None = None,
    image: str | os.PathLike | np.ndarray | None = None,
    seed: int = 0,
    device: str = "auto",
    dtype: str | None = None,
    format: Literal["mp4", "webm", "gif", "png"] | None = None,
    overwrite: bool = False,
    progress: bool | Callback | None = None,
    raw_prompt: bool = False,
    shots: bool = False,
    memory: Any = None,
    lora: Any = None,
    cache: str | None = None,
    quantize: str | None = None,
    preview: bool | str | os.PathLike = False,
    keep_preview: bool = False,
    **options: Any,
) -> GenerateResult:
    """Generate one clip; write it to ``out`` when given (a folder of PNGs for format png).

    ``model``: a built-in name (default shapes-t2v), a model folder or a training run folder, or a
    loaded ``pipeline``. ``image``: a first frame (a file or uint8 (h, w, 3)). ``options``: what the
    model's pipeline declares (``kinema models`` lists them), e.g. num_inference_steps (or steps),
    guidance_scale (or guidance), num_frames (or frames), fps. ``progress``: a step callback, True or
    False for a terminal progress bar (default: when stderr is a terminal).

    A model that declares a vocabulary gets the planner's caption for the prompt (``result.scenes[0]``
    says how it was read; words it cannot draw are warnings); ``raw_prompt`` gives it the prompt as
    written. ``shots``: the prompt describes several shots (kinema.text.split_shots); each is generated
    with the same seed and the clip holds them one after the other (the image, if any, starts the first).
    ``memory``: diffusers pipelines only, how the model is loaded to fit the device
    (kinema.pipelines.diffusers_backend.MemorySettings: offloading, VAE tiling, decode chunk). ``lora``: diffusers
    pipelines only, LoRAs to load (paths, 'PATH:scale' or (path, scale) pairs); ``cache``: a diffusers transformer's
    step cache (first-block, pab, faster or taylorseer); ``quantize``: any model, "int8" stores its networks' Linear
    weights in int8 (torchao; a diffusers pipeline's denoiser only). All three are recorded in the clip's provenance.

    ``preview`` (with the option ``preview_every=N``): write the preview the pipeline makes every N steps as a
    GIF, replaced atomically at each one: True puts it beside ``out`` (``preview_path``: clip.mp4 ->
    clip.preview.gif), a path puts it there. It is removed once the clip is written, unless ``keep_preview``;
    an interrupt (KeyboardInterrupt) keeps it and says where it is in the re-raised interrupt's message.
    """
    check_seed(seed)
    path = fmt = None
    if out is not None:
        path, fmt = output_target(out, format, overwrite)
    if preview is not False and not options.get("preview_every"):
        raise ValueError("a preview file needs previews: give preview_every (--preview-every N)")
    if keep_preview and preview is False:
        raise ValueError("keep_preview (--keep-preview) keeps the preview file: give preview_every (--preview-every N)")
    if preview is True and out is None:
        raise ValueError("preview=True writes beside the output: give out, or a path for the preview")
    preview_file = None if preview is False else preview_path(out, format) if preview is True else Path(preview)
    first, image_name = _image_input(image)
    if pipeline is not None and (lora or cache or quantize):
        raise ValueError("lora, cache and quantize are applied when the model loads: give them to load_pipeline, not with a loaded pipeline")
    pipe = pipeline or _load(model, device, dtype, progress, check=([prompt], first is not None, options), memory=memory, lora=lora, cache=cache,
                             quantize=quantize)
    fps = clip_fps(pipe, options)
    scenes = understand(pipe, prompt, raw_prompt, shots, fps)
    notes = [note for scene in scenes for note in scene.warnings(getattr(pipe, "source", "this model"))]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    writer = None
    if preview_file is not None:
        writer = PreviewWriter(preview_file, fps)
    try:
        outputs = []
        with contextlib.ExitStack() as stack:
            callback = progress if callable(progress) else stack.enter_context(terminal_progress(progress))
            if writer is not None:
                callback = _both(writer, callback)
            start = time.perf_counter()
            for k, scene in enumerate(scenes):
                outputs.append(pipe(scene.caption, image=first if k == 0 else None, seed=seed, callback=callback, **options))
            seconds = time.perf_counter() - start
        frames = np.concatenate([o.frames[0] for o in outputs]) if len(outputs) > 1 else outputs[0].frames[0]
        result = GenerateResult(frames=frames, prompt=prompt, seed=seed, model=str(model or DEFAULT_MODEL), options=outputs[0].options,
                                image=image_name, seconds=seconds, warnings=notes + [w for o in outputs for w in o.warnings], scenes=scenes,
                                setup=pipe.load_record())
        if path is not None:
            result.save(path, fmt, overwrite=overwrite)
    except KeyboardInterrupt as interrupt:
        if writer is None or writer.step is None:
            raise
        raise KeyboardInterrupt(f"stopped by the user; the last preview (step {writer.step} of {writer.total}) is {writer.path}") from interrupt
    except BaseException:
        if writer is not None:
            writer.remove()  # a failed run leaves nothing behind; only an interrupt keeps its preview
        raise
    if writer is not None and keep_preview and writer.step is not None:
        result.preview = writer.path
    elif writer is not None:
        writer.remove()
    return result


def _both(first: Callback, then: Callback | None) -> Callback:
    def callback(step: int, total: int, preview: np.ndarray | None) -> None:
        first(step, total, preview)
        if then is not None:
            then(step, total, preview)

    return callback


def read_prompts(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(zero-based line index, prompt) for every non-empty line of a prompts file (UTF-8 text)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"prompts file {path} is a folder; give a text file with one prompt per line")
    if not path.is_file():
        raise FileNotFoundError(f"prompts file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"prompts file {path} is not UTF-8 text (one prompt per line); is it a binary file?") from None
    if "\x00" in text:
        raise ValueError(f"prompts file {path} holds NUL bytes: a binary file, not one prompt per line")
    lines = text.splitlines()
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
    pipeline: VideoPipeline | None = None,
    device: str = "auto",
    dtype: str | None = None,
    image: str | os.PathLike | np.ndarray | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    on_done: Callable[[GenerateResult], None] | None = None,
    progress: bool | None = None,
    raw_prompt: bool = False,
    memory: Any = None,
    lora: Any = None,
    cache: str | None = None,
    quantize: str | None = None,
    preview: bool = False,
    keep_preview: bool = False,
    **options: Any,
) -> list[GenerateResult]:
    """One clip per prompt line, named by its line index (0000.mp4, ...; 0000/ of PNG frames for png)
    with seed ``seed + index``. Without a prompts file, ``count`` clips of ``prompt`` (by default none:
    unconditional models), 0000 to count - 1.

    The model is loaded once. Under several processes each takes every world-size-th line.
    ``skip_existing``: a clip already in ``out_dir`` is kept (read back, not regenerated), so an
    interrupted batch continues where it stopped; each clip is written whole or not at all.
    Each prompt goes through the planner as in ``generate`` (``raw_prompt`` turns it off); ``memory``, ``lora``, ``cache``, ``quantize``, ``preview``
    (each clip's preview beside it, 0000.preview.gif) and ``keep_preview`` as there.
    """
    check_seed(seed)
    if preview and not options.get("preview_every"):
        raise ValueError("a preview file needs previews: give preview_every (--preview-every N)")
    if keep_preview and not preview:
        raise ValueError("keep_preview (--keep-preview) keeps the preview file: give preview_every (--preview-every N)")
    if skip_existing and overwrite:
        raise ValueError("give --skip-existing (keep the clips there) or --overwrite (replace them), not both")
    if (prompts is None) == (count is None):
        raise ValueError("give a prompts file or a count, not both" if prompts is not None else "give a prompts file or a count")
    if count is not None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        items = [(index, prompt) for index in range(count)]
    else:
        items = read_prompts(prompts) if isinstance(prompts, (str, os.PathLike)) else list(prompts)
    rank, world = this_process()
    first, image_name = _image_input(image)
    if pipeline is not None and (lora or cache or quantize):
        raise ValueError("lora, cache and quantize are applied when the model loads: give them to load_pipeline, not with a loaded pipeline")
    pipe = pipeline or _load(model, device, dtype, progress, check=([text for _, text in items] or [""], first is not None, options),
                             memory=memory, lora=lora, cache=cache, quantize=quantize)
    fps = clip_fps(pipe, options)
    results = []
    with terminal_progress(progress) as callback:
        for index, text in items[rank::world]:
            name = Path(out_dir) / (f"{index:04d}" if format == "png" else f"{index:04d}.{format}")
            if skip_existing and name.exists():
                result = GenerateResult(frames=read_video(name).frames, prompt=text, seed=seed + index, model=str(model or DEFAULT_MODEL), path=name,
                                        scenes=understand(pipe, text, raw_prompt, fps=fps))
                results.append(result)
                if on_done:
                    on_done(result)
                continue
            result = generate(text, name, seed=seed + index, format=format, model=model, pipeline=pipe, image=first,
                              overwrite=overwrite, progress=callback or False, raw_prompt=raw_prompt, preview=preview,
                              keep_preview=keep_preview, **options)
            result.image = image_name
            results.append(result)
            if on_done:
                on_done(result)
    return results


def generate_clips(
    prompts: str | os.PathLike | Sequence[str],
    model: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    batch_size: int = 1,
    pipeline: VideoPipeline | None = None,
    device: str = "auto",
    dtype: str | None = None,
    raw_prompt: bool = False,
    **options: Any,
) -> tuple[list[np.ndarray], list[str]]:
    """Clips in memory for a prompts file (line i: seed + i) or a list (item i: seed + i): (frames, captions),
    a caption being what the model was given (the planner's, as `kinema generate` does; the prompt with ``raw_prompt``).

    For evaluating a model on the fly, without writing (and lossily encoding) videos first. With
    ``batch_size`` 1 (the default; on a CPU as fast per clip as 8) the frames are bit for bit those of
    `kinema generate` for the same line and seed; larger batches draw the same noise but batched float
    math can move a few values by one grey level.
    """
    items = read_prompts(prompts) if isinstance(prompts, (str, os.PathLike)) else list(enumerate(prompts))
    if not items:
        raise ValueError("no prompts to generate from")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    pipe = pipeline or _load(model, device, dtype, False, check=([text for _, text in items], False, options))
    fps = clip_fps(pipe, options)
    items = [(index, understand(pipe, text, raw_prompt, fps=fps)[0].caption) for index, text in items]
    clips = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        generators = [torch.Generator().manual_seed(seed + index) for index, _ in chunk]
        clips.extend(pipe([text for _, text in chunk], generator=generators, **options).frames)
    return clips, [text for _, text in items]
