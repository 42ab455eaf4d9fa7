"""The `kinema` command line: each command parses options and calls one function of the package.

Every command reports a wrong input as one line naming it (exit 2) and a failure as one line (exit 1),
never a traceback unless asked (--debug or KINEMA_DEBUG=1); an interrupt exits with 130.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, List, NoReturn, Optional

import click
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import kinema

app = typer.Typer(
    name="kinema",
    help="Kinema: generate, train and evaluate video models.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
console = Console(soft_wrap=True)  # long paths in messages stay whole, copy-pasteable
DEBUG_ENV = "KINEMA_DEBUG"
_debug = False


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input is wrong (exit 2); anything else is a failure (exit 1)."""
    from kinema.training.checkpoint import CorruptCheckpoint

    return (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, OverflowError,
            yaml.YAMLError, CorruptCheckpoint)


def _fail(error: BaseException, code: int) -> NoReturn:
    message = " ".join(str(error).split()) or type(error).__name__  # one line, whatever the message held
    console.print(f"[red]error:[/red] {escape(message)}")
    if _debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        console.print(escape("".join(traceback.format_exception(error))))
    elif code == 1:  # a failure, not a wrong input: the traceback may help a bug report
        console.print(f"[dim](--debug or {DEBUG_ENV}=1 shows the traceback)[/dim]")
    raise typer.Exit(code)


