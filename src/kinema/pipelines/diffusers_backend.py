"""Pretrained diffusers video pipelines (ModelScope text-to-video, CogVideoX, Wan, LTX, Stable Video Diffusion, ...)
through Kinema's commands: a contract read from the pipeline's ``__call__``, Kinema's seed rule, uint8 frames,
and fitting the run into the device's memory (offloading, VAE tiling, decode chunks) after an estimate.

A folder diffusers saved (model_index.json with "_diffusers_version") or a hub id (org/name) opens as pipeline
"diffusers". Options the user leaves out keep the pipeline's own defaults, except those a kinema.json beside
model_index.json sets (``{"defaults": {"num_inference_steps": 2, ...}}``: what the tiny test pipelines use).
diffusers and transformers are imported on first use, never when the registry is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import json
import math
import os
import threading
import time
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from einops import rearrange

from kinema.hub import DIFFUSERS_SETTINGS_NAME, INDEX_NAME, ModelFolder, ModelFormatError
from kinema.pipelines import Registration, register
from kinema.pipelines.common import Callback, Contract, Option, PipelineSettings, VideoPipeline, VideoPipelineOutput, check_not_quantized
from kinema.pipelines.preview import LatentPreviewer
from kinema.pipelines.quantize import check_quantize, int8_linear_bytes, mute_torchao_noise, weight_bytes

mute_torchao_noise()  # diffusers' model classes import torchao when it is installed (--quantize): five lines of warnings otherwise

OFFLOAD_MODES = ("none", "model", "sequential", "group")
# __call__ keywords that are not options: what the backend passes itself, tensors, callbacks, nested settings
NOT_OPTIONS = {
    "self", "prompt", "image", "generator", "latents", "output_type", "return_dict", "callback", "callback_steps",
    "callback_on_step_end", "callback_on_step_end_tensor_inputs", "num_videos_per_prompt", "num_images_per_prompt",
    "cross_attention_kwargs", "attention_kwargs", "timesteps", "sigmas", "kwargs", "ip_adapter_image", "last_image",
    "prompt_template", "image_embeds",
}
# the keywords Kinema names on its own (the CLI flags), in the order `kinema models` lists them:
# (type, help, alias); height and width also get the multiple the latent grid needs
CORE = {
    "num_frames": (int, "frames per clip", "frames"),
    "num_inference_steps": (int, "denoising steps", "steps"),
    "guidance_scale": (float, "classifier-free guidance (1: none)", "guidance"),
    "negative_prompt": (str, "what guidance steers away from", "negative"),
    "height": (int, "frame height", None),
    "width": (int, "frame width", None),
}
# ranges of keywords many pipelines share, where a value outside gives NaN frames or an error deep inside
KNOWN_RANGES = {"eta": (0.0, 1.0), "guidance_rescale": (0.0, 1.0), "min_guidance_scale": (0.0, 100.0), "max_guidance_scale": (0.0, 100.0),
                "noise_aug_strength": (0.0, 10.0), "motion_bucket_id": (0, 1023), "max_sequence_length": (1, 4096)}
# pipelines whose latents are (batch, frames, channels, height, width), not (batch, channels, frames, ...)
FRAMES_FIRST = ("CogVideoX", "StableVideoDiffusion")
# the frame rate the model cards' examples write at, for pipelines whose __call__ has no fps of its own
CARD_FPS = {"TextToVideoSD": 8, "CogVideoX": 8, "Wan": 16, "Mochi": 30, "HunyuanVideo": 15, "AnimateDiff": 8, "I2VGenXL": 16}
DEFAULT_FPS = 8

# Activation heuristic (bytes at the peak = widths x tokens x width x dtype size, tokens scaled by the latent volume):
# a transformer block holds the residual stream, its norm, q, k, v, the attention output and the MLP's 4x hidden
# layer before and after its activation: about 16 widths per token, 18 measured (benchmarks/diffusers_fit.py, CPU);
# a UNet keeps every level's skip activations on top of its working set: 24 by that count, 44 measured on
# UNet3DConditionModel (three sizes, 0.54-0.57 of the measured peak with 24). A decoder resnet at full resolution
# holds its input, norm and conv outputs and the upsampled input: 6 widths, measured within 10% (AutoencoderKL).
TRANSFORMER_WIDTHS = 18
UNET_WIDTHS = 44
VAE_WIDTHS = 6
# On a CPU, 3D-convolution VAEs (temporal compression > 1: CogVideoX, Wan, LTX) work through unfold buffers: the
# CogVideoX decoder measured 2.6x to 6.9x the 6-width estimate; GPUs (cuDNN) are not measured here.
CPU_CONV3D_FACTOR = 4
# Time: FLOPs (weights x positions they run on, plus attention) at this fraction of the measured matmul speed;
# a small-channel UNet3D on one CPU thread ran at 0.10, CogVideoX's transformer at 0.2-0.26. GPUs: a guess.
EFFICIENCY = {"cpu": 0.2, "cuda": 0.4}


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class MemorySettings:
    """How a diffusers pipeline fits the device: `kinema generate --offload, --vae-tiling, --decode-chunk`."""

    offload: str | None = None  # none, model, sequential, group; None: offload (model, else sequential) only when the estimate does not fit
    vae_tiling: bool = False  # decode in spatial tiles (pipe.vae.enable_tiling)
    decode_chunk: int | None = None  # frames decoded at once, for pipelines that take decode_chunk_size

    def __post_init__(self) -> None:
        if self.offload is not None and self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload (--offload) must be one of {', '.join(OFFLOAD_MODES)}, got {self.offload!r}")
        if self.decode_chunk is not None and (isinstance(self.decode_chunk, bool) or not isinstance(self.decode_chunk, int) or self.decode_chunk < 1):
            raise ValueError(f"decode_chunk (--decode-chunk) must be a whole number >= 1, got {self.decode_chunk!r}")


def check_offload(device: torch.device, offload: str | None) -> None:
    """Offloading needs a GPU to offload from: refuse it elsewhere, in the user's words."""
    if device.type != "cuda" and offload not in (None, "none"):
        raise ValueError(f"--offload {offload} moves weights between CPU memory and a CUDA GPU; on {device} everything is in one memory already")


# ---------------------------------------------------------------------------------------------- LoRAs and step caches


