"""Weight-only int8 quantization of a loaded pipeline's networks (torchao), for `kinema generate --quantize int8`.

Only nn.Linear layers are quantized: torchao 0.18's Int8WeightOnlyConfig has no convolution (a Conv2d or Conv3d
whose weight it converted fails at the first call with NotImplementedError: aten.convolution on Int8Tensor), so a
U-Net keeps its convolutions in floating point. Each Linear weight becomes a torchao Int8Tensor: int8 values with one
scale per output channel; the matmul still runs in the activations' dtype (the int8 weight is converted at every
call), so the saving is memory, not time (benchmarks/quantize.py measures both).
"""

from __future__ import annotations

import importlib.util
import logging

import torch

QUANTIZE_MODES = ("int8",)
TORCHAO_INSTALL = "pip install torchao==0.18.0"  # the version measured beside torch 2.13.0; it requires no torch of its own


def check_quantize(mode: str | None, need_package: bool = False) -> None:
    """A ValueError in one line for a mode other than QUANTIZE_MODES, and (``need_package``) when torchao is missing."""
    if mode is None:
        return
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize (--quantize) must be one of {', '.join(QUANTIZE_MODES)}, got {mode!r}")
    if need_package and importlib.util.find_spec("torchao") is None:
        raise ValueError(f"--quantize {mode} needs the torchao package, which is not installed: {TORCHAO_INSTALL} "
                         "(or pip install 'kinema[quantize]')")


def check_offload(mode: str | None, offload: str | None) -> None:
    """Quantizing and offloading together were never measured (offloading moves the weights quantization converts)."""
    if mode is not None and offload not in (None, "none"):
        raise ValueError(f"--quantize {mode} with --offload {offload} was never measured (offloading moves the weights it "
                         "converts); quantize without offloading")


def mute_torchao_noise() -> None:
    """Quiet what importing torchao 0.18 prints, which diffusers does on its own whenever torchao is installed (its model
    classes import diffusers.quantizers): torchao's warning for each CUDA-only library it cannot load (on a CPU build of
    torch only, where they cannot load), torch's deprecation warning about two Enums torchao registers, and diffusers
    0.42.1's warning that it cannot import torchao Tensor classes 0.18 no longer has (NF4Tensor; they matter only for
    checkpoints saved quantized by torchao, which Kinema does not write). Sets logger levels; imports nothing."""
    names = ["torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"] + (["torchao"] if torch.version.cuda is None else [])
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)


def is_quantized(weight: torch.Tensor) -> bool:
    """Whether a weight is one torchao quantized (an Int8Tensor, for int8)."""
    if importlib.util.find_spec("torchao") is None:
        return False
    mute_torchao_noise()
    from torchao.quantization import Int8Tensor

    return isinstance(weight, Int8Tensor)


def quantize_linear(module: torch.nn.Module, mode: str = "int8") -> int:
    """Quantize the weights of ``module``'s nn.Linear layers in place (torchao's weight-only int8, one scale per output
    channel); returns how many layers it converted. A LoRA's own layers (peft's lora_A / lora_B) stay in floating point:
    they are small and their scale is set after loading."""
    check_quantize(mode, need_package=True)
    mute_torchao_noise()
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    converted = []

    def chosen(layer: torch.nn.Module, name: str) -> bool:
        take = isinstance(layer, torch.nn.Linear) and not is_quantized(layer.weight) and "lora_" not in name
        if take:
            converted.append(layer)
        return take

    # set_inductor_config=False: the default changes torch._inductor's global settings, which no torch.compile here asks for
    quantize_(module, Int8WeightOnlyConfig(set_inductor_config=False), filter_fn=chosen)
    for layer in converted:
        layer.register_forward_hook(_as_autocast_does)
    return len(converted)


def _as_autocast_does(layer: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    """An int8 Linear returns its input's dtype, where autocast gives a Linear's output in the autocast dtype: Kinema's
    bfloat16 models (autocast over bfloat16 weights) then hand a float32 tensor to a bfloat16 LayerNorm, which fails
    ("mixed dtype (CPU)"). Give the output autocast's dtype, as a float Linear would have had it."""
    kind = output.device.type
    if torch.is_autocast_enabled(kind) and output.is_floating_point() and output.dtype != torch.get_autocast_dtype(kind):
        return output.to(torch.get_autocast_dtype(kind))
    return output


def int8_linear_bytes(values: int, rows: int) -> int:
    """Bytes torchao's weight-only int8 stores for Linear weights of ``values`` entries over ``rows`` output rows: an int8
    value each and a float32 scale a row (whatever the weights' dtype was): what the memory estimate counts."""
    return values + 4 * rows


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes the parameters and buffers of ``module`` hold (an int8 weight counts its int8 values and its scales)."""
    total = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if is_quantized(tensor):
            total += sum(getattr(tensor, name).numel() * getattr(tensor, name).element_size() for name in tensor.tensor_data_names)
        else:
            total += tensor.numel() * tensor.element_size()
    return total