def command(group: typer.Typer, *args, **kwargs) -> Callable:
    """``group.command(...)`` whose errors become one line and an exit code instead of a traceback."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*a, **k):
            try:
                return fn(*a, **k)
            except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
                raise
            except KeyboardInterrupt as error:
                console.print(f"[yellow]interrupted:[/yellow] {escape(str(error)) or 'stopped by the user'}")
                raise typer.Exit(130)
            except _usage_errors() as error:
                _fail(error, 2)
            except Exception as error:  # noqa: BLE001 - a failure is reported in one line; --debug shows the rest
                _fail(error, 1)

        group.command(*args, **kwargs)(run)
        return run

    return decorate


def _positive(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a finite number > 0, got {value}")
    return value


def _threads_option():
    return typer.Option(None, "--threads", min=1, max=4096,
                        help="CPU threads (default: $KINEMA_THREADS, else $OMP_NUM_THREADS, else the cores idle right now).")


def _seed_option(help: str = "Random seed: the same seed gives the same frames; clip i of a batch uses seed + i."):
    return typer.Option(0, "--seed", min=0, help=help)  # the pipelines check the upper end (kinema.pipelines.common.check_seed)


def _threads(threads: int | None) -> None:
    from kinema.threads import configure_threads

    configure_threads(threads)


def _version(value: bool) -> None:
    if value:
        console.print(f"kinema {kinema.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help=f"Show the traceback of an error (also {DEBUG_ENV}=1)."),
) -> None:
    """Kinema: generate, train and evaluate video models."""
    global _debug
    _debug = debug


@command(app)
def generate(
    prompt: Optional[str] = typer.Argument(None, help="What the clip shows, e.g. 'a small red circle moving left slowly'."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (a folder for --format png). Default: video.<format>."),
    image: Optional[Path] = typer.Option(None, "--image", help="First frame to animate (image-to-video)."),
    negative: Optional[str] = typer.Option(None, "--negative", help="Negative prompt: what to steer away from."),
    seed: int = _seed_option(),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (default: the model's)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance scale (default: the model's)."),
    guidance_cutoff: Optional[float] = typer.Option(
        None, "--guidance-cutoff", help="Guide only this first fraction of the steps, 0..1 (default: the model's)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Sampler: dpm++, ddim, unipc or euler (default: the model's)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Token sampling temperature (transformer models; default: the model's)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample among the k most likely tokens, 0: all (transformer models)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample among the most likely tokens holding this probability (transformer models)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Number of frames (default: the model's)."),
    height: Optional[int] = typer.Option(None, "--height", help="Frame height (default: the model's)."),
    width: Optional[int] = typer.Option(None, "--width", help="Frame width (default: the model's)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate of the written video (default: the model's)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="mp4, webm, gif or png (a folder of frames)."),
    model: Optional[str] = typer.Option(None, "--model", help="Built-in name (see `kinema models`), model folder or training run folder."),
    device: str = typer.Option("auto", "--device", help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (float32 on a CPU, bfloat16 on a GPU), float32, bfloat16 or float16."),
    threads: Optional[int] = _threads_option(),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Batch mode: a file with one prompt per line."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Batch mode: folder for 0000.mp4, 0001.mp4, ..."),
    count: Optional[int] = typer.Option(None, "--count", min=1, help="Batch mode without a prompts file: N clips (of PROMPT, or of none for unconditional models) into --out-dir."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Batch mode: keep clips already in --out-dir (continue an interrupted batch)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    raw_prompt: bool = typer.Option(False, "--raw-prompt", help="Give the prompt to the model as written, not rewritten onto the words it was trained on."),
    shots: bool = typer.Option(False, "--shots", help="The prompt describes several shots ('A red ball rolls left. Then a blue box rises.'): one after the other in one clip."),
    offload: Optional[str] = typer.Option(None, "--offload", help="diffusers pipelines on a GPU: none, model, sequential or group (default: offload only when the estimate does not fit)."),
    vae_tiling: bool = typer.Option(False, "--vae-tiling", help="diffusers pipelines: decode in spatial tiles (less memory)."),
    decode_chunk: Optional[int] = typer.Option(None, "--decode-chunk", min=1, help="diffusers pipelines that take decode_chunk_size: frames decoded at once."),
    dry_run: bool = typer.Option(False, "--dry-run", help="diffusers pipelines: print the memory and time estimate only."),
    lora: Optional[List[str]] = typer.Option(
        None, "--lora", help="diffusers pipelines: a LoRA .safetensors file (or the folder save_lora_weights wrote) to load, "
        "PATH or PATH:scale (default scale 1); repeat for several. Recorded in the output's provenance."),
    cache: Optional[str] = typer.Option(
        None, "--cache", help="diffusers transformer (DiT) pipelines: reuse work between steps with one of diffusers' step caches: "
        "first-block, pab (pyramid attention broadcast), faster (FasterCache; needs --guidance > 1) or taylorseer. Faster, not identical."),
    quantize: Optional[str] = typer.Option(
        None, "--quantize", help="int8: store the weights of the model's Linear layers in int8 (torchao weight-only; a diffusers "
        "pipeline's denoiser only; convolutions stay as loaded). Less memory, close but not identical frames; not faster on a CPU. "
        "Recorded in the output's provenance. Needs torchao."),
    preview_every: Optional[int] = typer.Option(
        None, "--preview-every", help="Every N steps write a cheap preview of the clip so far to OUT's stem + .preview.gif "
        "(clip.mp4 -> clip.preview.gif), replaced at each preview; removed when the clip is written unless --keep-preview. "
        "Ctrl-C keeps it and says where it is. Latent models preview through a linear map of their VAE, fitted once per VAE "
        "and cached (~/.cache/kinema/previews; KINEMA_PREVIEW_CACHE sets the folder)."),
    keep_preview: bool = typer.Option(False, "--keep-preview", help="Keep the --preview-every GIF after the clip is written."),
) -> None:
    """Generate a video from a prompt and/or a first frame. Options a model does not take are refused,
    with the list of those it does (`kinema models NAME` shows them).

    A model trained on a closed vocabulary (the Shapes models) gets the prompt in its own words: any
    wording of the same request works, the command prints what it understood ("understood as: ...")
    and warns about what the model cannot draw. `--raw-prompt` turns this off.

    Example: `kinema generate "a small red circle moving left slowly" -o clip.mp4`

    Batch: `kinema generate --prompts prompts.txt --out-dir clips/ --seed 0` (again with `--skip-existing` to finish an interrupted one)

    Unconditional models (no prompt): `kinema generate --model shape-motion-gan --count 16 --out-dir clips/`

    diffusers pipelines (a folder diffusers saved, or a hub id): `kinema generate "a cat surfing" --model ./text-to-video-ms-1.7b --frames 16`

    with a LoRA and a step cache: `kinema generate "a cat" --model ./CogVideoX-2b --lora style.safetensors:0.8 --cache first-block`

    int8 weights (less memory): `kinema generate "a red circle moving left" --quantize int8`
    """
    from kinema.pipelines import diffusers_backend
    from kinema.pipelines import generate as gen

    _threads(threads)
    start = time.perf_counter()
    given = dict(negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance, guidance_cutoff=guidance_cutoff,
                 scheduler=scheduler, temperature=temperature, top_k=top_k, top_p=top_p, num_frames=frames, height=height, width=width,
                 fps=fps, preview_every=preview_every)
    options = {k: v for k, v in given.items() if v is not None}  # the model's defaults for the rest
    memory = diffusers_backend.MemorySettings(offload, vae_tiling, decode_chunk) if offload or vae_tiling or decode_chunk else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # result.warnings are printed below
        batch = prompts is not None or count is not None
        for line in diffusers_backend.fit_report(model, prompt=None if batch else prompt or "", image=image is not None, device=device,
                                                 dtype=dtype, memory=memory, dry_run=dry_run, lora=lora, cache=cache, quantize=quantize,
                                                 **options):
            console.print(escape(line))
        if dry_run:
            return
        if batch:
            if out_dir is None:
                raise ValueError("--prompts and --count need --out-dir")
            if prompts is not None and (count is not None or prompt):
                raise ValueError("--prompts takes its prompts from the file: give no PROMPT or --count with it")
            if shots:
                raise ValueError("--shots makes one clip of one prompt; batch mode (--prompts, --count) takes none")
            results = gen.generate_batch(
                prompts, out_dir, count=count, prompt=prompt or "", seed=seed, format=fmt or "mp4", model=model, image=image,
                device=device, dtype=dtype, overwrite=overwrite, skip_existing=skip_existing, raw_prompt=raw_prompt, memory=memory,
                lora=lora, cache=cache, quantize=quantize, preview=bool(preview_every), keep_preview=keep_preview,
                on_done=lambda r: _report_clip(r, f"{r.path}  " + (f"({r.seconds:.2f} s)" if r.seconds else "(kept: it was there)")),
                **options,
            )
            console.print(f"wrote {sum(1 for r in results if r.seconds)} videos to {out_dir} in {time.perf_counter() - start:.1f} s")
            return
        if skip_existing:
            raise ValueError("--skip-existing is for batch mode (--prompts or --count)")
        result = gen.generate(
            prompt or "", out or Path(f"video.{fmt or 'mp4'}"), model=model, image=image, seed=seed, device=device, dtype=dtype,
            format=fmt, overwrite=overwrite, raw_prompt=raw_prompt, shots=shots, memory=memory, lora=lora, cache=cache, quantize=quantize,
            preview=bool(preview_every), keep_preview=keep_preview, **options,
        )
    _report_clip(result, f"wrote {result.path}" + (f" (last step preview kept: {result.preview})" if result.preview else ""))
    console.print(f"sampling {result.seconds:.2f} s, total {time.perf_counter() - start:.2f} s")


def _report_clip(result, done: str) -> None:
    """What generate understood (when it rewrote the prompt), its warnings, then ``done``."""
    for number, scene in enumerate(result.scenes, 1):
        if scene.rewritten:
            shot = f"shot {number} " if len(result.scenes) > 1 else ""
            console.print(f"{shot}understood as: {escape(scene.caption)}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    console.print(escape(done))


@command(app)
def reconstruct(
    video: Path = typer.Argument(..., help="A video file or a folder of PNG frames."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (a folder for --format png)."),
    model: str = typer.Option("shapes-vae", "--model", help="An autoencoder: built-in name, model folder or training run folder."),
    fmt: Optional[str] = typer.Option(None, "--format", help="mp4, webm, gif or png (default: from the suffix)."),
    device: str = typer.Option("auto", "--device", help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps."),
    threads: Optional[int] = _threads_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Encode a video into the autoencoder's latent space and decode it back (other sizes are resized, with a note).

    Example: `kinema reconstruct clip.mp4 --model shapes-vae -o clip_vae.mp4`
    """
    from kinema.pipelines.autoencoder import reconstruct as run

    _threads(threads)
    result = run(video, out, model=model, format=fmt, overwrite=overwrite, device=device)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"wrote {result.path}: {len(result.frames)} frames, PSNR {result.psnr:.2f} dB against the input, {result.seconds:.2f} s")