@dataclass(frozen=True)
class LoRA:
    """One LoRA to load into a diffusers pipeline (`kinema generate --lora PATH[:scale]`): a .safetensors file (or a
    folder holding one, as save_lora_weights writes it) and the scale set_adapters gives it."""

    path: Path
    scale: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale):
            raise ValueError(f"--lora {self.path}: the scale must be a finite number, got {self.scale!r}")
        path = Path(self.path)
        if not path.exists():
            raise FileNotFoundError(f"--lora {path}: no such file or folder")
        if path.is_dir():
            found = sorted(path.glob("*.safetensors"))
            preferred = [f for f in found if f.name == "pytorch_lora_weights.safetensors"]
            if len(preferred or found) != 1:
                raise ValueError(f"--lora {path}: a LoRA folder must hold one .safetensors file, it holds {len(found)}")
            path = (preferred or found)[0]
        if path.suffix != ".safetensors":
            # .bin / .pt LoRAs are pickles, which Kinema never loads
            raise ValueError(f"--lora {path}: only .safetensors LoRA files are read, got a {path.suffix or 'file without suffix'}")
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "scale", float(self.scale))

    @classmethod
    def parse(cls, spec: Any) -> LoRA:
        """A LoRA from ``PATH``, ``PATH:scale``, a (path, scale) pair or a LoRA."""
        if isinstance(spec, LoRA):
            return spec
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            return cls(Path(spec[0]), spec[1])
        if not isinstance(spec, (str, os.PathLike)):
            raise ValueError(f"lora takes paths, 'PATH:scale' or (path, scale) pairs, got {spec!r}")
        text = os.fspath(spec)
        if ":" in text and not os.path.exists(text):
            path, scale = text.rsplit(":", 1)
            try:
                value = float(scale)
            except ValueError:
                raise ValueError(f"--lora {text}: the scale after ':' must be a finite number, got {scale!r}") from None
            return cls(Path(path), value)
        return cls(Path(text))

    @property
    def sha256(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def lora_list(lora: Any) -> list[LoRA]:
    """``lora`` (None, one spec or a list of them: paths, 'PATH:scale', (path, scale) pairs) as LoRAs, checked."""
    if lora is None:
        return []
    if isinstance(lora, (str, os.PathLike, LoRA)) or (isinstance(lora, tuple) and len(lora) == 2 and isinstance(lora[1], (int, float))):
        lora = [lora]
    return [LoRA.parse(spec) for spec in lora]


CACHE_MODES = ("first-block", "pab", "faster", "taylorseer")
# the transformer pipelines diffusers gives step caches (CacheMixin) and LoRA loading, named in errors
DIT_FAMILIES = "CogVideoX, Wan, LTX, HunyuanVideo, Mochi"
# TaylorSeer's own default patterns (``^transformer_blocks.*attn``, fullmatched) miss the numbered attentions of the
# video DiTs (CogVideoX's transformer_blocks.0.attn1, Wan's blocks.0.attn1): these hook each block's attentions and MLP
TAYLORSEER_MODULES = [r"^(blocks|transformer_blocks|single_transformer_blocks|temporal_transformer_blocks)\.\d+\.(attn\d*|ff|ffn)$"]


def check_cache(mode: str | None) -> None:
    if mode is not None and mode not in CACHE_MODES:
        raise ValueError(f"cache (--cache) must be one of {', '.join(CACHE_MODES)}, got {mode!r}")


def check_support(who: str, pipeline: type, denoiser: type | None, kind: str | None, blocks: int, lora: bool, cache: str | None) -> None:
    """A ValueError in one line when ``pipeline`` (with a ``denoiser`` network class of ``kind`` unet or transformer and
    ``blocks`` transformer blocks) cannot take LoRAs or this step ``cache``: read from the classes, before loading."""
    import diffusers

    cls = pipeline.__name__
    if lora and (not hasattr(pipeline, "load_lora_weights") or not hasattr(denoiser, "load_lora_adapter")):
        why = f"its {getattr(denoiser, '__name__', 'denoiser')} has no LoRA support" if hasattr(pipeline, "load_lora_weights") else "it has no LoRA loading"
        raise ValueError(f"--lora: {who} ({cls}) cannot take LoRAs in diffusers {diffusers.__version__} ({why}); {DIT_FAMILIES} pipelines can")
    if cache is None:
        return
    check_cache(cache)
    if kind != "transformer":
        what = f"a UNet pipeline ({cls})" if kind == "unet" else f"{cls}, which has no transformer"
        raise ValueError(f"--cache: {who} is {what}; diffusers' step caches are for transformer (DiT) pipelines: {DIT_FAMILIES}, ...")
    if not hasattr(denoiser, "enable_cache"):
        raise ValueError(f"--cache: {who}'s {getattr(denoiser, '__name__', 'transformer')} has no diffusers step cache (no enable_cache); "
                         f"{DIT_FAMILIES} transformers have one")
    if cache in ("pab", "faster") and not hasattr(pipeline, "current_timestep"):
        raise ValueError(f"--cache {cache} follows the pipeline's current_timestep, which {cls} does not expose; try first-block or taylorseer")
    if cache == "first-block" and blocks < 2:
        raise ValueError(f"--cache first-block compares the first transformer block's output to skip the rest: {who} has {blocks} block(s), "
                         "it needs 2 or more")


def check_guided(cache: str | None, guidance: float | None) -> None:
    """FasterCache skips the unconditional half of a guided batch: without guidance there is none (IndexError inside)."""
    if cache == "faster" and (guidance is None or guidance <= 1):
        raise ValueError(f"--cache faster reuses the unconditional half of classifier-free guidance: give --guidance above 1, got {guidance}")


def cache_config(mode: str, pipe: Any, frames_first: bool) -> Any:
    """diffusers' config for a step cache on ``pipe.transformer``; the values are those diffusers' own docstrings use
    for CogVideoX (diffusers 0.42.1: hooks/pyramid_attention_broadcast.py and models/cache_utils.py for PAB,
    hooks/faster_cache.py for FasterCache, hooks/taylorseer_cache.py for TaylorSeer) and FirstBlockCache's default."""
    from diffusers import FasterCacheConfig, FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    check_cache(mode)
    if mode == "first-block":
        return FirstBlockCacheConfig(threshold=0.05)
    if mode == "taylorseer":
        return TaylorSeerCacheConfig(cache_interval=5, max_order=1, disable_cache_before_step=3, taylor_factors_dtype=torch.float32,
                                     cache_identifiers=TAYLORSEER_MODULES)
    if mode == "pab":
        return PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(100, 800),
                                               current_timestep_callback=lambda: pipe.current_timestep)
    return FasterCacheConfig(spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 681),
                             low_frequency_weight_update_timestep_range=(99, 641), high_frequency_weight_update_timestep_range=(-1, 301),
                             attention_weight_callback=lambda _: 0.3, tensor_format="BFCHW" if frames_first else "BCFHW",
                             current_timestep_callback=lambda: pipe.current_timestep)


@dataclass
class DiffusersSettings(PipelineSettings):
    """kinema.json beside a diffusers model_index.json (optional): call defaults Kinema uses instead of the pipeline's own."""

    defaults: dict[str, Any] = field(default_factory=dict)  # a __call__ keyword (or fps) -> its default here


# ---------------------------------------------------------------------------------------------- reading a pipeline


def pipeline_class(name: Any, where: str) -> type:
    """The diffusers pipeline class model_index.json names, or an error saying why there is none."""
    import diffusers

    if not isinstance(name, str) or not name:
        raise ModelFormatError(f"{where}: _class_name must name a diffusers pipeline class, got {name!r} (custom pipelines are not supported)")
    cls = getattr(diffusers, name, None)
    if not isinstance(cls, type):
        raise ModelFormatError(f"{where} names {name}, which diffusers {diffusers.__version__} does not have (a newer diffusers may)")
    if "num_frames" not in inspect.signature(cls.__call__).parameters:
        raise ModelFormatError(f"{where}: {name} is not a video pipeline (its __call__ takes no num_frames)")
    return cls


def _scalar_type(param: inspect.Parameter) -> type | None:
    """int, float or str when a __call__ keyword takes one such value (its annotation, else its default); else None."""
    annotation = param.annotation
    if annotation is not inspect.Parameter.empty and not isinstance(annotation, str):
        kinds = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
        plain = [k for k in kinds if k in (int, float, str)]
        lists = [k for k in kinds if typing.get_origin(k) in (list, tuple) or k in (list, tuple)]
        if plain and len(plain) + len(lists) == len(kinds):
            return float if float in plain and str not in plain else plain[0] if len(plain) == 1 else None
        if kinds:
            return None
    default = param.default
    if isinstance(default, bool) or default is None or default is inspect.Parameter.empty:
        return None
    return type(default) if isinstance(default, (int, float, str)) else None


