"""VideoGPT's prior: a decoder-only transformer over a VQ-VAE's code grid, conditioned on a text prefix.

The codes of a clip, (t', h', w') from kinema.models.vqvae, are read in raster order (frame by frame,
row by row) as one sequence. Each token is its code's embedding plus factorised (axial) learned
position embeddings, pos_t[t] + pos_h[h] + pos_w[w] (VideoGPT), so the model can be trained and
sampled on any prefix of the grid. The sequence the transformer sees is

    [text prefix: MiniLM tokens, projected]  [BOS]  [code 0] ... [code N-2]

and the output at BOS predicts code 0, the output at code j predicts code j + 1. The prefix attends
bidirectionally (a prefix LM: every prompt token sees the whole prompt, as in the text encoder it
came from), padded prompt tokens are masked, and code tokens attend causally to the codes before
them and to the whole prefix. The empty prompt "" (MiniLM's [CLS] [SEP]) is the unconditional
prompt: training drops captions to it, and classifier-free guidance contrasts with it.

Image-to-video needs nothing special: the VQ-VAE codes an image as the first latent frame of a clip,
so sampling starts after those h' * w' known codes. Sampling runs with a key/value cache (one token
per step after a prefill of the prompt and the known codes); `generate` draws every clip's tokens
from its own torch.Generator, so a clip does not depend on the batch it is in.

The network knows nothing of training: the "videogpt" objective (kinema.training.objectives.videogpt)
trains it on the codes of a frozen VQ-VAE, and the "videogpt" pipeline drives it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kinema.models.base import PretrainedMixin


@dataclass
class VideoGPTConfig:
    """Shape of the transformer prior. Defaults: the codes of configs/vqvae/shapes.yaml (5 x 8 x 8, 1024 codes)."""

    vocab_size: int = 1024  # the VQ-VAE's codebook_size
    # the code grid of the longest clip (the VQ-VAE's latent_shape of the training clips): the sizes of the
    # axial position tables. Shorter clips are prefixes of it.
    latent_frames: int = 5
    latent_height: int = 8
    latent_width: int = 8
    width: int = 256  # model width
    layers: int = 6
    heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.0  # on the residual branches, while training
    # on the attention weights, while training: any value above 0 sends scaled_dot_product_attention down its math path on
    # a CPU (torch 2.13), which materialises the weights and draws a mask over them: a training step of the Shapes prior
    # (batch 16, one thread) took 6.1 s with 0.1 against 2.2 s with 0 (flash attention)
    attention_dropout: float = 0.0
    text_dim: int = 384  # width of the prompt token embeddings (all-MiniLM-L6-v2)

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {self.vocab_size}")
        if min(self.latent_frames, self.latent_height, self.latent_width) < 1:
            raise ValueError("latent_frames, latent_height and latent_width must be at least 1")
        if self.width < 1 or self.layers < 1 or self.heads < 1 or self.width % self.heads:
            raise ValueError(f"width must be a positive multiple of heads and layers at least 1, got width {self.width}, "
                             f"heads {self.heads}, layers {self.layers}")
        if self.mlp_ratio <= 0 or not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.attention_dropout < 1.0 or self.text_dim < 1:
            raise ValueError("mlp_ratio must be positive, dropout and attention_dropout in [0, 1) and text_dim at least 1")

    @property
    def max_tokens(self) -> int:
        return self.latent_frames * self.latent_height * self.latent_width


# ------------------------------------------------------------------------------------------ sampling helpers


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits (..., V) with the tokens outside the top-k and outside the nucleus set to -inf.

    top_k: keep the k largest logits (ties with the k-th are kept too); 0 keeps all.
    top_p: keep the smallest set of most likely tokens whose probability reaches top_p (the most
    likely token always stays); 1.0 keeps all. Both given: top-k first, the nucleus of what is left.
    """
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_k must be 0 or more and top_p in (0, 1], got {top_k} and {top_p}")
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True, stable=True)
        probs = ordered.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
        drop = before >= top_p
        drop[..., 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), -torch.inf)
    return logits