@command(app)
def interpolate(
    a: Path = typer.Argument(..., help="Where the transition starts: a video (its last frame) or an image."),
    b: Path = typer.Argument(..., help="Where it ends: a video (its first frame) or an image."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (a folder for --format png)."),
    frames: int = typer.Option(16, "--frames", min=2, max=10_000, help="Frames of the transition, both ends included."),
    fps: Optional[float] = typer.Option(None, "--fps", callback=_positive, help="Frame rate (default: the model's)."),
    model: str = typer.Option("shapes-vae", "--model", help="An autoencoder: built-in name, model folder or training run folder."),
    fmt: Optional[str] = typer.Option(None, "--format", help="mp4, webm, gif or png (default: from the suffix)."),
    device: str = typer.Option("auto", "--device", help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps."),
    threads: Optional[int] = _threads_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Transition frames from A to B through the autoencoder's latent space.

    Example: `kinema interpolate shot1.mp4 shot2.mp4 --frames 12 -o transition.mp4`
    """
    from kinema.pipelines.autoencoder import interpolate as run

    _threads(threads)
    result = run(a, b, out, frames=frames, fps=fps, model=model, format=fmt, overwrite=overwrite, device=device)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"wrote {result.path}: {len(result.frames)} frames, {result.seconds:.2f} s")


@command(app)
def models(name: Optional[str] = typer.Argument(None, help="Show this model's kind, options and full card (a built-in name or a model folder).")) -> None:
    """List the built-in models: kind, what each takes, size and card summary.

    Example: `kinema models`   or   `kinema models shapes-t2v`
    """
    from kinema.hub import builtin_models, open_model
    from kinema.pipelines import describe_model

    if name:
        folder = open_model(name)
        kind, takes, options = describe_model(folder)
        console.print(f"[bold]{escape(folder.name)}[/bold]: {kind}; takes {takes}; {folder.size_bytes / 1e6:.1f} MB")
        for line in options:
            console.print(f"  {escape(line)}")
        if folder.vocabulary is not None:
            console.print(f"  {escape(folder.vocabulary.describe())}")
        console.print(folder.card)
        return
    found = builtin_models()
    table = Table(title="Built-in models")
    for column in ("name", "kind", "takes", "size", "about"):
        table.add_column(column, no_wrap=column in ("name", "kind", "size"))
    for folder in found:
        kind, takes, _ = describe_model(folder)
        first_sentence = folder.summary.split(". ")[0].rstrip(".") + "."
        table.add_row(folder.name, kind.replace(" + ", "\n"), takes, f"{folder.size_bytes / 1e6:.1f} MB", escape(first_sentence))
    console.print(table if found else "no built-in models shipped yet")


@command(app)
def export(
    run: Path = typer.Argument(..., help="A training run folder (its newest valid checkpoint) or one checkpoint file."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (docs/model_format.md)."),
    raw: bool = typer.Option(False, "--raw", help="Export the raw weights instead of the EMA ones."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
    sampling_only: bool = typer.Option(False, "--sampling-only", help="Leave out what only fine-tuning needs (a GAN's discriminator)."),
    half: bool = typer.Option(False, "--half", help="Store the weights in float16: half the bytes; they load into float32 models."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Export a model folder from a run's checkpoint, e.g. to sample a run mid-way.

    Example: `kinema export runs/shapes-t2v --out models/shapes-step5000` then `kinema generate "..." --model models/shapes-step5000`
    """
    from kinema.training.export import export_checkpoint

    _threads(threads)
    folder = export_checkpoint(run, out, overwrite=overwrite, ema=not raw, sampling_only=sampling_only, half=half)
    console.print(f"wrote {folder}")


@command(app)
def train(
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/diffusion/tiny.yaml."),
    set_: List[str] = typer.Option([], "--set", help="Override a config value: key.sub=value (repeatable)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'auto' (latest checkpoint in the run folder) or a checkpoint path."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: runs/<config name>)."),
    until_step: Optional[int] = typer.Option(None, "--until-step", min=0, help="Stop with a checkpoint at this step; the schedule stays that of train.max_steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", callback=_positive, help="Stop with a checkpoint after this many minutes."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Train or fine-tune a model from a config. Ctrl-C or SIGTERM stops after a checkpoint (exit 130);
    `--resume auto` continues bit for bit.

    Example: `kinema train configs/diffusion/tiny.yaml --set train.max_steps=20 --out runs/tiny`
    """
    from kinema.training import train as run_training

    _threads(threads)
    run_training(config, overrides=set_, resume=resume, out=out, until_step=until_step, time_limit=time_limit)


def _report_table(report, title: str) -> Table:
    table = Table(title=escape(title))
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, acc in report.accuracy.items():
        table.add_row(f"{name} accuracy", f"{acc:.1%}")
    table.add_row("object present (frames)", f"{report.present_rate:.1%}")
    table.add_row("single blob (frames)", f"{report.single_blob_rate:.1%}")
    table.add_row("colour drift (RGB 0-255)", f"{report.mean_color_drift:.2f}")
    table.add_row("size drift", f"{report.mean_size_drift:.3f}")
    return table


@command(app)
def info(file: Path = typer.Argument(..., help="A video file or a folder of PNG frames.")) -> None:
    """Show a video's container, codec, size, fps, frames, duration, audio and provenance.

    Example: `kinema info clip.mp4`
    """
    from kinema.io import probe

    meta = probe(file)
    table = Table(title=escape(str(file)), show_header=False)
    table.add_row("container", str(meta.container))
    table.add_row("codec", str(meta.codec))
    table.add_row("size", f"{meta.width}x{meta.height}")
    table.add_row("fps", f"{meta.fps:g}")
    table.add_row("frames", str(meta.num_frames))
    table.add_row("duration", f"{meta.duration:.3f} s")
    audio = meta.audio
    table.add_row("audio", f"{audio.codec}, {audio.sample_rate} Hz, {audio.channels} ch, {audio.duration:.3f} s" if audio else "none")
    prov = meta.provenance
    table.add_row("provenance", escape(json.dumps(prov.to_dict(), ensure_ascii=False)) if prov else "none")
    console.print(table)


dataset_app = typer.Typer(help="Render the procedural datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@command(dataset_app, "render")
def dataset_render(
    kind: str = typer.Argument(..., help="shapes (Captioned Shapes) or shape-motion (MoCoGAN's Shape Motion)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the videos, manifest.jsonl and preview.png."),
    split: str = typer.Option("train", help="train, test or heldout (heldout: shapes only)."),
    count: int = typer.Option(16, min=1, max=10_000_000, help="Number of videos."),
    resolution: int = typer.Option(64, help="64 (canonical) or 32."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Base seed: the same seed renders the same videos."),
    captions: str = typer.Option("canonical", help="canonical or varied phrasing (shapes only)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier render in OUT."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Render a Shapes dataset as mp4 files plus a manifest and a preview grid.

    Example: `kinema dataset render shapes --split test --count 8 --out shapes_test`
    """
    from rich.progress import Progress

    from kinema.data.render import render_dataset

    _threads(threads)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"rendering {kind}", total=count)
        result = render_dataset(
            kind, out, split=split, count=count, resolution=resolution, seed=seed, captions=captions,
            overwrite=overwrite, progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(f"wrote {len(result.files)} videos, {result.manifest} and {result.preview}")


@command(app)
def check(
    path: Path = typer.Argument(..., help="A video, a PNG-frame folder, or a folder Kinema wrote (a dataset render, `generate --prompts`, `demo`)."),
    caption: Optional[str] = typer.Option(None, help="The caption to check against (default: each clip's manifest row, provenance prompt or prompts.txt line)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Read shape, colour, size, direction and speed off Shapes videos and score them against their captions.

    Example: `kinema check shapes_test/`   or   `kinema check demo_output/`   or   `kinema check clip.mp4 --caption "a small red circle moving left slowly"`
    """
    from kinema.evaluation.shapes_checker import ATTRIBUTES, check_path, expected_attributes

    _threads(threads)
    result = check_path(path, caption=caption)
    if as_json:
        clips = [{"file": c.file, "caption": c.caption, "caption_from": c.source, "skipped": c.skipped} for c in result.clips]
        console.print_json(json.dumps({**result.report.to_dict(with_readings=True), "clips": clips}))
        return
    for clip in result.clips:
        name = escape(Path(clip.file).name)
        if clip.skipped:
            console.print(f"[yellow]{name}[/yellow]  skipped: {escape(clip.skipped)}")
            continue
        want = expected_attributes(clip.caption)
        got = [getattr(clip.reading, a) or "?" for a in ATTRIBUTES if a in want]
        wrong = [f"{a} {getattr(clip.reading, a) or 'none'} (wanted {want[a]})" for a in ATTRIBUTES if a in want and getattr(clip.reading, a) != want[a]]
        verdict = "[green]ok[/green]" if not wrong else "[red]" + escape("; ".join(wrong)) + "[/red]"
        console.print(f"{name}  {escape(str(clip.caption))!s} ({clip.source})  read: {escape(' '.join(got))}  {verdict}")
    console.print(_report_table(result.report, f"Shapes check: {path} ({result.report.num_videos} of {len(result.clips)} clips)"))


@command(app)
def demo(
    out: Path = typer.Option(Path("demo_output"), "--out", "-o", help="Output folder."),
    model: str = typer.Option("shapes-t2v", "--model", help="Text-to-video model: built-in name, model or run folder."),
    seed: int = _seed_option("Seed of the first clip (the others: seed + index)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo's files in OUT."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """The main job end to end (what `make demo` runs): eight prompts -> eight clips with the
    default model, tiled into grid.gif, each judged by the Shapes checker against its prompt.

    Example: `kinema demo --out demo_output`   or   `kinema demo --model runs/shapes-t2v`
    """
    from kinema.demo import run_demo

    _threads(threads)
    start = time.perf_counter()
    result = run_demo(out, model=model, seed=seed, overwrite=overwrite)
    console.print(_report_table(result.report, f"Shapes check of the clips generated by {result.model}"))
    console.print(f"wrote {len(result.files)} clips and their prompts to {out}/, animated grid {result.grid}")
    console.print(f"{result.seconds_per_clip:.2f} s per clip, done in {time.perf_counter() - start:.1f} s")


@command(app, "evaluate")
def evaluate_command(
    real: Path = typer.Option(..., "--real", help="Real videos: a folder (manifest.jsonl order, else natural file order), a manifest.jsonl or one video."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Generated videos, same kinds; paired with --real by file name, else by order."),
    model: Optional[str] = typer.Option(None, "--model", help="Instead of --fake: generate from this model (built-in name, model or run folder)..."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="...one clip per line of this file (seed + line index), checked against the line."),
    seed: int = _seed_option("Seed for --model generation: line i uses seed + i, as `kinema generate --prompts` does."),
    metrics: str = typer.Option("psnr,ssim,flicker,acd", "--metrics", help="Comma-separated: fvd, fd_shapes, psnr, ssim, flicker, acd, shapes."),
    i3d: Optional[Path] = typer.Option(None, "--i3d", help="I3D weights for fvd: i3d_pretrained_400.pt or rgb_imagenet.pt (see docs/evaluation.md)."),
    i3d_port: str = typer.Option("videogpt", "--i3d-port", help="Port the I3D weights come from: videogpt (i3d_pretrained_400.pt) or piergiaj (rgb_imagenet.pt)."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Shapes classifier model folder for fd_shapes (default: the built-in shapes-classifier)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for report.json, report.html and grid.png."),
    device: str = typer.Option("auto", "--device", help="Where the networks run: auto (a GPU when there is one), cpu, cuda, cuda:N or mps."),
    dtype: str = typer.Option("auto", "--dtype", help="--model generation precision: auto (float32 on a CPU, bfloat16 on a GPU), float32, bfloat16, float16."),
    batch_size: int = typer.Option(8, min=1, max=4096, help="Videos per network batch."),
    threads: Optional[int] = _threads_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier report in OUT."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
    raw_prompt: bool = typer.Option(False, "--raw-prompt", help="--model generation: give each prompt as written, not rewritten onto the model's words."),
) -> None:
    """Compare generated videos with real ones: FVD, FD-Shapes, PSNR, SSIM, flicker, ACD and the Shapes checks.

    Example: `kinema evaluate --real shapes_test/ --fake samples/ --metrics psnr,ssim,flicker,acd,shapes --out report/`

    On the fly: `kinema evaluate --real shapes_test/ --model shapes-t2v --prompts prompts.txt --metrics shapes,flicker`
    """
    from kinema.device import resolve_device
    from kinema.evaluation.evaluate import evaluate
    from kinema.evaluation.report import shapes_rows, summary_rows, to_json

    _threads(threads)
    device = str(resolve_device(device))
    if (fake is None) == (model is None):
        raise ValueError("give --fake VIDEOS, or --model with --prompts to generate them")
    if model is not None:
        from kinema.evaluation.evaluate import VideoSet
        from kinema.pipelines.generate import generate_clips

        if prompts is None:
            raise ValueError("--model needs --prompts FILE (one prompt per line)")
        clips, texts = generate_clips(prompts, model, seed=seed, device=device, dtype=dtype, raw_prompt=raw_prompt)
        fake = VideoSet.from_frames(clips, labels=texts, source=f"{model}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the result lists them; printed below
        result = evaluate(
            real, fake, metrics, i3d=i3d, classifier=classifier, out=out, i3d_port=i3d_port, device=device,
            batch_size=batch_size, overwrite=overwrite, progress=lambda line: console.print(f"[dim]{escape(line)}[/dim]"),
        )
    if as_json:
        console.print_json(to_json(result))
    else:
        table = Table(title=escape(f"{model or fake} against {real}"))
        for column in ("metric", "generated", "real", "note"):
            table.add_column(column, justify="right" if column in ("generated", "real") else "left")
        for row in summary_rows(result):
            table.add_row(*row)
        if "shapes" in result["metrics"]:
            for measure, generated, reference in shapes_rows(result["metrics"]["shapes"]):
                table.add_row(f"Shapes: {measure}", generated, reference, "")
        console.print(table)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if out is not None:
        console.print(f"wrote {out / 'report.json'} and {out / 'report.html'}")


if __name__ == "__main__":
    app()