@dataclass
class Anatomy:
    """What the contract and the estimate need to know of a pipeline, read from its (real or meta) networks."""

    class_name: str
    parameters: dict[str, int]  # network component -> parameter count
    largest_leaf: int  # parameters of the largest leaf module (sequential offloading moves one at a time)
    largest_block: int  # parameters of the largest entry of a ModuleList (group offloading moves one at a time)
    denoiser: str | None  # "unet" or "transformer"
    width: int  # the denoiser's channels at full latent resolution (UNet) or inner width (transformer)
    layers: int
    patch: tuple[int, int]  # (frames, pixels) a transformer token covers in the latent; (1, 1) for a UNet
    spatial: int  # VAE compression: pixels per latent pixel
    temporal: int  # frames per latent frame (1 for image VAEs)
    vae_class: str
    vae_channels: int  # the decoder's channels at full resolution
    vae_tile: tuple[int, int] | None  # the decoder's tile (height, width) when tiling
    configs: dict[str, dict[str, Any]]  # the diffusers networks' configs
    broken: frozenset[str] = frozenset()  # __call__ keywords that cannot work with these networks (not offered)
    flops_per_position: float = 0.0  # a UNet's weight FLOPs per latent position, each block at its level's resolution
    attention_levels: tuple[tuple[int, int, int], ...] = ()  # a UNet's spatial self-attentions: (level, channels, count)
    text_tokens: int = 0  # text tokens the transformer attends over with the video's (CogVideoX's joint attention)
    linear: dict[str, tuple[int, int]] = field(default_factory=dict)  # network -> (nn.Linear weight values, their output rows)
    buffers: dict[str, int] = field(default_factory=dict)  # network -> bytes of its buffers, in their own dtypes (CogVideoX's float64 positions)

    def native(self, parameters: dict[str, inspect.Parameter]) -> dict[str, Any]:
        """Each keyword's default as the pipeline itself would settle it (None: it decides in ways not read here)."""
        values = {n: (None if p.default is inspect.Parameter.empty else p.default) for n, p in parameters.items()}
        unet, transformer = self.configs.get("unet", {}), self.configs.get("transformer", {})
        for side, key in (("height", "sample_height"), ("width", "sample_width")):
            if values.get(side) is None:
                size = unet.get("sample_size")
                size = size[0 if side == "height" else -1] if isinstance(size, (list, tuple)) else size
                if isinstance(size, int):
                    values[side] = size * self.spatial
                elif isinstance(transformer.get(key), int):
                    values[side] = transformer[key] * self.spatial
        if values.get("num_frames") is None:
            values["num_frames"] = transformer.get("sample_frames") or unet.get("num_frames")
        return values

    @property
    def frames_multiple(self) -> int:
        """num_frames - 1 must divide by this to be honoured: the VAE's temporal compression (CogVideoX's decoder
        pairs latent frames, so an even latent count gives 3 frames more than asked: twice that there)."""
        return self.temporal * (2 if self.vae_class == "AutoencoderKLCogVideoX" else 1)

    @property
    def size_multiple(self) -> int:
        """What height and width must divide by: the VAE's compression times the patch (8 at least, as diffusers checks)."""
        return max(8, self.spatial * self.patch[1])


def _config_dict(module: torch.nn.Module) -> dict[str, Any] | None:
    config = getattr(module, "config", None)
    if config is None or not hasattr(config, "keys"):  # diffusers' FrozenDict; transformers' configs are not needed
        return None
    return dict(config)


def anatomy_of(class_name: str, modules: dict[str, torch.nn.Module], counts: dict[str, int] | None = None) -> Anatomy:
    """Read an Anatomy off the networks (loaded, or built on the meta device from their configs)."""
    configs = {name: c for name, m in modules.items() if (c := _config_dict(m)) is not None}
    parameters = dict(counts or {})
    largest_leaf = largest_block = 0
    linear, buffers = {}, {}
    for name, module in modules.items():
        parameters.setdefault(name, sum(p.numel() for p in module.parameters()))
        buffers[name] = sum(b.numel() * b.element_size() for b in module.buffers())
        values = rows = 0
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                values, rows = values + sub.weight.numel(), rows + sub.weight.shape[0]
            if isinstance(sub, torch.nn.ModuleList):
                largest_block = max([largest_block, *(sum(p.numel() for p in entry.parameters()) for entry in sub)])
            elif not any(True for _ in sub.children()):
                largest_leaf = max(largest_leaf, sum(p.numel() for p in sub.parameters(recurse=False)))
        linear[name] = (values, rows)
    denoiser = "transformer" if "transformer" in configs else "unet" if "unet" in configs else None
    den = configs.get(denoiser or "", {})
    if denoiser == "transformer":
        heads, head_dim = den.get("num_attention_heads"), den.get("attention_head_dim")
        width = heads * head_dim if isinstance(heads, int) and isinstance(head_dim, int) else int(den.get("hidden_size") or den.get("inner_dim") or 1024)
        layers = int(den.get("num_layers") or den.get("num_hidden_layers") or 1)
        patch = den.get("patch_size") or 1
        spatial_patch = patch[-1] if isinstance(patch, (list, tuple)) else patch
        temporal_patch = patch[0] if isinstance(patch, (list, tuple)) and len(patch) == 3 else den.get("patch_size_t") or 1
        patch_pair = (int(temporal_patch), int(spatial_patch))
    else:
        channels = den.get("block_out_channels") or [320]
        width, layers, patch_pair = int(channels[0]), len(channels), (1, 1)
    flops_per_position, attention_levels = _unet_cost(modules["unet"], den) if denoiser == "unet" and "unet" in modules else (0.0, ())
    vae = modules.get("vae")
    vcfg = configs.get("vae", {})
    channels = vcfg.get("decoder_block_out_channels") or vcfg.get("block_out_channels") or [vcfg.get("base_dim", 128) * m for m in vcfg.get("dim_mult", [1])]
    spatial = vcfg.get("scale_factor_spatial") or getattr(vae, "spatial_compression_ratio", None) or 2 ** (len(vcfg.get("block_out_channels") or [0] * 4) - 1)
    temporal = vcfg.get("temporal_compression_ratio") or vcfg.get("scale_factor_temporal") or getattr(vae, "temporal_compression_ratio", None) or 1
    broken = set()
    text = modules.get("text_encoder")
    if text is not None and type(text).__name__.startswith("CLIPText") and not hasattr(text, "text_model"):
        # clip_skip reads text_encoder.text_model.final_layer_norm, which transformers 5 flattened into the model
        broken.add("clip_skip")
    tile = None
    if vae is not None:
        h = getattr(vae, "tile_sample_min_height", None) or getattr(vae, "tile_sample_min_size", None)
        w = getattr(vae, "tile_sample_min_width", None) or getattr(vae, "tile_sample_min_size", None)
        tile = (int(h), int(w)) if isinstance(h, (int, float)) and isinstance(w, (int, float)) else None
    return Anatomy(
        class_name=class_name, parameters=parameters, largest_leaf=largest_leaf, largest_block=largest_block or largest_leaf,
        denoiser=denoiser, width=width, layers=layers, patch=patch_pair, spatial=int(spatial), temporal=int(temporal),
        vae_class=type(vae).__name__ if vae is not None else "", vae_channels=int(max(channels[:2])) if channels else 128,
        vae_tile=tile, configs=configs, broken=frozenset(broken), text_tokens=int(den.get("max_text_seq_length") or 0),
        flops_per_position=flops_per_position, attention_levels=attention_levels, linear=linear, buffers=buffers,
    )


def _unet_cost(unet: torch.nn.Module, config: dict[str, Any]) -> tuple[float, tuple[tuple[int, int, int], ...]]:
    """(weight FLOPs per latent position, spatial self-attentions as (level, channels, count)) of a UNet: block i
    of the way down (and back up) runs on 1/4^i of the positions, so its weights count 2/4^i FLOPs a position."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    channels = list(config.get("block_out_channels") or [])
    levels = len(getattr(unet, "down_blocks", [])) or 1
    per_position, attentions = 0.0, []
    for name, child in unet.named_children():
        blocks = list(child) if name in ("down_blocks", "up_blocks") else [child]
        for i, block in enumerate(blocks):
            level = {"down_blocks": i, "up_blocks": levels - 1 - i, "mid_block": levels - 1}.get(name, 0)
            per_position += 2 * count(block) / 4**level
            spatial = getattr(block, "attentions", None)
            if spatial is not None and len(spatial) and level < len(channels):
                attentions.append((level, int(channels[level]), len(spatial)))
    return per_position, tuple(attentions)


def _meta_network(library: str, class_name: str, folder: Path) -> torch.nn.Module | None:
    """A component network built from its config alone on the meta device (no memory, no weights); None
    when it is not a network (tokenizer, scheduler) or cannot be built so."""
    try:
        cls = getattr(importlib.import_module(library), class_name)
    except (ImportError, AttributeError):
        return None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)) or not (folder / "config.json").is_file():
        return None
    try:
        with torch.device("meta"):
            if hasattr(cls, "load_config") and hasattr(cls, "from_config"):  # a diffusers model
                return cls.from_config(cls.load_config(folder))
            return cls(cls.config_class.from_pretrained(folder))  # a transformers model
    except Exception:  # noqa: BLE001 - an unusual network: counted from its weight files instead
        return None


def _header_count(folder: Path) -> int:
    """Parameters in a component's safetensors files, read from their headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total


