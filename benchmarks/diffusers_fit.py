"""The diffusers backend's memory and time estimate (kinema.pipelines.diffusers_backend.estimate) against a measured run.

Random diffusers pipelines (the architectures of tests/test_diffusers_backend.py, and widened ones whose activations
reach hundreds of MB) are saved, then each case runs one clip on the CPU in a fresh process that reports:

- weights: the resident memory a from_pretrained load adds (VmRSS after - before) against the estimate's weight bytes;
- working set: the peak resident memory of the call above the loaded model (VmHWM, reset through
  /proc/self/clear_refs once loaded) against the estimate's max(denoiser activations, VAE decode + output);
- time: the call's seconds against the estimate's (order of magnitude: FLOPs at the measured matmul speed).

Resident memory is the measure because torch allocates outside Python (tracemalloc and getrusage miss or
mix it); MALLOC_MMAP_THRESHOLD_ makes the child return freed tensors to the system, so RSS follows live
tensors. The tiny cases are dominated by the runtime's own allocations: they check the estimate does not
claim more than a few MB, not its constants.

    python benchmarks/diffusers_fit.py [--threads 1] [--cases unet-tiny,unet-wide-8,...]

Prints a table and writes benchmarks/results/diffusers_fit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PROMPT = "a red circle moving left"
# case -> (architecture, call options)
CASES = {
    "unet-tiny": ("unet-tiny", dict(num_frames=4, num_inference_steps=2)),
    "unet-wide-8f-128": ("unet-wide", dict(num_frames=8, height=128, width=128, num_inference_steps=2)),
    "unet-wide-16f-128": ("unet-wide", dict(num_frames=16, height=128, width=128, num_inference_steps=2)),
    "unet-wide-16f-192": ("unet-wide", dict(num_frames=16, height=192, width=192, num_inference_steps=2)),
    "dit-tiny": ("dit-tiny", dict(num_frames=9, num_inference_steps=2)),
    "dit-wide-17f-128": ("dit-wide", dict(num_frames=17, height=128, width=128, num_inference_steps=2)),
    "dit-wide-33f-192": ("dit-wide", dict(num_frames=33, height=192, width=192, num_inference_steps=2)),
}


def status(key: str) -> int:
    """VmRSS or VmHWM of this process, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def build(architecture: str, folder: Path) -> None:
    """Save a random diffusers pipeline of this architecture into ``folder``."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

    from kinema.pipelines.diffusers_backend import tiny_clip_vocabulary

    torch.manual_seed(0)
    if architecture.startswith("unet"):
        from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

        wide = architecture == "unet-wide"
        c, cross = ((32, 64), 32) if wide else ((8, 16), 8)
        unet = UNet3DConditionModel(
            block_out_channels=c, layers_per_block=1, sample_size=8, in_channels=4, out_channels=4, norm_num_groups=4,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            cross_attention_dim=cross, attention_head_dim=8 if wide else 4,
        )
        vae = AutoencoderKL(block_out_channels=(c[0], c[0]), latent_channels=4, norm_num_groups=4, sample_size=16,
                            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
        vocab = tiny_clip_vocabulary()
        text = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=cross, intermediate_size=2 * cross, num_attention_heads=2,
                                            num_hidden_layers=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1))
        scheduler = DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False)
        pipe = TextToVideoSDPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77),
                                     unet=unet, scheduler=scheduler)
    else:
        from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

        wide = architecture == "dit-wide"
        pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
        pieces += [(ch, -3.0) for ch in string.ascii_lowercase] + [("▁" + ch, -2.5) for ch in string.ascii_lowercase]
        tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=226)
        transformer = CogVideoXTransformer3DModel(
            num_attention_heads=8 if wide else 4, attention_head_dim=64 if wide else 8, in_channels=4, out_channels=4, time_embed_dim=8,
            text_embed_dim=32, num_layers=2 if wide else 1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
            temporal_compression_ratio=4, max_text_seq_length=226,
        )
        channels = (16, 16, 32, 32) if wide else (8, 8, 8, 8)
        vae = AutoencoderKLCogVideoX(down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
                                     block_out_channels=channels, latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
        text = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, num_heads=4, num_layers=1, d_ff=37,
                                       relative_attention_num_buckets=8))
        pipe = CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text, vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler())
    pipe.save_pretrained(folder)


def child(folder: str, options: dict) -> dict:
    """Load, estimate, run one clip; measured and estimated numbers (runs in its own process)."""
    import json as _json

    from kinema.pipelines import load_pipeline
    from kinema.pipelines.diffusers_backend import pipeline_class

    pipeline_class(_json.loads((Path(folder) / "model_index.json").read_text())["_class_name"], folder)  # import its modules first
    before = status("VmRSS")
    pipe = load_pipeline(folder, device="cpu")
    loaded = status("VmRSS")
    estimate = pipe.estimate(**options)
    steps = options["num_inference_steps"]
    phases = {}

    def on_step(step, total, _preview):
        if step == steps:  # the denoising peak (text encoding included); the decode's is measured from here
            phases["denoise"] = status("VmHWM")
            Path("/proc/self/clear_refs").write_text("5")

    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the peak from here on
    base = status("VmRSS")
    start = time.perf_counter()
    out = pipe(PROMPT, seed=0, callback=on_step, **options)
    seconds = time.perf_counter() - start
    decode_peak = status("VmHWM")
    peak = max(phases["denoise"], decode_peak)
    return {
        "denoise_measured": phases["denoise"] - base, "decode_measured": decode_peak - base,
        "frames": list(out.frames.shape[1:4]),
        "weights_estimated": sum(estimate.weights.values()), "weights_measured": loaded - before,
        "activations_estimated": estimate.activations, "decode_estimated": estimate.decode,
        "working_estimated": max(estimate.activations, estimate.decode), "working_measured": peak - base,
        "peak_estimated": estimate.peak, "peak_measured": peak - before,
        "seconds_estimated": estimate.seconds, "seconds_measured": seconds,
    }


def mb(n: float) -> str:
    return f"{n / 2**20:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "OPTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return
    names = [c for c in args.cases.split(",") if c]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MALLOC_MMAP_THRESHOLD_": "65536"}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            architecture, options = CASES[name]
            folder = Path(tmp) / architecture
            if not folder.exists():
                build(architecture, folder)
            run = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", str(folder), json.dumps(options)],
                                 env=env, capture_output=True, text=True)
            line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"{name} failed:\n{run.stderr[-3000:]}")
            rows[name] = {"options": options, **json.loads(line[len("RESULT "):])}
            r = rows[name]
            print(f"{name}: weights est {mb(r['weights_estimated'])} MB meas {mb(r['weights_measured'])} MB | "
                  f"denoise est {mb(r['activations_estimated'])} MB meas {mb(r['denoise_measured'])} MB | "
                  f"decode est {mb(r['decode_estimated'])} MB meas {mb(r['decode_measured'])} MB | "
                  f"time est {r['seconds_estimated']:.2f} s meas {r['seconds_measured']:.2f} s", flush=True)
    print()
    print(f"{'case':20} {'weights MB est/meas':>20} {'denoise MB est/meas':>20} {'decode MB est/meas':>20} {'peak ratio':>10} {'seconds est/meas':>17}")
    for name, r in rows.items():
        ratio = r["working_estimated"] / max(r["working_measured"], 1)
        print(f"{name:20} {mb(r['weights_estimated'])} /{mb(r['weights_measured'])}  {mb(r['activations_estimated'])} /{mb(r['denoise_measured'])}"
              f"  {mb(r['decode_estimated'])} /{mb(r['decode_measured'])}  {ratio:9.2f}  {r['seconds_estimated']:7.2f} / {r['seconds_measured']:7.2f}")
    RESULTS.mkdir(exist_ok=True)
    result = {"threads": args.threads, "device": "cpu", "dtype": "float32", "cases": rows}
    (RESULTS / "diffusers_fit.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'diffusers_fit.json'}")


if __name__ == "__main__":
    main()
