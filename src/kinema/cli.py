"""The `kinema` command line: each command parses options and calls one function of the package."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

import kinema

app = typer.Typer(
    name="kinema",
    help="Kinema: generate, train and evaluate video models.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
console = Console(soft_wrap=True)  # long paths in messages stay whole, copy-pasteable


def _version(value: bool) -> None:
    if value:
        console.print(f"kinema {kinema.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Kinema: generate, train and evaluate video models."""


@app.command()
def generate(
    prompt: Optional[str] = typer.Argument(None, help="What the clip shows, e.g. 'a small red circle moving left slowly'."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (a folder for --format png). Default: video.<format>."),
    image: Optional[Path] = typer.Option(None, "--image", help="First frame to animate (image-to-video)."),
    negative: Optional[str] = typer.Option(None, "--negative", help="Negative prompt: what to steer away from."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same frames; clip i of a batch uses seed + i."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (default: the model's)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance scale (default: the model's)."),
    guidance_cutoff: Optional[float] = typer.Option(
        None, "--guidance-cutoff", help="Guide only this first fraction of the steps, 0..1 (default: the model's)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Sampler: dpm++, ddim, unipc or euler (default: the model's)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Number of frames (default: the model's)."),
    height: Optional[int] = typer.Option(None, "--height", help="Frame height (default: the model's)."),
    width: Optional[int] = typer.Option(None, "--width", help="Frame width (default: the model's)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate of the written video (default: the model's)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="mp4, webm, gif or png (a folder of frames)."),
    model: Optional[str] = typer.Option(None, "--model", help="Built-in name (see `kinema models`), model folder or training run folder."),
    device: str = typer.Option("auto", "--device", help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (float32 on a CPU, bfloat16 on a GPU), float32, bfloat16 or float16."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Batch mode: a file with one prompt per line."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Batch mode: folder for 0000.mp4, 0001.mp4, ..."),
    count: Optional[int] = typer.Option(None, "--count", help="Batch mode without a prompts file: N clips (of PROMPT, or of none for unconditional models) into --out-dir."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Generate a video from a prompt and/or a first frame. Options a model does not take are refused,
    with the list of those it does (`kinema models NAME` shows them).

    Example: `kinema generate "a small red circle moving left slowly" -o clip.mp4`

    Batch: `kinema generate --prompts prompts.txt --out-dir clips/ --seed 0`

    Unconditional models (no prompt): `kinema generate --model shape-motion-gan --count 16 --out-dir clips/`
    """
    from kinema.pipelines import generate as gen

    start = time.perf_counter()
    given = dict(negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance, guidance_cutoff=guidance_cutoff,
                 scheduler=scheduler, num_frames=frames, height=height, width=width, fps=fps)
    options = {k: v for k, v in given.items() if v is not None}  # the model's defaults for the rest
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # result.warnings are printed below
            if prompts is not None or count is not None:
                if out_dir is None:
                    raise ValueError("--prompts and --count need --out-dir")
                if prompts is not None and (count is not None or prompt):
                    raise ValueError("--prompts takes its prompts from the file: give no PROMPT or --count with it")
                results = gen.generate_batch(
                    prompts, out_dir, count=count, prompt=prompt or "", seed=seed, format=fmt or "mp4", model=model, image=image,
                    device=device, dtype=dtype, overwrite=overwrite, on_done=lambda r: console.print(f"{r.path}  ({r.seconds:.2f} s)"),
                    **options,
                )
                console.print(f"wrote {len(results)} videos to {out_dir} in {time.perf_counter() - start:.1f} s")
                return
            result = gen.generate(
                prompt or "", out or Path(f"video.{fmt or 'mp4'}"), model=model, image=image, seed=seed, device=device, dtype=dtype,
                format=fmt, overwrite=overwrite, **options,
            )
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"wrote {result.path}")
    console.print(f"sampling {result.seconds:.2f} s, total {time.perf_counter() - start:.2f} s")


@app.command()
def models(name: Optional[str] = typer.Argument(None, help="Show this model's kind, options and full card (a built-in name or a model folder).")) -> None:
    """List the built-in models: kind, what each takes, size and card summary.

    Example: `kinema models`   or   `kinema models shapes-t2v`
    """
    from kinema.hub import builtin_models, open_model
    from kinema.pipelines import describe_model

    try:
        if name:
            folder = open_model(name)
            kind, takes, options = describe_model(folder)
            console.print(f"[bold]{folder.name}[/bold]: {kind}; takes {takes}; {folder.size_bytes / 1e6:.1f} MB")
            for line in options:
                console.print(f"  {line}")
            console.print(folder.card)
            return
        found = builtin_models()
        table = Table(title="Built-in models")
        for column in ("name", "kind", "takes", "size", "about"):
            table.add_column(column, no_wrap=column in ("name", "kind", "size"))
        for folder in found:
            kind, takes, _ = describe_model(folder)
            first_sentence = folder.summary.split(". ")[0].rstrip(".") + "."
            table.add_row(folder.name, kind.replace(" + ", "\n"), takes, f"{folder.size_bytes / 1e6:.1f} MB", first_sentence)
    except (ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    console.print(table if found else "no built-in models shipped yet")


@app.command()
def export(
    run: Path = typer.Argument(..., help="A training run folder (its newest valid checkpoint) or one checkpoint file."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (config.json + model.safetensors + extras)."),
    raw: bool = typer.Option(False, "--raw", help="Export the raw weights instead of the EMA ones."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
    sampling_only: bool = typer.Option(False, "--sampling-only", help="Leave out what only fine-tuning needs (a GAN's discriminator)."),
) -> None:
    """Export a model folder from a run's checkpoint, e.g. to sample a run mid-way.

    Example: `kinema export runs/shapes-t2v --out models/shapes-step5000` then `kinema generate "..." --model models/shapes-step5000`
    """
    from kinema.training.export import export_checkpoint

    try:
        folder = export_checkpoint(run, out, overwrite=overwrite, ema=not raw, sampling_only=sampling_only)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    console.print(f"wrote {folder}")


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/diffusion/tiny.yaml."),
    set_: List[str] = typer.Option([], "--set", help="Override a config value: key.sub=value (repeatable)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'auto' (latest checkpoint in the run folder) or a checkpoint path."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: runs/<config name>)."),
    until_step: Optional[int] = typer.Option(None, "--until-step", help="Stop with a checkpoint at this step; the schedule stays that of train.max_steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop with a checkpoint after this many minutes."),
) -> None:
    """Train or fine-tune a model from a config.

    Example: `kinema train configs/diffusion/tiny.yaml --set train.max_steps=20 --out runs/tiny`
    """
    from kinema.training import train as run_training
    from kinema.training.config import ConfigError

    try:
        run_training(config, overrides=set_, resume=resume, out=out, until_step=until_step, time_limit=time_limit)
    except (ConfigError, FileExistsError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)


def _report_table(report, title: str) -> Table:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, acc in report.accuracy.items():
        table.add_row(f"{name} accuracy", f"{acc:.1%}")
    table.add_row("object present (frames)", f"{report.present_rate:.1%}")
    table.add_row("single blob (frames)", f"{report.single_blob_rate:.1%}")
    table.add_row("colour drift (RGB 0-255)", f"{report.mean_color_drift:.2f}")
    table.add_row("size drift", f"{report.mean_size_drift:.3f}")
    return table


@app.command()
def info(file: Path = typer.Argument(..., help="A video file or a folder of PNG frames.")) -> None:
    """Show a video's container, codec, size, fps, frames, duration, audio and provenance.

    Example: `kinema info clip.mp4`
    """
    from kinema.io import VideoReadError, probe

    try:
        meta = probe(file)
    except VideoReadError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    table = Table(title=str(file), show_header=False)
    table.add_row("container", str(meta.container))
    table.add_row("codec", str(meta.codec))
    table.add_row("size", f"{meta.width}x{meta.height}")
    table.add_row("fps", f"{meta.fps:g}")
    table.add_row("frames", str(meta.num_frames))
    table.add_row("duration", f"{meta.duration:.3f} s")
    audio = meta.audio
    table.add_row("audio", f"{audio.codec}, {audio.sample_rate} Hz, {audio.channels} ch, {audio.duration:.3f} s" if audio else "none")
    prov = meta.provenance
    table.add_row("provenance", json.dumps(prov.to_dict(), ensure_ascii=False) if prov else "none")
    console.print(table)


dataset_app = typer.Typer(help="Render the procedural datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("render")
def dataset_render(
    kind: str = typer.Argument(..., help="shapes (Captioned Shapes) or shape-motion (MoCoGAN's Shape Motion)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the videos, manifest.jsonl and preview.png."),
    split: str = typer.Option("train", help="train, test or heldout (heldout: shapes only)."),
    count: int = typer.Option(16, help="Number of videos."),
    resolution: int = typer.Option(64, help="64 (canonical) or 32."),
    seed: int = typer.Option(0, help="Base seed: the same seed renders the same videos."),
    captions: str = typer.Option("canonical", help="canonical or varied phrasing (shapes only)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier render in OUT."),
) -> None:
    """Render a Shapes dataset as mp4 files plus a manifest and a preview grid.

    Example: `kinema dataset render shapes --split test --count 8 --out shapes_test`
    """
    from rich.progress import Progress

    from kinema.data.render import render_dataset

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"rendering {kind}", total=count)
        result = render_dataset(
            kind, out, split=split, count=count, resolution=resolution, seed=seed, captions=captions,
            overwrite=overwrite, progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(f"wrote {len(result.files)} videos, {result.manifest} and {result.preview}")


@app.command()
def check(
    path: Path = typer.Argument(..., help="A folder with manifest.jsonl, or one video file."),
    caption: Optional[str] = typer.Option(None, help="For one file: the caption to check against (default: its provenance prompt)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Read shape, colour, size, direction and speed off Shapes videos and score them.

    Example: `kinema check shapes_test/`   or   `kinema check clip.mp4 --caption "a small red circle moving left slowly"`
    """
    from kinema.evaluation.shapes_checker import check_folder, check_videos
    from kinema.io import probe, read_video

    if path.is_dir() and (path / "manifest.jsonl").exists():
        report = check_folder(path)
    else:
        if caption is None:
            prov = probe(path).provenance
            caption = prov.prompt if prov else None
        if caption is None:
            console.print(f"[red]error:[/red] {path} has no prompt in its provenance; pass --caption")
            raise typer.Exit(1)
        report = check_videos([read_video(path).frames], [caption])
    if as_json:
        console.print_json(json.dumps(report.to_dict(with_readings=True)))
    else:
        console.print(_report_table(report, f"Shapes check: {path} ({report.num_videos} videos)"))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_output"), "--out", "-o", help="Output folder."),
    model: str = typer.Option("shapes-t2v", "--model", help="Text-to-video model: built-in name, model or run folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first clip (the others: seed + index)."),
) -> None:
    """The main job end to end (what `make demo` runs): eight prompts -> eight clips with the
    default model, tiled into grid.gif, each judged by the Shapes checker against its prompt.

    Example: `kinema demo --out demo_output`   or   `kinema demo --model runs/shapes-t2v`
    """
    from kinema.demo import run_demo

    start = time.perf_counter()
    result = run_demo(out, model=model, seed=seed)
    console.print(_report_table(result.report, f"Shapes check of the clips generated by {result.model}"))
    console.print(f"wrote {len(result.files)} clips and their prompts to {out}/, animated grid {result.grid}")
    console.print(f"{result.seconds_per_clip:.2f} s per clip, done in {time.perf_counter() - start:.1f} s")


@app.command("evaluate")
def evaluate_command(
    real: Path = typer.Option(..., "--real", help="Real videos: a folder (manifest.jsonl order, else natural file order), a manifest.jsonl or one video."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Generated videos, same kinds; paired with --real by file name, else by order."),
    model: Optional[str] = typer.Option(None, "--model", help="Instead of --fake: generate from this model (built-in name, model or run folder)..."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="...one clip per line of this file (seed + line index), checked against the line."),
    seed: int = typer.Option(0, "--seed", help="Seed for --model generation."),
    metrics: str = typer.Option("psnr,ssim,flicker,acd", "--metrics", help="Comma-separated: fvd, fd_shapes, psnr, ssim, flicker, acd, shapes."),
    i3d: Optional[Path] = typer.Option(None, "--i3d", help="I3D weights for fvd: i3d_pretrained_400.pt or rgb_imagenet.pt (see docs/evaluation.md)."),
    i3d_port: str = typer.Option("videogpt", "--i3d-port", help="Port the I3D weights come from: videogpt (i3d_pretrained_400.pt) or piergiaj (rgb_imagenet.pt)."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Shapes classifier folder (config.json + model.safetensors) for fd_shapes."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for report.json, report.html and grid.png."),
    device: str = typer.Option("auto", "--device", help="Where the networks run: auto (a GPU when there is one), cpu, cuda, cuda:N or mps."),
    dtype: str = typer.Option("auto", "--dtype", help="--model generation precision: auto (float32 on a CPU, bfloat16 on a GPU), float32, bfloat16, float16."),
    batch_size: int = typer.Option(8, help="Videos per network batch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier report in OUT."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
) -> None:
    """Compare generated videos with real ones: FVD, FD-Shapes, PSNR, SSIM, flicker, ACD and the Shapes checks.

    Example: `kinema evaluate --real shapes_test/ --fake samples/ --metrics psnr,ssim,flicker,acd,shapes --out report/`

    On the fly: `kinema evaluate --real shapes_test/ --model shapes-t2v --prompts prompts.txt --metrics shapes,flicker`
    """
    from kinema.device import resolve_device
    from kinema.evaluation.evaluate import MissingWeightsError, evaluate
    from kinema.evaluation.report import shapes_rows, summary_rows, to_json

    try:
        device = str(resolve_device(device))
        if (fake is None) == (model is None):
            raise ValueError("give --fake VIDEOS, or --model with --prompts to generate them")
        if model is not None:
            from kinema.evaluation.evaluate import VideoSet
            from kinema.pipelines.generate import generate_clips

            if prompts is None:
                raise ValueError("--model needs --prompts FILE (one prompt per line)")
            clips, texts = generate_clips(prompts, model, seed=seed, device=device, dtype=dtype)
            fake = VideoSet.from_frames(clips, labels=texts, source=f"{model}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the result lists them; printed below
            result = evaluate(
                real, fake, metrics, i3d=i3d, classifier=classifier, out=out, i3d_port=i3d_port, device=device,
                batch_size=batch_size, overwrite=overwrite, progress=lambda line: console.print(f"[dim]{line}[/dim]"),
            )
    except (MissingWeightsError, FileNotFoundError, FileExistsError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    if as_json:
        console.print_json(to_json(result))
    else:
        table = Table(title=f"{model or fake} against {real}")
        for column in ("metric", "generated", "real", "note"):
            table.add_column(column, justify="right" if column in ("generated", "real") else "left")
        for row in summary_rows(result):
            table.add_row(*row)
        if "shapes" in result["metrics"]:
            for measure, generated, reference in shapes_rows(result["metrics"]["shapes"]):
                table.add_row(f"Shapes: {measure}", generated, reference, "")
        console.print(table)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if out is not None:
        console.print(f"wrote {out / 'report.json'} and {out / 'report.html'}")


if __name__ == "__main__":
    app()