@functools.lru_cache(maxsize=8)
def _folder_anatomy(path: str, mtime: float) -> tuple[type, Anatomy]:
    folder = Path(path)
    index = json.loads((folder / INDEX_NAME).read_text())
    cls = pipeline_class(index.get("_class_name"), str(folder / INDEX_NAME))
    modules, counts = {}, {}
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) != 2 or None in entry:
            continue
        network = _meta_network(entry[0], entry[1], folder / name)
        if network is not None:
            modules[name] = network
        elif (folder / name).is_dir() and any((folder / name).glob("*.safetensors")):
            counts[name] = _header_count(folder / name)
    return cls, anatomy_of(cls.__name__, modules, counts)


def folder_anatomy(folder: ModelFolder) -> tuple[type, Anatomy]:
    """(pipeline class, Anatomy) of a diffusers folder, from its configs (cached while the folder is unchanged)."""
    index = folder.path / INDEX_NAME
    return _folder_anatomy(str(folder.path.resolve()), index.stat().st_mtime)


# ---------------------------------------------------------------------------------------------- the contract


def _native_fps(cls: type, parameters: dict[str, inspect.Parameter]) -> tuple[str | None, Any]:
    """(the __call__ keyword fps is passed as, or None; the frame rate the pipeline's videos play at)."""
    for name in ("fps", "frame_rate", "target_fps"):
        if name in parameters and parameters[name].default not in (None, inspect.Parameter.empty):
            return name, parameters[name].default
    prefix = next((p for p in CARD_FPS if cls.__name__.startswith(p)), None)
    return None, CARD_FPS[prefix] if prefix else DEFAULT_FPS


def declare(cls: type, anatomy: Anatomy, settings: DiffusersSettings, memory: MemorySettings, who: str) -> tuple[Contract, dict[str, Any], str | None]:
    """(contract, each option's native default, the keyword Kinema's fps goes to) of a diffusers pipeline class."""
    parameters = dict(inspect.signature(cls.__call__).parameters)
    native = anatomy.native(parameters)
    fps_keyword, native["fps"] = _native_fps(cls, parameters)
    overrides = dict(settings.defaults)
    if memory.decode_chunk is not None:
        if "decode_chunk_size" not in parameters:
            raise ValueError(f"--decode-chunk: {who} ({cls.__name__}) takes no decode_chunk_size; leave it out (--vae-tiling may help instead)")
        overrides["decode_chunk_size"] = memory.decode_chunk
    multiple = anatomy.size_multiple
    options: list[Option] = []
    for name, (kind, text, alias) in CORE.items():
        if name not in parameters:
            continue
        extra: dict[str, Any] = {}
        if name in ("height", "width"):
            extra = dict(low=multiple, high=8192, multiple=multiple)
        elif name == "num_frames":
            extra = dict(low=1, high=10_000, **(dict(multiple=anatomy.frames_multiple, offset=1) if anatomy.frames_multiple > 1 else {}))
        elif name == "num_inference_steps":
            extra = dict(low=1, high=1000)
        elif name == "guidance_scale":
            extra = dict(low=0, high=100)
        default = native.get(name)
        options.append(Option(name, kind, None if default is None else kind(default), text, alias=alias, **extra))
    fps_type = _scalar_type(parameters[fps_keyword]) if fps_keyword else float
    options.append(Option("fps", fps_type or float, native["fps"], "frame rate of the written video" + (f" (and the model's {fps_keyword} conditioning)" if fps_keyword else ""),
                          low=0, low_open=True, high=1000))
    for name, param in parameters.items():
        if name in NOT_OPTIONS or name in CORE or name == fps_keyword or "embeds" in name or "mask" in name or name in anatomy.broken:
            continue
        kind = _scalar_type(param)
        if kind is not None:
            low, high = KNOWN_RANGES.get(name, (None, None))
            options.append(Option(name, kind, native.get(name), f"{cls.__name__}'s {name}", low=low, high=high, cli=False))
    options.append(Option("preview_every", int, 0, "hand the step callback a preview every N steps (0: never): the latents through the VAE's linear "
                          "latent -> RGB map", low=0))
    by_name = {o.name: o for o in options}
    for name, value in overrides.items():  # kinema.json and --decode-chunk: checked like a value the user gave
        if name not in by_name:
            raise ValueError(f"{who}: {DIFFUSERS_SETTINGS_NAME} defaults name {name!r}, which {cls.__name__} does not take; "
                             f"it takes: {', '.join(by_name)}")
        option = by_name[name]
        by_name[name] = dataclasses.replace(option, default=option.check(value))
    options = [by_name[o.name] for o in options]
    image = "image" in parameters
    prompt = "none" if "prompt" not in parameters else "optional" if image else "required"
    height, width = by_name["height"].default if "height" in by_name else None, by_name["width"].default if "width" in by_name else None
    contract = Contract(
        tasks=("image-to-video",) if image else ("text-to-video",), prompt=prompt, image=image, image_required=image,
        options=tuple(options), size=(int(height or 0), int(width or 0)),  # 0: the pipeline settles it at run time
    )
    return contract, native, fps_keyword


# ---------------------------------------------------------------------------------------------- the estimate