def sample_tokens(logits: torch.Tensor, generators: Sequence[torch.Generator], temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> torch.Tensor:
    """One token (b,) per row of logits (b, V): row i draws one uniform number from generators[i] (on the CPU),
    so its token does not depend on the other rows. temperature scales the logits before filtering."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if len(generators) != logits.shape[0]:
        raise ValueError(f"give one generator per row ({logits.shape[0]}), got {len(generators)}")
    probs = filter_logits(logits.float() / temperature, top_k, top_p).softmax(dim=-1)
    cdf = probs.cumsum(dim=-1)
    u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators]).to(cdf.device)
    target = (u * cdf[:, -1].double()).float()[:, None]
    # the first token whose cumulative probability exceeds u: tokens of probability 0 are never drawn, and a u that
    # rounds up to the total lands on the last token that can be drawn
    last = probs.shape[-1] - 1 - (probs > 0).flip(-1).int().argmax(dim=-1)
    return torch.minimum(torch.searchsorted(cdf, target, right=True).squeeze(1), last)


# ------------------------------------------------------------------------------------------ layers


@dataclass
class KVCache:
    """Keys and values of every position so far, per layer, for sampling one token at a time."""

    valid: torch.Tensor  # (b, capacity) bool: which positions may be attended to (prompt padding may not)
    text_length: int  # positions of the prompt prefix (BOS follows it)
    length: int = 0  # positions filled
    # per layer (b, heads, capacity, head_dim), allocated by the first write (in the dtype attention runs in)
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the keys and values (b, heads, s, hd) of the next s positions; all keys and values so far."""
        if layer == len(self.keys):
            shape = (*k.shape[:2], self.valid.shape[1], k.shape[3])
            self.keys.append(k.new_zeros(shape))
            self.values.append(v.new_zeros(shape))
        end = self.length + k.shape[2]
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    @property
    def next_code(self) -> int:
        """Index of the code the next input token is (its axial position)."""
        return self.length - self.text_length - 1


class Attention(nn.Module):
    def __init__(self, config: VideoGPTConfig) -> None:
        super().__init__()
        self.heads, self.dropout = config.heads, config.attention_dropout
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # each (b, heads, s, hd)
        if cache is not None:
            k, v = cache.write(layer, k, v)  # (b, heads, positions so far, hd)
        if self.training and x.device.type == "cpu" and not self.dropout and torch.is_grad_enabled():
            a = matmul_attention(q, k, v, mask)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(a.transpose(1, 2).reshape(b, s, d))  # (b, s, d)


def matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attention as two matmuls and a softmax, for training on a CPU: torch's CPU flash attention runs its backward pass
    at a small fraction of the matmul peak for short heads, and two plain matmuls (the weights kept for the backward pass:
    batch x heads x positions^2 values) are faster. Shapes prior (head size 32, 352 positions, batch 16, bf16 autocast,
    2 threads, one run): 0.678 s a training step against 0.767 s; the loss on 16 real clips' codes 1.04387 against
    flash's 1.04390, gradients within 2.2% of float32's (flash: 1.8%). ``mask``: True where a query may see a key."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    return torch.matmul(scores.masked_fill(~mask, float("-inf")).softmax(-1).to(v.dtype), v)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: VideoGPTConfig) -> None:
        super().__init__()
        hidden = int(config.width * config.mlp_ratio)
        self.norm1, self.attn = nn.LayerNorm(config.width), Attention(config)
        self.norm2 = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, hidden), nn.GELU(), nn.Linear(hidden, config.width))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


# ------------------------------------------------------------------------------------------ the model


