"""What every pipeline shares: the declared contract (what a model takes), the base class that checks a
call against it, per-clip seeds, the output dataclass and decoding to uint8."""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from kinema.models.base import check_keys
from kinema.models.text import PromptReference

if TYPE_CHECKING:
    from kinema.hub import ModelFolder

# A prompt whose MiniLM cosine to the nearest training prompt is below this still generates, with a
# warning naming that prompt. scripts/calibrate_prompt_threshold.py: in-domain prompts (the varied
# Shapes captions and typed paraphrases) score >= 0.41, off-topic ones <= 0.34.
OOD_THRESHOLD = 0.37
MAX_SEED = 2**63 - 1 - 100_000  # seed + clip index must stay a valid torch seed

Callback = Callable[[int, int, "np.ndarray | None"], None]  # (step, total, decoded preview or None)


class PipelineSettings:
    """Mixin for a pipeline's settings dataclass (the sampling defaults in model_index.json's "settings")."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "settings"):
        """Rebuild the settings; a key the dataclass does not know is an error naming it and ``where``."""
        check_keys(data, cls.__dataclass_fields__, where)
        return cls(**{k: v for k, v in data.items() if not k.startswith("_")})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- contract


@dataclass(frozen=True)
class Option:
    """One keyword a pipeline call takes, with its default and the values it allows."""

    name: str  # the keyword, as diffusers names it where it has one (num_inference_steps, guidance_scale)
    type: type  # int, float or str
    default: Any
    help: str
    low: float | None = None  # smallest allowed value
    high: float | None = None  # largest allowed value
    low_open: bool = False  # the value must be strictly above ``low``
    choices: tuple[str, ...] = ()
    alias: str | None = None  # short name, also the CLI flag (--steps): steps, guidance, frames, negative
    needs_image: bool = False  # only meaningful with a first frame (image-to-video)
    multiple: int = 1  # whole numbers only: value - offset must be a multiple of this (sizes a latent grid divides,
    offset: int = 0  # frame counts a temporal VAE compresses: 4k + 1)
    cli: bool = True  # `kinema generate` has a flag for it; False: the Python API only (a diffusers pipeline's own keywords)

    @property
    def label(self) -> str:
        """How messages name it: with its CLI flag where it has one."""
        return f"{self.name} ({self.flag})" if self.cli else self.name

    @property
    def flag(self) -> str:
        return "--" + (self.alias or self.name).replace("_", "-")

    def allowed(self) -> str:
        """The values it takes, in words: "one of a, b", ">= 1 and <= 1000", "a str"."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        step = ""
        if self.multiple > 1:
            step = f"a multiple of {self.multiple}" if not self.offset else f"{self.offset} more than a multiple of {self.multiple}"
        if self.low is None and self.high is None:
            return step or ("an int" if self.type is int else f"a {self.type.__name__}")
        low = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        high = "" if self.high is None else f"<= {self.high:g}"
        return ", ".join(p for p in (step, " and ".join(p for p in (low, high) if p)) if p)

    def describe(self) -> str:
        default = "" if self.default is None else f", default {self.default!r}"
        image = ", with --image only" if self.needs_image else ""
        return f"{self.label}: {self.allowed()}{default}{image}"

    def check(self, value: Any) -> Any:
        """The value as this option's type, or a ValueError naming the option and what it allows."""
        name = self.label
        if self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be text, got {value!r}")
            if self.choices and value not in self.choices:
                raise ValueError(f"{name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if self.type is int:
            if float(value) != int(value):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high or (self.multiple > 1 and (value - self.offset) % self.multiple):
            raise ValueError(f"{name} must be {self.allowed()}, got {value:g}")
        return value


@dataclass(frozen=True)
class Contract:
    """What a loaded pipeline takes: its conditioning, its options and their defaults.

    The CLI, the Python API and the studio read this; a call with an option the model does not take
    fails with a message listing what it does take.
    """

    tasks: tuple[str, ...]  # "text-to-video", "image-to-video", "unconditional"
    prompt: str  # "required", "optional" (an image alone will do; with task "unconditional", nothing) or "none"
    image: bool  # whether a first frame can be given
    options: tuple[Option, ...]
    size: tuple[int, int]  # (height, width) of the frames by default
    prompt_choices: tuple[str, ...] = ()  # class-conditional models: the prompts they know
    image_required: bool = False  # image-to-video only (a first frame must be given)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if name in (o.name, o.alias)), None)

    def describe(self) -> str:
        takes = {"required": "a prompt", "optional": "a prompt", "none": "no prompt"}[self.prompt]
        if self.prompt_choices:
            takes = f"a prompt, one of: {', '.join(self.prompt_choices)}"
        if self.image_required:
            takes = "an image (first frame)" + (", optionally a prompt" if self.prompt == "optional" else " and a prompt" if self.prompt == "required" else ", no prompt")
        elif self.image:
            takes += " and/or an image (first frame)" if self.prompt == "optional" else ", optionally an image (first frame)"
        if self.prompt == "optional" and "unconditional" in self.tasks:
            takes += ", or neither (unconditional)"
        return takes

    def takes(self) -> str:
        return "; ".join(o.describe() for o in self.options)

    def check_prompts(self, prompts: list[str], has_image: bool, who: str) -> None:
        """Refuse prompts (and an image) this model does not take, saying what it does take."""
        given = [p for p in prompts if p.strip()]
        if self.image_required and not has_image:
            raise ValueError(f"{who} is an image-to-video model: give a first frame (--image)")
        if self.prompt == "none" and given and self.image_required:
            raise ValueError(f"{who} animates an image and takes no prompt (got {given[0]!r}); give only --image")
        if self.prompt == "none" and given:
            raise ValueError(f"{who} is unconditional: it takes no prompt (got {given[0]!r}); generate without one")
        if self.prompt == "required" and (len(given) < len(prompts) or not prompts):
            choices = f", one of: {', '.join(self.prompt_choices)}" if self.prompt_choices else ""
            raise ValueError(f"{who} is a {self.tasks[0]} model: give a prompt{choices}")
        if self.prompt == "optional" and not given and not has_image and "unconditional" not in self.tasks:
            raise ValueError("give a prompt, a first-frame image, or both")
        if self.prompt_choices:
            for p in prompts:
                if p.strip() not in self.prompt_choices:
                    raise ValueError(f"{p!r} is not a class of this model; the prompt must be one of: {', '.join(self.prompt_choices)}")
        if has_image and not self.image:
            raise ValueError(f"{who} cannot animate an image (it was trained without image conditioning)")

    def check_call(self, prompts: list[str], has_image: bool, options: dict[str, Any], who: str) -> dict[str, Any]:
        """Check a whole call (prompts, image, options) before any work; every option's value as it will be used."""
        self.check_prompts(prompts, has_image, who)
        return self.resolve(options, has_image, who)

    def resolve(self, options: dict[str, Any], has_image: bool, who: str) -> dict[str, Any]:
        """Every declared option with its value for this call (given or default), checked; refuses others."""
        given: dict[str, Any] = {}
        for key, value in options.items():
            if value is None:  # not given: the default
                continue
            option = self.option(key)
            if option is None:
                raise ValueError(f"{who} does not take {key}; it takes: {self.takes()}")
            if option.name in given:
                raise ValueError(f"{option.name} given twice (as {option.name} and {option.alias})")
            if option.needs_image and not has_image:
                raise ValueError(f"{who}: {option.label} applies to image-to-video only; give an image or leave it out")
            given[option.name] = option.check(value)
        return {o.name: given.get(o.name, o.default) for o in self.options}


# ---------------------------------------------------------------------------------------------- output


@dataclass
class VideoPipelineOutput:
    frames: np.ndarray  # uint8 (b, f, h, w, 3)
    prompts: list[str]  # the prompt of each clip ("" where there was none)
    seeds: list[int | None] = field(default_factory=list)  # the seed of each clip (None: drawn from a given generator)
    options: dict[str, Any] = field(default_factory=dict)  # every option's value as used
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        b, f, h, w, _ = self.frames.shape
        prompts = ", ".join(repr(p) for p in self.prompts[:2]) + (", ..." if len(self.prompts) > 2 else "")
        return f"{type(self).__name__}({b} clip{'s' * (b != 1)} of {f} frames at {w}x{h}, prompts=[{prompts}], seeds={self.seeds[:4]})"


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(b, c, f, h, w) in [-1, 1] -> uint8 (b, f, h, w, c)."""
    video = video.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return rearrange(video, "b c f h w -> b f h w c").cpu().numpy()


def resize_video(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(b, c, f, h, w) -> (b, c, f, *size), bilinear; unchanged when already that size."""
    if tuple(video.shape[-2:]) == tuple(size):
        return video
    frames = F.interpolate(rearrange(video.float(), "b c f h w -> (b f) c h w"), size=size, mode="bilinear", align_corners=False)
    return rearrange(frames, "(b f) c h w -> b c f h w", f=video.shape[2])


def image_tensor(image: np.ndarray | torch.Tensor, batch: int) -> torch.Tensor:
    """uint8 (h, w, 3) or (b, h, w, 3) -> (batch, 3, h, w) float in [-1, 1] on the CPU, at the image's own size."""
    image = torch.as_tensor(np.array(image))  # a copy: read-only arrays (decoded images) stay untouched
    if image.dtype != torch.uint8 or image.shape[-1] != 3 or image.dim() not in (3, 4):
        raise ValueError(f"image must be uint8 (h, w, 3) or (b, h, w, 3), got {image.dtype} {tuple(image.shape)}")
    image = image[None] if image.dim() == 3 else image
    if image.shape[0] not in (1, batch):
        raise ValueError(f"give one image or one per clip ({batch}), got {image.shape[0]}")
    return rearrange(image, "b h w c -> b c h w").float().div(127.5).sub(1).expand(batch, -1, -1, -1)


def first_frame_tensor(image: np.ndarray | torch.Tensor, batch: int, size: int, device: torch.device) -> torch.Tensor:
    """uint8 (h, w, 3) or (b, h, w, 3) -> (batch, 3, size, size) in [-1, 1]: the first frame a model animates."""
    image = image_tensor(image, batch)
    if image.shape[-2:] != (size, size):
        image = F.interpolate(image, size=(size, size), mode="area")
    return image.to(device)


def paste_first_frame(video: torch.Tensor, image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Frame 0 of (b, c, f, h, w) in [-1, 1] becomes the given image at the video's size: image-to-video
    output starts exactly on the picture it was given, whatever the model drew there."""
    h, w = video.shape[-2:]
    first = image_tensor(image, video.shape[0])
    if first.shape[-2] >= h and first.shape[-1] >= w:
        first = F.interpolate(first, size=(h, w), mode="area")  # the mean of each output pixel's area: exact for 2x, 4x
    else:
        first = F.interpolate(first, size=(h, w), mode="bilinear", align_corners=False)
    video = video.clone()
    video[:, :, 0] = first.to(video.device, video.dtype)
    return video


def check_seed(seed: Any) -> int:
    """A seed as an int, or a ValueError: a whole number from 0 to MAX_SEED (seed + clip index stays a torch seed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed (--seed) must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return int(seed)


def clip_generators(count: int, seed: int | None, generator: torch.Generator | Sequence[torch.Generator] | None) -> tuple[list[torch.Generator], list[int | None]]:
    """One CPU generator per clip, and the seed of each: clip i of a call with ``seed`` S uses S + i.

    A list of generators gives one per clip; a single generator is shared (clips draw from it in order).
    Without either, the seed is drawn from torch's global generator.
    """
    if generator is not None and seed is not None:
        raise ValueError("give a seed or a generator, not both")
    if isinstance(generator, torch.Generator):
        return [generator] * count, [None] * count
    if generator is not None:
        generators = list(generator)
        if len(generators) != count:
            raise ValueError(f"give one generator per clip ({count}), got {len(generators)}")
        return generators, [None] * count
    seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else check_seed(seed)
    seeds = [seed + i for i in range(count)]
    return [torch.Generator().manual_seed(s) for s in seeds], list(seeds)


def randn_per_clip(shape: tuple[int, ...], generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """(len(generators), *shape) standard normal, clip i drawn from generators[i] on the CPU (the same
    frames on every device and for every batch size), then moved to ``device``."""
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)


# ---------------------------------------------------------------------------------------------- the base class


def check_not_quantized(pipe: VideoPipeline) -> None:
    if pipe.quantized:
        raise ValueError(f"a pipeline quantized at load ({pipe.quantized}) is not saved: save the model as it was loaded, "
                         "and quantize when loading it (--quantize)")


class VideoPipeline:
    """Inference only: a call checks its inputs against the declared contract, gives every clip its seed,
    and hands over to ``_generate``, which each family writes with its steps numbered.

    A pipeline keeps no per-call state: one loaded pipeline serves several threads at once.
    Subclasses set ``name`` (what model_index.json says), ``settings_class`` and ``components`` (the
    networks it loads, by component name and class), and register with ``kinema.pipelines.register``.
    """

    name: ClassVar[str]
    settings_class: ClassVar[type]
    components: ClassVar[dict[str, str]]  # component name -> network class name
    settings: Any
    source: str = "this model"  # how the user named the model (set by load_pipeline), for messages
    autocast: ClassVar[bool] = True  # run under autocast in the weights' type when they are not float32
    takes_memory_settings: ClassVar[bool] = False  # load_pipeline(memory=...): offloading, VAE tiling (diffusers pipelines)
    takes_lora: ClassVar[bool] = False  # load_pipeline(lora=...): LoRA adapters (diffusers pipelines)
    takes_cache: ClassVar[bool] = False  # load_pipeline(cache=...): a step cache (diffusers transformer pipelines)
    quantized: str | None = None  # load_pipeline(quantize=...): the mode its Linear weights were quantized to (int8), every pipeline
    vocabulary: Any = None  # the kinema.text.Vocabulary its folder declares (set by load_pipeline); None: any wording

    @classmethod
    def declare(cls, configs: dict[str, Any], settings: Any) -> Contract:
        """The contract of a model with these component configs and settings (no weights needed)."""
        raise NotImplementedError

    def contract(self) -> Contract:
        return self.declare({name: module.config for name, module in self.modules().items()}, self.settings)

    @classmethod
    def folder_contract(cls, folder: ModelFolder) -> Contract:
        """The contract of an opened model folder, read from its configs and settings (no weights loaded)."""
        from kinema.models.base import model_class_named

        names = list(cls.components)
        configs = {}
        for name in folder.index.components:
            network = model_class_named(folder.component_class(name))
            configs[names[0] if folder.legacy else name] = network.read_config(folder.component(name))
        return cls.declare(configs, cls.settings_class.from_dict(folder.index.settings, f"{folder.where} settings"))

    @classmethod
    def from_folder(cls, folder: ModelFolder, device: torch.device, dtype: torch.dtype, **components: Any) -> VideoPipeline:
        """Build from an opened model folder; ``components`` passes ready objects (a loaded text encoder)."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
                        **components: Any) -> VideoPipeline:
        """This pipeline from a built-in name, model folder or run folder (``load_pipeline`` picks the class for you)."""
        from kinema.hub import open_model
        from kinema.pipelines import resolve_device, resolve_dtype

        device = resolve_device(device)
        return cls.from_folder(open_model(model), device, resolve_dtype(dtype, device), **components)

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks by component name (what save_pretrained writes)."""
        raise NotImplementedError

    def load_record(self) -> dict[str, Any]:
        """What was done to the loaded model that changes its frames (LoRAs, a step cache, quantization), for the provenance record."""
        return {"quantize": self.quantized} if self.quantized else {}

    def quantization_targets(self) -> dict[str, torch.nn.Module]:
        """The networks ``quantize`` converts: all of them (the text encoder is shared and stays as loaded)."""
        return self.modules()

    def quantize(self, mode: str = "int8") -> int:
        """Store the Linear weights of ``quantization_targets`` in int8 (kinema.pipelines.quantize: torchao's weight-only
        int8; convolutions stay as they are); returns how many layers were converted. Done once, at load."""
        from kinema.pipelines.quantize import check_quantize, quantize_linear

        check_quantize(mode, need_package=True)
        if self.quantized is not None:
            raise ValueError(f"{self.source} is already quantized ({self.quantized})")
        converted = sum(quantize_linear(module, mode) for module in self.quantization_targets().values())
        self.quantized = mode
        return converted

    @property
    def device(self) -> torch.device:
        return next(next(iter(self.modules().values())).parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(next(iter(self.modules().values())).parameters()).dtype

    def save_pretrained(self, folder: str | os.PathLike, overwrite: bool = False, training: dict[str, Any] | None = None) -> Path:
        """Write this pipeline as a model folder (format 1): one subfolder per component and model_index.json."""
        from kinema.hub import ModelIndex

        check_not_quantized(self)
        from kinema.io.atomic import atomic_dir

        with atomic_dir(folder, overwrite=overwrite) as tmp:
            for name, module in self.modules().items():
                module.save_pretrained(tmp / name)
            ModelIndex(pipeline=self.name, components={n: n for n in self.modules()}, settings=self.settings.to_dict(),
                       training=training or {}, vocabulary=self.vocabulary.to_json() if self.vocabulary else None).write(tmp)
        return Path(folder)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str] | None = None,
        *,
        image: np.ndarray | torch.Tensor | None = None,
        num_videos: int = 1,
        seed: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        callback: Callback | None = None,
        **options: Any,
    ) -> VideoPipelineOutput:
        """Generate ``num_videos`` clips per prompt (or ``num_videos`` clips for an unconditional model).

        ``image``: a first frame, uint8 (h, w, 3) or one per clip (image-to-video); frame 0 of every clip
        is that image. ``seed``: clip i uses seed + i, so a clip does not depend on the batch it is in.
        ``options``: what ``contract()`` declares (num_inference_steps, guidance_scale, ...), checked.
        ``callback(step, total, preview)`` runs after every step.
        """
        contract = self.contract()
        prompts = [] if prompt is None else [prompt] if isinstance(prompt, str) else list(prompt)
        if any(not isinstance(p, str) for p in prompts):
            raise ValueError("prompt must be text or a list of texts")
        if isinstance(num_videos, bool) or not isinstance(num_videos, int) or num_videos < 1:
            raise ValueError(f"num_videos must be a whole number >= 1, got {num_videos!r}")
        if not prompts and contract.prompt != "required":
            prompts = [""]
        values = contract.check_call(prompts, image is not None, options, self.source)
        prompts = [p for p in prompts for _ in range(num_videos)]
        generators, seeds = clip_generators(len(prompts), seed, generator)
        # weights stored in bfloat16 / float16: autocast runs the float32 inputs (noise, embeddings) in that type
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast and self.dtype != torch.float32):
            out = self._generate(prompts, image, generators, values, callback)
        out.seeds, out.options = seeds, values
        return out

    def _generate(self, prompts: list[str], image, generators: list[torch.Generator], options: dict[str, Any],
                  callback: Callback | None) -> VideoPipelineOutput:
        raise NotImplementedError


class ReferencePrompts:
    """Mixin for text-conditioned pipelines (``self.text_encoder``, ``self.settings.reference_prompts`` and
    ``.ood_threshold``): each prompt's nearest training prompt, and a warning for those far from all."""

    _reference: PromptReference | None = None
    _reference_lock = threading.Lock()

    def closest_reference(self, prompts: Sequence[str]) -> list[tuple[str, float]]:
        """For each prompt, the nearest training prompt and its MiniLM cosine."""
        with self._reference_lock:
            if self._reference is None:
                self._reference = PromptReference(self.text_encoder, self.settings.reference_prompts)
        return self._reference.closest(prompts)

    def far_prompt_warnings(self, prompts: Sequence[str]) -> list[str]:
        """Warn (and return the messages) for each non-empty prompt below the settings' ood_threshold."""
        notes = []
        unique = list(dict.fromkeys(prompts))
        for prompt, (reference, cos) in zip(unique, self.closest_reference(unique)):
            if prompt.strip() and cos < self.settings.ood_threshold:
                notes.append(f"prompt {prompt!r} is far from what this model was trained on (cosine {cos:.2f}); "
                             f"closest it understands: {reference!r}")
                warnings.warn(notes[-1], stacklevel=4)
        return notes