@dataclass
class MemoryEstimate:
    """Peak memory and time of one clip, before it runs (a heuristic: benchmarks/diffusers_fit.py measures it)."""

    pipeline: str
    device: str
    dtype: str
    num_frames: int
    height: int
    width: int
    steps: int
    weights: dict[str, int]  # bytes per network: its parameters in the dtype, its buffers as built
    activations: int  # the denoiser's peak working set, bytes
    decode: int  # the VAE decode's peak working set plus the output video, bytes
    offload: str  # the placement the run uses (none, model, sequential, group)
    peak: int  # bytes on the device at the peak, for that placement
    resident: int  # bytes already on the device (loaded weights), which ``available`` no longer counts
    available: int | None  # free bytes on the device (CUDA: free memory; CPU: MemAvailable), None if unknown
    seconds: float | None  # sampling time, order of magnitude
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool | None:
        """Whether the peak fits, with 10% kept free (fragmentation, the runtime); None when the device's memory is unknown."""
        return None if self.available is None else self.peak - self.resident <= 0.9 * self.available

    def lines(self) -> list[str]:
        """The estimate in words, for the CLI."""
        weights = ", ".join(f"{n} {_gb(b)}" for n, b in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        fits = {True: "fits", False: "does NOT fit", None: "free memory unknown"}[self.fits]
        available = "" if self.available is None else f" of {_gb(self.available + self.resident)} available"
        time_note = "" if self.seconds is None else f"; time ~{_duration(self.seconds)} (order of magnitude)"
        return [
            f"estimate: {self.pipeline}, {self.num_frames} frames at {self.width}x{self.height}, {self.steps} steps, on {self.device} in {self.dtype}",
            f"  weights {_gb(sum(self.weights.values()))} ({weights})",
            f"  denoiser activations {_gb(self.activations)}, VAE decode and output {_gb(self.decode)}",
            f"  peak {_gb(self.peak)} with offload {self.offload}{available}: {fits}{time_note}",
            *(f"  note: {n}" for n in self.notes),
        ]


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def available_memory(device: torch.device) -> int | None:
    """Free bytes where the networks run: CUDA's free memory, else the host's MemAvailable (psutil when installed)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            import psutil

            return int(psutil.virtual_memory().available)
        except ImportError:
            pass
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
    return None


_THROUGHPUT: dict[tuple[str, torch.dtype], float] = {}


def matmul_throughput(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a square matmul on this device in this dtype, measured once per process (a fraction of a second)."""
    key = (str(device), dtype)
    if key not in _THROUGHPUT:
        n = 2048 if device.type == "cuda" else 384
        a = torch.randn(n, n, device=device).to(dtype)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        (a @ a).sum().item()  # warm up
        sync()
        start, reps = time.perf_counter(), 0
        while time.perf_counter() - start < 0.2:
            a @ a
            reps += 1
        sync()
        _THROUGHPUT[key] = 2 * n**3 * reps / (time.perf_counter() - start)
    return _THROUGHPUT[key]


def estimate_from(anatomy: Anatomy, values: dict[str, Any], native: dict[str, Any], device: torch.device, dtype: torch.dtype,
                  offload: str | None, vae_tiling: bool, resident: int = 0, timing: bool = True, quantize: str | None = None) -> MemoryEstimate:
    """The estimate for one clip with these option values; ``offload`` None: the placement auto would pick; ``quantize``
    "int8": the denoisers' Linear weights as torchao stores them (kinema.pipelines.quantize), an int8 value each and a
    float32 scale a row; the time is unchanged (weight-only: the matmuls still run in ``dtype``)."""
    size = torch.tensor([], dtype=dtype).element_size()
    pick = lambda name, fallback: values.get(name) if values.get(name) is not None else native.get(name) if native.get(name) is not None else fallback  # noqa: E731
    frames, height, width = int(pick("num_frames", 16)), int(pick("height", 512)), int(pick("width", 512))
    steps = int(pick("num_inference_steps", 50))
    guidance = values.get("guidance_scale", values.get("max_guidance_scale"))
    guidance = guidance if guidance is not None else native.get("guidance_scale", native.get("max_guidance_scale"))
    cfg = 2 if guidance is not None and guidance > 1 else 1
    notes = []
    t, s = anatomy.temporal, anatomy.spatial
    latent_frames = (frames - 1) // t + 1 if t > 1 else frames
    lh, lw = max(1, height // s), max(1, width // s)
    weights = {n: c * size + anatomy.buffers.get(n, 0) for n, c in anatomy.parameters.items()}
    if quantize is not None:
        for name in (anatomy.denoiser, "transformer_2"):
            values_int8, rows = anatomy.linear.get(name or "", (0, 0))
            if name in weights and values_int8:
                before = weights[name]
                weights[name] += int8_linear_bytes(values_int8, rows) - values_int8 * size
                notes.append(f"{quantize}: {name} {_gb(before)} -> {_gb(weights[name])} (its Linear weights; the rest stays {str(dtype).replace('torch.', '')})")
    denoiser_params = anatomy.parameters.get(anatomy.denoiser or "", 0)  # Wan 2.2's transformer_2 takes turns with it: same cost a step
    # 1. the denoiser's working set, scaled by the latent volume
    if anatomy.denoiser == "transformer":
        pt, ps = anatomy.patch
        tokens = math.ceil(latent_frames / pt) * max(1, lh // ps) * max(1, lw // ps) + anatomy.text_tokens
        activations = cfg * tokens * anatomy.width * size * TRANSFORMER_WIDTHS
        flops = 2 * denoiser_params * tokens + 4 * tokens**2 * anatomy.width * anatomy.layers
    else:
        tokens = latent_frames * lh * lw
        activations = cfg * tokens * anatomy.width * size * UNET_WIDTHS
        per_position = anatomy.flops_per_position or 2 * denoiser_params / 8  # a UNet known by its config alone: 1/8
        flops = per_position * tokens + sum(4 * (lh * lw / 4**level) ** 2 * ch * n * latent_frames for level, ch, n in anatomy.attention_levels)
    # 2. the decode: frames decoded at once x the decoder's full-resolution working set, plus the output video
    chunk = {"AutoencoderKLCogVideoX": 2 * t, "AutoencoderKLWan": t}.get(anatomy.vae_class, frames)
    if anatomy.vae_class == "AutoencoderKLTemporalDecoder":
        chunk = int(pick("decode_chunk_size", frames))
    th, tw = (min(height, anatomy.vae_tile[0]), min(width, anatomy.vae_tile[1])) if vae_tiling and anatomy.vae_tile else (height, width)
    decode = min(chunk, frames) * th * tw * anatomy.vae_channels * size * VAE_WIDTHS * (CPU_CONV3D_FACTOR if device.type == "cpu" and t > 1 else 1)
    decode += frames * height * width * 3 * (4 + 4 + 1)  # the output: float32 from the VAE, float32 from postprocessing, uint8
    decode_flops = 2 * anatomy.parameters.get("vae", 0) / 2 * frames * height * width / 16
    working = max(activations, decode)
    # 3. where the weights are while it runs
    total = sum(weights.values())
    by_mode = {
        "none": total + working,
        "model": max([weights.get(anatomy.denoiser or "", 0) + activations, weights.get("vae", 0) + decode,
                      *(b for n, b in weights.items() if n not in (anatomy.denoiser, "vae"))]),
        "sequential": anatomy.largest_leaf * size + working,
        "group": 2 * anatomy.largest_block * size + working,  # one block computing, the next one arriving
    }
    available = available_memory(device)
    mode = offload or "none"
    if offload is None and device.type == "cuda" and available is not None:
        budget = 0.9 * available + resident
        mode = next((m for m in ("none", "model", "sequential") if by_mode[m] <= budget), "sequential")
        if mode != "none":
            notes.append(f"all on the GPU would need {_gb(by_mode['none'])}: {mode} offloading turned on")
    if device.type != "cuda" and offload not in (None, "none"):
        mode = "none"
    peak = by_mode[mode]
    if available is not None and peak - resident > 0.9 * available:
        notes.append("it would not fit: expect an out-of-memory error" + (" or swapping" if device.type == "cpu" else "")
                     + "; fewer frames, a smaller size, --vae-tiling" + (", --offload sequential" if device.type == "cuda" else "") + " need less")
    if vae_tiling and anatomy.vae_tile is None:
        notes.append(f"{anatomy.vae_class or 'this pipeline'} has no tiled decoding; --vae-tiling changes nothing")
    if decode > activations and not vae_tiling and anatomy.vae_tile is not None and decode > 2**30:
        notes.append("the VAE decode is the largest part: --vae-tiling decodes in tiles")
    seconds = None
    if timing:
        speed = matmul_throughput(device, dtype) * EFFICIENCY.get(device.type, 0.2)
        seconds = (steps * cfg * flops + decode_flops) / speed
        if mode in ("sequential", "group") and device.type == "cuda":
            seconds += steps * cfg * weights.get(anatomy.denoiser or "", 0) / 16e9  # weights cross PCIe (~16 GB/s) every step
    return MemoryEstimate(
        pipeline=anatomy.class_name, device=str(device), dtype=str(dtype).replace("torch.", ""), num_frames=frames, height=height, width=width,
        steps=steps, weights=weights, activations=int(activations), decode=int(decode), offload=mode, peak=int(peak), resident=resident,
        available=available, seconds=seconds, notes=notes,
    )


def estimate(model: str | os.PathLike | ModelFolder | DiffusersPipeline, *, device: str | torch.device = "auto", dtype: str | torch.dtype | None = None,
             memory: MemorySettings | None = None, quantize: str | None = None, **options: Any) -> MemoryEstimate:
    """Peak memory and time of one clip of a diffusers pipeline (a folder, hub id or loaded pipeline) with these
    options, before running it; weights are counted from the configs, nothing is loaded (`kinema generate --dry-run`);
    ``quantize`` "int8": with the denoiser's Linear weights in int8 (a loaded pipeline counts as it was loaded)."""
    from kinema.device import resolve_device, resolve_dtype
    from kinema.hub import open_model

    if isinstance(model, DiffusersPipeline):
        return model.estimate(**options)
    check_quantize(quantize)
    if isinstance(model, VideoPipeline):
        raise ValueError(f"--dry-run and the memory estimate are only for diffusers pipelines; {model.source} is a Kinema model")
    folder = model if isinstance(model, ModelFolder) else open_model(model)
    if not folder.diffusers:
        raise ValueError(f"--dry-run and the memory estimate are only for diffusers pipelines; {folder.name} is a Kinema model")
    memory = memory or MemorySettings()
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    check_offload(device, memory.offload)
    cls, anatomy = folder_anatomy(folder)
    settings = DiffusersSettings.from_dict(folder.index.settings, str(folder.path / DIFFUSERS_SETTINGS_NAME))
    contract, native, _ = declare(cls, anatomy, settings, memory, folder.name)
    values = contract.resolve(options, has_image=True, who=folder.name)
    return estimate_from(anatomy, values, native, device, dtype, memory.offload, memory.vae_tiling, quantize=quantize)


def fit_report(model: str | os.PathLike | None, *, prompt: str | None = None, image: bool = False, device: str | torch.device = "auto",
               dtype: str | torch.dtype | None = None, memory: MemorySettings | None = None, dry_run: bool = False, lora: Any = None,
               cache: str | None = None, quantize: str | None = None, **options: Any) -> list[str]:
    """What `kinema generate` prints before loading: the estimate's lines for a diffusers model, once the call
    (``prompt``, when one clip is made of it; whether an ``image`` is given; ``options``; the ``lora`` files and
    whether the pipeline takes them, the step ``cache`` and the ``quantize`` mode) is checked; none for Kinema's own
    models, whose runs are small (``dry_run``, the estimate alone, is an error there). The estimate counts the weights
    as they will be loaded, the denoiser's Linear weights in int8 with ``quantize``."""
    from kinema.hub import DEFAULT_MODEL, names_diffusers, open_model
    from kinema.pipelines.quantize import check_offload  # not this module's check_offload(device, mode)

    loras = lora_list(lora)
    check_cache(cache)
    check_quantize(quantize, need_package=True)
    check_offload(quantize, getattr(memory, "offload", None))
    if not names_diffusers(model):
        if dry_run:
            raise ValueError(f"--dry-run is only for diffusers pipelines; {model or DEFAULT_MODEL} is a Kinema model")
        return []
    folder = open_model(model)
    contract = DiffusersPipeline.folder_contract(folder)
    if prompt is not None or contract.image_required:
        contract.check_prompts([] if prompt is None else [prompt], image, folder.name)
    if loras or cache is not None:
        cls, anatomy = folder_anatomy(folder)
        entry = json.loads((folder.path / INDEX_NAME).read_text()).get(anatomy.denoiser or "")
        denoiser = getattr(importlib.import_module(entry[0]), entry[1], None) if isinstance(entry, list) and len(entry) == 2 and None not in entry else None
        check_support(folder.name, cls, denoiser, anatomy.denoiser, anatomy.layers, bool(loras), cache)
        guidance = contract.option("guidance_scale")
        check_guided(cache, options.get("guidance_scale", guidance.default if guidance else None))
    return estimate(folder, device=device, dtype=dtype, memory=memory, quantize=quantize, **options).lines()


# ---------------------------------------------------------------------------------------------- the pipeline


def _images(image: np.ndarray | torch.Tensor, batch: int) -> list:
    """uint8 (h, w, 3) or (b, h, w, 3) -> one PIL image per clip (what diffusers' image-to-video pipelines take)."""
    from PIL import Image

    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype != np.uint8 or array.shape[-1:] != (3,) or array.ndim not in (3, 4):
        raise ValueError(f"image must be uint8 (h, w, 3) or (b, h, w, 3), got {array.dtype} {tuple(array.shape)}")
    frames = [array] if array.ndim == 3 else list(array)
    if len(frames) not in (1, batch):
        raise ValueError(f"give one image or one per clip ({batch}), got {len(frames)}")
    return [Image.fromarray(np.ascontiguousarray(frames[min(i, len(frames) - 1)])) for i in range(batch)]


def to_uint8_frames(frames: Any) -> np.ndarray:
    """diffusers' output_type="np" frames, floats in [0, 1] (b, f, h, w, 3) -> uint8, rounded as diffusers' PIL output is."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"the pipeline returned frames of shape {frames.shape}; expected (batch, frames, height, width, 3)")
    if not np.isfinite(frames).all():
        raise FloatingPointError("the pipeline returned NaN or infinite frames (in float16 often an overflow: try --dtype bfloat16 or float32)")
    return np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)


@contextlib.contextmanager
def _hub_errors(folder: ModelFolder):
    """A hub pipeline whose weights are not cached while offline: the one-line error, not diffusers' page of text."""
    try:
        yield
    except OSError as error:
        if folder.hub_id is None or not folder.hub_offline:
            raise
        raise FileNotFoundError(f"{folder.hub_id}: its weights are not in the local cache and the Hugging Face hub cannot be reached "
                                f"(offline); download it where there is a network and pass the folder, e.g. --model ./{folder.hub_id.split('/')[-1]}") from error


def _dtype_keyword() -> str:
    """diffusers renamed from_pretrained's torch_dtype to dtype; older versions only know torch_dtype."""
    from diffusers.pipelines import pipeline_utils

    return "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"


class DiffusersPipeline(VideoPipeline):
    """A diffusers video pipeline behind Kinema's contract: one diffusers call per clip, with the clip's own
    generator (clip i of seed S is a direct call with a generator seeded S + i), frames returned as uint8.

    Calls are serialised: diffusers pipelines keep per-call state (their scheduler's steps, some VAEs' caches),
    so one loaded pipeline serves several threads one call at a time.
    """

    name = "diffusers"
    settings_class = DiffusersSettings
    components: ClassVar[dict[str, str]] = {}
    autocast = False  # diffusers pipelines handle their dtypes themselves
    takes_memory_settings = True
    takes_lora = True
    takes_cache = True

    def __init__(self, pipe, settings: DiffusersSettings | None = None, memory: MemorySettings | None = None, who: str | None = None) -> None:
        self.pipe = pipe
        self.settings = settings or DiffusersSettings()
        self.memory = memory or MemorySettings()
        self.source = who or type(pipe).__name__
        self.parameters = dict(inspect.signature(type(pipe).__call__).parameters)
        self.anatomy = anatomy_of(type(pipe).__name__, self.modules())
        self._contract, self.native, self.fps_keyword = declare(type(pipe), self.anatomy, self.settings, self.memory, self.source)
        self.offload = "none"  # the placement now
        self._lock = threading.RLock()
        self._previewers: dict[tuple[int, int, int], LatentPreviewer] = {}  # the VAE's linear preview by fit size, built on the first preview
        self._no_preview: str | None = None  # why previews cannot be made, once found (said once)
        self.loras: list[dict[str, Any]] = []  # the LoRAs loaded (file, sha256, scale), for provenance
        self.cache: str | None = None  # the step cache turned on (CACHE_MODES)
        pipe.set_progress_bar_config(disable=True)  # Kinema draws its own (the step callback)
        if self.memory.vae_tiling:
            vae = getattr(pipe, "vae", None)
            if vae is None or not hasattr(vae, "enable_tiling"):
                raise ValueError(f"--vae-tiling: {self.source}'s VAE ({type(vae).__name__}) cannot decode in tiles")
            vae.enable_tiling()

    @classmethod
    def folder_contract(cls, folder: ModelFolder) -> Contract:
        pipeline, anatomy = folder_anatomy(folder)
        settings = DiffusersSettings.from_dict(folder.index.settings, str(folder.path / DIFFUSERS_SETTINGS_NAME))
        return declare(pipeline, anatomy, settings, MemorySettings(), folder.name)[0]

    @classmethod
    def from_folder(cls, folder: ModelFolder, device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32,
                    memory: MemorySettings | None = None, lora: Any = None, cache: str | None = None, **components: Any) -> DiffusersPipeline:
        """Load with diffusers' from_pretrained (the cache only when the hub cannot be reached), then place it:
        on the device, or offloaded as ``memory`` says (auto: only when the estimate does not fit); then load
        the ``lora`` list (``lora_list``) and turn on the step ``cache`` (CACHE_MODES)."""
        loras = lora_list(lora)
        check_cache(cache)
        from diffusers import DiffusionPipeline

        from kinema.models.text import MiniLMEncoder

        memory = memory or MemorySettings()
        pipeline, _ = folder_anatomy(folder)
        check_offload(device, memory.offload)
        # Kinema's own pipelines share a MiniLM text encoder this way; it is none of a diffusers pipeline's components
        components = {k: v for k, v in components.items() if not isinstance(v, MiniLMEncoder)}
        index = json.loads((folder.path / INDEX_NAME).read_text())
        unknown = [k for k in components if k not in index or k.startswith("_")]
        if unknown:
            raise ValueError(f"{folder.name} has no component {unknown[0]!r}; it has {', '.join(k for k in index if not k.startswith('_'))}")
        settings = DiffusersSettings.from_dict(folder.index.settings, str(folder.path / DIFFUSERS_SETTINGS_NAME))
        with _hub_errors(folder):
            pipe = DiffusionPipeline.from_pretrained(folder.hub_id or str(folder.path), local_files_only=folder.hub_id is None or folder.hub_offline,
                                                     **{_dtype_keyword(): dtype}, **components)
        if not isinstance(pipe, pipeline):
            raise ModelFormatError(f"{folder.where} loaded as {type(pipe).__name__}, not the {pipeline.__name__} it names")
        loaded = cls(pipe, settings, memory, who=folder.name)
        mode = memory.offload
        if mode is None:  # auto: what the estimate for the default call says
            mode = loaded.estimate(device=device).offload if device.type == "cuda" else "none"
        loaded.place(device, mode)
        loaded.load_loras(loras)
        if cache is not None:
            loaded.enable_cache(cache)
        return loaded

    def load_loras(self, lora: Any) -> None:
        """Load LoRAs (``lora_list``: paths, 'PATH:scale' or (path, scale) pairs) through the pipeline's
        load_lora_weights, one adapter each, and weigh them with set_adapters; a ValueError in one line for a
        pipeline that cannot take them or a LoRA none of whose keys match the model."""
        loras = lora_list(lora)
        if not loras:
            return
        self._check_support(lora=True)
        import importlib.util

        if importlib.util.find_spec("peft") is None:
            raise ImportError("--lora needs the peft package, which diffusers loads LoRAs with: pip install peft")
        from diffusers.utils import logging as diffusers_logging

        with self._lock:
            for i, item in enumerate(loras, start=len(self.loras)):
                name = f"kinema_lora_{i}"
                verbosity = diffusers_logging.get_verbosity()
                diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # its warnings and errors about the keys: our error below
                try:
                    self.pipe.load_lora_weights(str(item.path), adapter_name=name)
                except Exception as error:  # noqa: BLE001 - peft's NoMatchingPeftModuleError, diffusers' "Invalid LoRA checkpoint"
                    if type(error).__name__ != "NoMatchingPeftModuleError" and not isinstance(error, (ValueError, KeyError, OSError)):
                        raise
                    raise ValueError(f"--lora {item.path}: {self._lora_mismatch() if 'not found' in str(error) else str(error)}") from error
                finally:
                    diffusers_logging.set_verbosity(verbosity)
                if not any(name in adapters for adapters in self.pipe.get_list_adapters().values()):
                    raise ValueError(f"--lora {item.path}: {self._lora_mismatch()}")
                self.loras.append({"file": item.path.name, "sha256": item.sha256, "scale": item.scale})
            self.pipe.set_adapters([f"kinema_lora_{i}" for i in range(len(self.loras))], [entry["scale"] for entry in self.loras])

    def _check_support(self, lora: bool = False, cache: str | None = None) -> None:
        denoiser = getattr(self.pipe, self.anatomy.denoiser or "", None)
        blocks = max((len(m) for m in denoiser.children() if isinstance(m, torch.nn.ModuleList)), default=0) if denoiser is not None else 0
        check_support(self.source, type(self.pipe), None if denoiser is None else type(denoiser), self.anatomy.denoiser, blocks, lora, cache)

    def _lora_mismatch(self) -> str:
        parts = ", ".join(getattr(self.pipe, "_lora_loadable_modules", None) or [self.anatomy.denoiser or "model"])
        return f"none of its keys match a layer of {self.source}'s {parts} ({type(self.pipe).__name__}): a LoRA made for another model?"

    def enable_cache(self, mode: str) -> None:
        """Turn on one of diffusers' step caches on the transformer (``cache_config``); a ValueError naming what
        supports them for a UNet pipeline or a transformer without them."""
        self._check_support(cache=mode)
        transformer = self.pipe.transformer
        with self._lock:
            if transformer.is_cache_enabled:
                transformer.disable_cache()
            from diffusers.utils import logging as diffusers_logging

            verbosity = diffusers_logging.get_verbosity()
            diffusers_logging.set_verbosity_error()  # FasterCache's "purely experimental" warning: the README says what was measured
            try:
                transformer.enable_cache(cache_config(mode, self.pipe, self.anatomy.class_name.startswith(FRAMES_FIRST)))
            finally:
                diffusers_logging.set_verbosity(verbosity)
            self.cache = mode

    def load_record(self) -> dict[str, Any]:
        """What was changed on the loaded pipeline that changes its frames: the LoRAs, the step cache and quantization (provenance)."""
        return {**({"lora": list(self.loras)} if self.loras else {}), **({"cache": self.cache} if self.cache else {}), **super().load_record()}

    def quantization_targets(self) -> dict[str, torch.nn.Module]:
        """The denoiser (pipe.transformer or pipe.unet, and Wan 2.2's second transformer): where the weights and the time
        are; the text encoder and the VAE stay as loaded."""
        from kinema.pipelines.quantize import check_offload

        check_offload("int8", self.offload)
        names = [n for n in (self.anatomy.denoiser, "transformer_2") if n and isinstance(getattr(self.pipe, n, None), torch.nn.Module)]
        if not names:
            raise ValueError(f"--quantize: {self.source} ({type(self.pipe).__name__}) has no transformer or unet to quantize")
        return {name: getattr(self.pipe, name) for name in names}

    def place(self, device: torch.device, offload: str = "none") -> None:
        """Put the networks on ``device`` (none) or offload them to CPU memory, moving each network (model), each
        layer (sequential) or each block (group) onto ``device`` only while it runs (diffusers' offloading)."""
        if offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {offload!r}")
        with self._lock:
            if offload == "none":
                self.pipe.to(device)
            elif offload == "model":
                self.pipe.enable_model_cpu_offload(device=device)
            elif offload == "sequential":
                self.pipe.enable_sequential_cpu_offload(device=device)
            else:
                self.pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"), offload_type="block_level",
                                               num_blocks_per_group=1, use_stream=device.type == "cuda")
            self.offload = offload
            self._device = torch.device(device)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {name: c for name, c in self.pipe.components.items() if isinstance(c, torch.nn.Module)}

    @property
    def device(self) -> torch.device:
        """Where the networks run (with offloading: the accelerator they are moved onto)."""
        return getattr(self, "_device", None) or self.pipe._execution_device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.dtype

    def contract(self) -> Contract:
        return self._contract

    def save_pretrained(self, folder: str | os.PathLike, overwrite: bool = False, training: dict[str, Any] | None = None) -> Path:
        """Write the pipeline as diffusers does (save_pretrained), plus kinema.json when it has Kinema defaults."""
        from kinema import __version__
        from kinema.io.atomic import atomic_dir

        check_not_quantized(self)

        with atomic_dir(folder, overwrite=overwrite) as tmp:
            self.pipe.save_pretrained(tmp)
            if self.settings.defaults or training:
                data = {"_kinema_version": __version__, **self.settings.to_dict(), **({"_training": training} if training else {})}
                (Path(tmp) / DIFFUSERS_SETTINGS_NAME).write_text(json.dumps(data, indent=2) + "\n")
        return Path(folder)

    def estimate(self, device: str | torch.device | None = None, **options: Any) -> MemoryEstimate:
        """Peak memory and time of one clip with these options, on ``device`` (default: where it runs now)."""
        values = self._contract.resolve(options, has_image=True, who=self.source)
        device = torch.device(device) if device is not None else self.device
        # the weights already on the device (int8 ones as stored): free memory no longer counts them
        resident = sum(weight_bytes(m) for m in self.modules().values()) if self.offload == "none" and self.device == device else 0
        auto = self.memory.offload is None and self.offload == "none"
        return estimate_from(self.anatomy, values, self.native, device, self.dtype, None if auto else self.offload, self.memory.vae_tiling, resident,
                             quantize=self.quantized)

    def _call_keywords(self, values: dict[str, Any]) -> dict[str, Any]:
        """The options that differ from what the pipeline does on its own: only those are passed."""
        call = {}
        for name, value in values.items():
            if value is None or value == self.native.get(name) or name == "preview_every":  # Kinema's own, not the pipeline's
                continue
            if name == "fps":
                if self.fps_keyword is not None:
                    call[self.fps_keyword] = value
                continue
            call[name] = value
        return call

    def _fit(self, options: dict[str, Any]) -> str | None:
        """With automatic placement on a GPU, placed whole: offload now if this call's estimate does not fit, and say so."""
        if self.memory.offload is not None or self.offload != "none" or self.device.type != "cuda":
            return None
        fit = self.estimate(**{k: v for k, v in options.items() if v is not None})
        if fit.offload == "none":
            return None
        self.place(self.device, fit.offload)
        return fit.notes[0] if fit.notes else f"{fit.offload} offloading turned on"

    def _generate(self, prompts: list[str], image: np.ndarray | torch.Tensor | None, generators: list[torch.Generator],
                  options: dict[str, Any], callback: Callback | None) -> VideoPipelineOutput:
        # 1. inputs were checked against the contract; the first frames as PIL images, one per clip
        images = None if image is None else _images(image, len(prompts))
        keywords = self._call_keywords(options)
        total = options.get("num_inference_steps") or self.native.get("num_inference_steps") or 0
        guidance = options.get("guidance_scale")
        check_guided(self.cache, self.native.get("guidance_scale") if guidance is None else guidance)
        clips = []
        with self._lock:
            # 2. fit: offload now when the estimate for this call does not fit (auto, on a GPU, placed whole)
            notes = [note] if (note := self._fit(options)) else []
            # 3. one call per clip with its own generator: the seed rule holds exactly, whatever the batch
            for i, (prompt, generator) in enumerate(zip(prompts, generators)):
                call = dict(keywords, generator=generator, output_type="np")
                if "prompt" in self.parameters:
                    call["prompt"] = prompt
                if images is not None:
                    call["image"] = images[i]
                if callback is not None:
                    call.update(self._step_callback(callback, total, options.get("preview_every") or 0, notes))
                # 4. denoise and decode (diffusers)
                clips.append(to_uint8_frames(self.pipe(**call).frames))
        # 5. uint8 (b, f, h, w, 3)
        return VideoPipelineOutput(frames=np.concatenate(clips), prompts=prompts, warnings=notes)

    def _step_callback(self, callback: Callback, total: int, preview_every: int = 0, notes: list[str] | None = None) -> dict[str, Any]:
        """Kinema's callback(step, total, preview) as the pipeline's own step callback (new style or old); every
        ``preview_every`` steps the preview is the latents through the VAE's linear map, or None (a note in
        ``notes``, once per loaded pipeline, says why) where the latents or the VAE are not understood here."""

        def preview(step: int, latents: Any) -> np.ndarray | None:
            if not preview_every or step % preview_every or self._no_preview is not None:
                return None
            try:
                return self._preview(latents)
            except Exception as error:  # noqa: BLE001 - a preview is a picture, not a reason to end the run
                self._no_preview = " ".join(str(error).split()) or type(error).__name__
                note = f"{self.source}: no step previews ({self._no_preview})"
                warnings.warn(note, stacklevel=2)
                if notes is not None:
                    notes.append(note)
                return None

        if "callback_on_step_end" in self.parameters:
            def on_step_end(pipe, i, t, tensors):
                callback(i + 1, getattr(pipe, "num_timesteps", None) or total, preview(i + 1, tensors.get("latents")))
                return {}

            return {"callback_on_step_end": on_step_end}
        if "callback" in self.parameters:
            return {"callback": lambda i, t, latents: callback(i + 1, total, preview(i + 1, latents)), "callback_steps": 1}
        return {}

    def _preview(self, latents: Any) -> np.ndarray:
        """uint8 (b, f, h, w, 3) of the pipeline's latents, through the VAE's linear map; a ValueError saying why not."""
        if not isinstance(latents, torch.Tensor) or latents.ndim != 5:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise ValueError(f"its latents are {shape}, not a (batch, channels, frames, height, width) video latent: packed latents are not read here")
        if self.anatomy.class_name.startswith(FRAMES_FIRST):  # (b, f, c, h, w)
            latents = latents.transpose(1, 2)
        previewer = self.latent_previewer(latents.shape[-2:])
        if latents.shape[1] != previewer.channels:
            raise ValueError(f"its latents {tuple(latents.shape)} have no axis of the VAE's {previewer.channels} channels where expected")
        return previewer.frames(latents.detach())

    def latent_previewer(self, size: tuple[int, int] = (16, 16)) -> LatentPreviewer:
        """The pipeline VAE's linear latent -> RGB preview (fitted once per VAE, then cached: kinema.pipelines.preview),
        on the latents as the pipeline holds them: raw = z * latents_std / scaling_factor + latents_mean, the
        diffusers pipelines' own undoing of their scaling (CogVideoX, ModelScope, Wan, Mochi, HunyuanVideo).

        It is fitted on latents of 3 frames and ``size`` (the call's latent size), at most 16x16: real models'
        latents are larger, so they share one fit; tiny test models fit at their own small size, in a moment."""
        grid = (3, min(16, int(size[0])), min(16, int(size[1])))
        if grid in self._previewers:
            return self._previewers[grid]
        vae = getattr(self.pipe, "vae", None)
        config = dict(getattr(vae, "config", None) or {})
        channels = config.get("latent_channels") or config.get("z_dim")
        if vae is None or not hasattr(vae, "decode") or not isinstance(channels, int):
            raise ValueError(f"its VAE ({type(vae).__name__}) has no latent channel count to fit a preview on")
        scale = torch.as_tensor(config.get("latents_std") or 1.0, dtype=torch.float32) / float(config.get("scaling_factor") or 1.0)
        shift = torch.as_tensor(config.get("latents_mean") or 0.0, dtype=torch.float32)
        device, dtype = self.device, vae.dtype
        takes_frames = "num_frames" in inspect.signature(vae.decode).parameters  # Stable Video Diffusion's temporal decoder
        # image VAEs (ModelScope's AutoencoderKL) decode frame by frame
        frame_wise = takes_frames or not any(isinstance(m, torch.nn.Conv3d) for m in vae.modules())

        def decode(z: torch.Tensor) -> torch.Tensor:
            z = z.to(device, dtype)
            if not frame_wise:
                return vae.decode(z).sample.float()
            flat = rearrange(z, "b c f h w -> (b f) c h w")
            video = vae.decode(flat, **({"num_frames": flat.shape[0]} if takes_frames else {})).sample.float()
            return rearrange(video, "(b f) c h w -> b c f h w", b=z.shape[0])

        def encode(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device, dtype)
            flat = rearrange(x, "b c f h w -> (b f) c h w") if frame_wise else x
            out = vae.encode(flat)
            z = out.latent_dist.mode() if hasattr(out, "latent_dist") else out.latents
            return rearrange(z, "(b f) c h w -> b c f h w", b=x.shape[0]) if frame_wise else z

        t, s = (1 if frame_wise else self.anatomy.temporal), self.anatomy.spatial
        self._previewers[grid] = LatentPreviewer(vae, decode, channels, encode=encode if hasattr(vae, "encode") else None,
                                                 clip=(1 + t * (grid[0] - 1), grid[1] * s, grid[2] * s), grid=grid, scale=scale, shift=shift)
        return self._previewers[grid]


# ---------------------------------------------------------------------------------------------- a tiny pipeline for tests


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which CLIP's byte-level BPE vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def tiny_clip_vocabulary() -> dict[str, int]:
    """A CLIP BPE vocabulary without merges: the two special tokens and every byte, alone and word-final."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in _bytes_to_unicode().values():
            vocab.setdefault(char + suffix, len(vocab))
    return vocab


def tiny_pipeline(text_encoder: Any = None, variant: str = "unet") -> DiffusersPipeline:
    """A random TextToVideoSDPipeline (UNet3DConditionModel + AutoencoderKL + CLIP text model, character-level
    tokenizer) making 4 frames of 16x16 in 2 steps, for the conformance suite; built offline in a second.
    ``text_encoder`` (Kinema's shared MiniLM) is not used: the pipeline has its own."""
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if variant != "unet":
        raise ValueError(f"variant must be unet, got {variant!r}")
    vocab = tiny_clip_vocabulary()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet3DConditionModel(
            block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4, norm_num_groups=4,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            cross_attention_dim=8, attention_head_dim=4,
        )
        vae = AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3, latent_channels=4, sample_size=16, norm_num_groups=4,
                            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
        clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_attention_heads=2, num_hidden_layers=2,
                                            max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=8))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=clip.eval(), tokenizer=tokenizer, unet=unet.eval(), scheduler=scheduler)
    return DiffusersPipeline(pipe, DiffusersSettings(defaults={"num_frames": 4, "num_inference_steps": 2}), who="tiny TextToVideoSDPipeline")


register(Registration(name="diffusers", pipeline=DiffusersPipeline, tiny=tiny_pipeline))