class VideoGPT(PretrainedMixin, nn.Module):
    """Next-code prediction over a VQ-VAE code grid, with a MiniLM prompt prefix.

    `forward(codes, text_tokens, text_mask)` gives the logits of every code from the codes before it
    (teacher forcing, for training); `prefill` + `step` do the same one token at a time with a
    key/value cache; `generate` samples.
    """

    config_class = VideoGPTConfig

    def __init__(self, config: VideoGPTConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.text_proj = nn.Sequential(nn.LayerNorm(config.text_dim), nn.Linear(config.text_dim, d))
        self.bos = nn.Parameter(torch.zeros(1, 1, d))
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.pos_t = nn.Parameter(torch.zeros(config.latent_frames, d))
        self.pos_h = nn.Parameter(torch.zeros(config.latent_height, d))
        self.pos_w = nn.Parameter(torch.zeros(config.latent_width, d))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size, bias=False)
        self.drop = nn.Dropout(config.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02), residual projections scaled down by the depth (nanoGPT)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for p in (self.bos, self.pos_t, self.pos_h, self.pos_w):
            nn.init.normal_(p, std=0.02)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, std=0.02 / (2 * self.config.layers) ** 0.5)
            nn.init.normal_(block.mlp[2].weight, std=0.02 / (2 * self.config.layers) ** 0.5)

    # -------------------------------------------------------------------------- inputs

    def _check(self, codes: torch.Tensor, text_tokens: torch.Tensor, text_mask: torch.Tensor) -> None:
        c = self.config
        if codes.ndim != 2 or codes.dtype != torch.long:
            raise ValueError(f"expected codes (b, n) of dtype long (the flattened code grid), got {codes.dtype} {tuple(codes.shape)}")
        if codes.shape[1] > c.max_tokens:
            raise ValueError(f"at most {c.max_tokens} codes ({c.latent_frames} x {c.latent_height} x {c.latent_width}), got {codes.shape[1]}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= c.vocab_size):
            raise ValueError(f"codes must be in [0, {c.vocab_size}), got values from {codes.min()} to {codes.max()}")
        if text_tokens.ndim != 3 or text_tokens.shape[-1] != c.text_dim or text_mask.shape != text_tokens.shape[:2]:
            raise ValueError(f"expected text tokens (b, n, {c.text_dim}) and a mask (b, n), got {tuple(text_tokens.shape)} and {tuple(text_mask.shape)}")
        if text_tokens.shape[0] != codes.shape[0]:
            raise ValueError(f"codes and text disagree on the batch: {codes.shape[0]} and {text_tokens.shape[0]}")

    def positions(self, start: int, count: int) -> torch.Tensor:
        """Axial position embeddings (count, d) of codes start .. start + count - 1 in raster order."""
        c = self.config
        index = torch.arange(start, start + count, device=self.pos_t.device)
        t, h, w = index // (c.latent_height * c.latent_width), (index // c.latent_width) % c.latent_height, index % c.latent_width
        return self.pos_t[t] + self.pos_h[h] + self.pos_w[w]

    def _code_inputs(self, codes: torch.Tensor, start: int) -> torch.Tensor:
        """Codes (b, n) at positions start.. -> input embeddings (b, n, d)."""
        return self.token_embedding(codes) + self.positions(start, codes.shape[1])

    def _prefix(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """[projected prompt tokens, BOS]: (b, n + 1, d)."""
        text = self.text_proj(text_tokens.to(self.bos.dtype))
        return torch.cat([text, self.bos.expand(text.shape[0], -1, -1)], dim=1)

    @staticmethod
    def attention_mask(valid: torch.Tensor, text_length: int, start: int, count: int) -> torch.Tensor:
        """Which keys (b, 1, count, start + count) each query at positions start.. may attend to.

        ``valid`` (b, >= start + count): keys that exist (prompt padding does not). Prompt keys are seen by
        every query (the prefix is bidirectional), code and BOS keys causally; every query sees itself, so
        a padded prompt position never has an empty row.
        """
        keys = torch.arange(start + count, device=valid.device)
        queries = torch.arange(start, start + count, device=valid.device)[:, None]
        allowed = (keys < text_length) | (keys <= queries)  # (count, keys)
        return ((allowed & valid[:, None, : start + count]) | (keys == queries))[:, None]

    def _run(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, cache, i)
        if cache is not None:
            cache.length += x.shape[1]
        return x

    # -------------------------------------------------------------------------- teacher forcing

    def forward(self, codes: torch.Tensor, text_tokens: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Logits (b, n, vocab) of codes (b, n): row j from the prompt and codes 0 .. j - 1."""
        self._check(codes, text_tokens, text_mask)
        b, n = codes.shape
        m = text_tokens.shape[1]
        x = torch.cat([self._prefix(text_tokens), self._code_inputs(codes[:, :-1], 0)], dim=1)  # (b, m + n, d)
        valid = torch.cat([text_mask.bool(), text_mask.new_ones(b, n, dtype=torch.bool)], dim=1)
        x = self._run(x, self.attention_mask(valid, m, 0, m + n))
        return self.head(self.norm(x[:, m:]))

    # -------------------------------------------------------------------------- cached decoding

    def prefill(self, text_tokens: torch.Tensor, text_mask: torch.Tensor, codes: torch.Tensor | None = None,
                max_tokens: int | None = None) -> tuple[torch.Tensor, KVCache]:
        """Run the prompt and the known codes (b, k) (none: k = 0) through the model and keep their keys and
        values; returns the logits (b, vocab) of code k and the cache. ``max_tokens``: the length of the code
        sequence being sampled (default: the whole grid); the cache holds the inputs that predict it."""
        b, m = text_mask.shape
        codes = torch.zeros(b, 0, dtype=torch.long, device=text_tokens.device) if codes is None else codes
        self._check(codes, text_tokens, text_mask)
        max_tokens = self.config.max_tokens if max_tokens is None else max_tokens
        if not codes.shape[1] < max_tokens <= self.config.max_tokens:
            raise ValueError(f"max_tokens must be more than the {codes.shape[1]} known codes and at most {self.config.max_tokens}, got {max_tokens}")
        capacity = m + max_tokens  # the prompt, BOS and every code but the last (which is never an input)
        cache = KVCache(valid=torch.cat([text_mask.bool(), text_mask.new_ones(b, capacity - m, dtype=torch.bool)], dim=1), text_length=m)
        x = torch.cat([self._prefix(text_tokens), self._code_inputs(codes, 0)], dim=1)  # (b, m + 1 + k, d)
        x = self._run(x, self.attention_mask(cache.valid, m, 0, x.shape[1]), cache)
        return self.head(self.norm(x[:, -1])), cache

    def step(self, token: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Feed the next code (b,) and get the logits (b, vocab) of the one after it."""
        index = cache.next_code
        if cache.length >= cache.valid.shape[1]:
            raise ValueError(f"the cache is full: it holds {cache.length} positions, and the last code is never an input")
        x = self._code_inputs(token[:, None], index)  # (b, 1, d)
        x = self._run(x, self.attention_mask(cache.valid, cache.text_length, cache.length, 1), cache)
        return self.head(self.norm(x[:, -1]))

    @torch.no_grad()
    def generate(
        self,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        num_tokens: int,
        generators: Sequence[torch.Generator],
        *,
        known: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        guidance_scale: float = 1.0,
        null_tokens: torch.Tensor | None = None,
        null_mask: torch.Tensor | None = None,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Codes (b, num_tokens): the ``known`` codes (b, k) first (image-to-video: the image's codes), the rest
        sampled one at a time with the cache, clip i from generators[i].

        guidance_scale != 1: classifier-free guidance against the prompt ``null_tokens`` / ``null_mask`` (the
        empty prompt, or a negative one), run in the same batch; the guided next-token distribution is
        log p_null + scale * (log p_prompt - log p_null). ``callback(done, total, codes)`` after every sampled code,
        with the codes (b, k + done) so far.
        """
        b = text_tokens.shape[0]
        known = torch.zeros(b, 0, dtype=torch.long, device=text_tokens.device) if known is None else known
        if not known.shape[1] <= num_tokens <= self.config.max_tokens:
            raise ValueError(f"num_tokens must be from {known.shape[1]} (the known codes) to {self.config.max_tokens}, got {num_tokens}")
        if known.shape[1] == num_tokens:  # image-to-video of one frame: nothing to sample
            return known
        guided = guidance_scale != 1.0
        if guided:
            if null_tokens is None or null_mask is None:
                raise ValueError("classifier-free guidance needs the unconditional prompt (null_tokens and null_mask)")
            text_tokens, text_mask = _stack_padded(text_tokens, text_mask, null_tokens, null_mask)
        logits, cache = self.prefill(text_tokens, text_mask, torch.cat([known, known]) if guided else known, max_tokens=num_tokens)
        out = [known]
        total = num_tokens - known.shape[1]
        for i in range(total):
            logits = logits.float()
            if guided:
                cond, null = logits.log_softmax(dim=-1).chunk(2)
                logits = null + guidance_scale * (cond - null)
            token = sample_tokens(logits, generators, temperature, top_k, top_p)  # (b,)
            out.append(token[:, None])
            if i + 1 < total:
                logits = self.step(torch.cat([token, token]) if guided else token, cache)
            if callback is not None:
                callback(i + 1, total, torch.cat(out, dim=1))
        return torch.cat(out, dim=1)


def _stack_padded(a: torch.Tensor, a_mask: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches of prompt tokens (x, n, d) and masks, right-padded to one length and stacked."""
    n = max(a.shape[1], b.shape[1])

    def pad(t: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        extra = n - t.shape[1]
        return F.pad(t, (0, 0, 0, extra)), F.pad(mask.bool(), (0, extra), value=False)

    (a, a_mask), (b, b_mask) = pad(a, a_mask), pad(b, b_mask)
    return torch.cat([a, b]), torch.cat([a_mask, b_mask])
