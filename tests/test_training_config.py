"""Run configs, the family registry, checkpoint files and the data order: the trainer's parts, without training."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from kinema.training import ConfigError, load_config
from kinema.training.checkpoint import (
    CorruptCheckpoint,
    capture_rng,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    prune_checkpoints,
    restore_rng,
    save_checkpoint,
    to_cpu,
)
from kinema.training.config import dump_yaml, parse_yaml
from kinema.training.sampler import DataPosition, GlobalBatchSampler

TINY = Path(__file__).resolve().parents[1] / "configs" / "toy" / "tiny.yaml"


# ---------------------------------------------------------------------------- configs


def test_tiny_config_loads_with_schema_defaults():
    cfg = load_config(TINY)
    assert cfg.family == "toy"
    assert cfg.train.batch_size == 8 and cfg.train.lr == 3e-3
    assert cfg.train.mixed_precision == "no"  # a default from TrainConfig, not from the YAML
    assert cfg.model.hidden == 16 and cfg.data.noise_std == 0.5


def test_typo_in_override_names_key_suggestion_and_allowed_keys():
    with pytest.raises(ConfigError) as info:
        load_config(TINY, ["train.lerning_rate=0.1"])
    message = str(info.value)
    assert "--set train.lerning_rate" in message
    assert "unknown key 'train.lerning_rate'; did you mean 'train.lr'?" in message
    assert "allowed in train:" in message and "max_steps" in message and "checkpoint_every" in message


@pytest.mark.parametrize("override", ["train.lr.warmup=1", "train.lr.a.b=1"])
def test_an_override_under_a_value_names_the_value_that_is_not_a_section(override):
    """`--set train.lr.x=1` treats a number as a section: the message must point at train.lr, the part that is wrong."""
    with pytest.raises(ConfigError) as info:
        load_config(TINY, [override])
    assert str(info.value) == f"--set {override!r}: train.lr is a value, not a section"


def test_typo_in_yaml_file_names_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("  hidden: 16", "  hiden: 16"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.hiden'; did you mean 'model\.hidden'\?"):
        load_config(bad)
    bad.write_text(TINY.read_text().replace("train:", "trian:"))
    with pytest.raises(ConfigError, match=r"unknown key 'trian'; did you mean 'train'\?"):
        load_config(bad)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.max_steps=ten", "train.max_steps must be an integer, got 'ten' (str)"),
        ("train.max_steps=true", "train.max_steps must be an integer, got True (bool)"),
        ("train.lr=fast", "train.lr must be a number, got 'fast' (str)"),
        ("train.lr=true", "train.lr must be a number, got True (bool)"),  # not silently 1.0
        ("train.max_grad_norm=false", "train.max_grad_norm must be a number or null, got False (bool)"),  # not clipping at 0
        ("train.mixed_precision=fp8", "train.mixed_precision must be one of 'no', 'bf16', 'fp16', got 'fp8' (str)"),
        ("train.betas=[0.9]", "train.betas must have 2 items"),
        ("train.betas=[0.9, fast]", "train.betas[1] must be a number, got 'fast' (str)"),
        ("train.max_grad_norm=[1]", "train.max_grad_norm must be a number or null"),
        ("train.compile=3", "train.compile must be true or false or a list of strings, got 3 (int)"),
        ("train.max_steps=0", "train.max_steps must be at least 1, got 0"),
        ("model.dropout=2.0", "dropout must be in [0, 1)"),
        ("train=3", "train must be a mapping of keys for TrainConfig"),
    ],
)
def test_wrong_type_or_value_is_named(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(TINY, [override])
    assert expected in str(info.value)


# every numeric field of train: at its boundary: the value just inside loads, the one just outside names the field
_BOUNDARIES = [
    *[(f"train.{name}", 1, 0, "must be at least 1") for name in
      ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "keep_checkpoints", "log_every", "num_samples")],
    *[(f"train.{name}", 0, -1, "must be 0 or more") for name in ("warmup_steps", "sample_every", "num_workers")],
    ("train.seed", 2**32 - 1, 2**32, "must be in [0, 2**32)"),
    ("train.seed", 0, -1, "must be in [0, 2**32)"),
    ("train.lr", 1e-12, 0.0, "must be positive"),
    ("train.min_lr_ratio", 1.0, 1.01, "must be in [0, 1]"),
    ("train.min_lr_ratio", 0.0, -0.01, "must be in [0, 1]"),
    ("train.ema_decay", 0.9999, 1.0, "must be in (0, 1) or null"),
    ("train.ema_decay", 1e-6, 0.0, "must be in (0, 1) or null"),
    ("train.max_grad_norm", 1e-6, 0.0, "must be positive or null"),
]


@pytest.mark.parametrize("key, inside, outside, message", _BOUNDARIES, ids=[f"{b[0]}={b[2]}" for b in _BOUNDARIES])
def test_numeric_train_fields_at_their_boundaries(key, inside, outside, message):
    cfg = load_config(TINY, [f"{key}={inside}", "train.batch_size=8" if key != "train.batch_size" else "train.batch_size=1"])
    assert getattr(cfg.train, key.split(".")[1]) == inside
    with pytest.raises(ConfigError) as info:
        load_config(TINY, [f"{key}={outside}"])
    assert f"{key} {message}, got {outside}" in str(info.value)


def test_yaml_values_read_the_way_they_are_written():
    cfg = load_config(TINY, ["train.mixed_precision=no", "train.lr=1e-4", "train.max_grad_norm=null", "train.betas=[0.5, 0.99]"])
    assert cfg.train.mixed_precision == "no"  # YAML 1.1 would have read `no` as False
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)  # YAML 1.1 would have read a string
    assert cfg.train.max_grad_norm is None
    assert cfg.train.betas == (0.5, 0.99)


def test_unknown_family_lists_known_ones(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: toyy\n")
    with pytest.raises(ConfigError, match=r"unknown family 'toyy'; known families: .*toy"):
        load_config(bad)


@pytest.mark.parametrize("line, shown", [("family: 3", "3"), ("family: [toy]", "['toy']"), ("train: {}", "None")])
def test_a_family_that_is_not_a_name_is_refused_as_such(tmp_path, line, shown):
    """`family:` must name a registered family; a number, a list or nothing at all gets that said, not a lookup error."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(info.value).endswith(f"family is required and must be a string naming a registered family, got {shown}")


@pytest.mark.parametrize("value, shown", [("[]", "[] (list)"), ("false", "False (bool)"), ("0", "0 (int)"), ("''", "'' (str)")])
def test_a_section_that_is_empty_but_not_a_mapping_is_refused(tmp_path, value, shown):
    """`data: []` or `data: false` is a mistake, not "use the defaults" (only an empty `data:` means that)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"family: toy\ndata: {value}\n")
    with pytest.raises(ConfigError, match=rf"data must be a mapping of keys for ToyDataConfig, got {re.escape(shown)}$"):
        load_config(bad)
    from kinema.training.objectives.toy import ToyDataConfig

    bad.write_text("family: toy\ndata:\n")
    assert load_config(bad).data == ToyDataConfig()  # an empty section: every default


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(TINY, ["train.max_grad_norm=null", "train.max_steps=7"])
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(cfg))
    assert load_config(saved) == cfg
    assert parse_yaml(saved.read_text())["train"]["warmup_steps"] == 5  # every field written out, defaults included


def test_to_dict_turns_nested_tuples_and_configs_into_plain_yaml_values():
    """What config.yaml and checkpoints store must be plain YAML even inside lists: a tuple or config there would not dump."""
    import dataclasses

    import yaml

    from kinema.training.config import TrainConfig, to_dict

    train = TrainConfig(betas=(0.5, 0.99))
    plain = to_dict({"pairs": [(1, 2), (3, (4, 5))], "runs": [train]})
    assert plain["pairs"] == [[1, 2], [3, [4, 5]]] and type(plain["pairs"][0]) is list and type(plain["pairs"][1][1]) is list
    assert plain["runs"] == [{**dataclasses.asdict(train), "betas": [0.5, 0.99]}] and type(plain["runs"][0]) is dict
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain


# ---------------------------------------------------------------------------- checkpoints


def _state(step: int) -> dict:
    return {"step": step, "weights": {"w": torch.randn(64, 64), "b": torch.zeros(3, dtype=torch.bfloat16)}, "rng": [capture_rng()], "config": {"a": [1, 2.5, None]}}


def test_checkpoint_round_trip_restores_every_rng(tmp_path):
    torch.manual_seed(1), np.random.seed(1)
    save_checkpoint(tmp_path / "step_000001.pt", _state(1))
    expected = (torch.rand(3), np.random.rand(3), __import__("random").random())
    torch.manual_seed(2), np.random.seed(2)
    state = load_checkpoint(tmp_path / "step_000001.pt")
    restore_rng(state["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert __import__("random").random() == expected[2]


@pytest.mark.parametrize("damage", ["flip a byte in the tensor data", "truncate", "garbage"])
def test_damaged_checkpoint_is_detected_and_previous_one_used(tmp_path, damage):
    for step in (10, 20):
        save_checkpoint(checkpoint_path(tmp_path, step), _state(step))
    newest = checkpoint_path(tmp_path, 20)
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a checkpoint" * 100)
    else:
        data[len(data) // 2] ^= 0xFF  # torch.load alone would not notice this one
    newest.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(newest)
    warnings = []
    path, state = load_latest(tmp_path, warnings.append)
    assert path == checkpoint_path(tmp_path, 10) and state["step"] == 10
    assert len(warnings) == 1 and "step_000020.pt" in warnings[0] and "previous" in warnings[0]


@pytest.mark.parametrize("key", ["scalar", "single"])
def test_a_modified_one_number_tensor_is_caught_by_the_digest(tmp_path, key):
    """Adam's step count and EMA's update count are one-number tensors: editing one must fail the digest like any weight."""
    path = tmp_path / "step_000001.pt"
    save_checkpoint(path, {"step": 1, "optimizer": {"scalar": torch.tensor(10.0), "single": torch.tensor([7.0])}, "w": torch.ones(4)})
    raw = torch.load(path, weights_only=False)
    raw["optimizer"][key] += 1  # the digest stored beside it is left as it was
    torch.save(raw, path)
    with pytest.raises(CorruptCheckpoint, match="does not match its digest"):
        load_checkpoint(path)


@pytest.mark.parametrize("what", ["no digest", "another format", "a list"])
def test_a_file_that_is_not_a_whole_kinema_checkpoint_is_refused_as_such_and_the_previous_one_used(tmp_path, what):
    """A .pt saved by other code, or one missing its digest, must read as "not a kinema checkpoint", never as a KeyError."""
    save_checkpoint(checkpoint_path(tmp_path, 10), _state(10))
    newest = checkpoint_path(tmp_path, 20)
    raw = {**_state(20), "format": "kinema-checkpoint-1"}
    if what == "another format":
        raw = {**raw, "format": "kinema-checkpoint-0", "digest": "0" * 64}
    torch.save([raw] if what == "a list" else raw, newest)
    with pytest.raises(CorruptCheckpoint, match="^is not a kinema checkpoint$"):
        load_checkpoint(newest)
    warnings = []
    path, state = load_latest(tmp_path, warnings.append)
    assert path == checkpoint_path(tmp_path, 10) and state["step"] == 10
    assert warnings == [f"checkpoint {newest} is not a kinema checkpoint; falling back to the previous one"]


def test_prune_keeps_the_newest_k(tmp_path):
    for step in (5, 10, 15, 20):
        save_checkpoint(checkpoint_path(tmp_path, step), {"step": step})
    prune_checkpoints(tmp_path, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [15, 20]


def test_checkpoint_write_never_overwrites(tmp_path):
    save_checkpoint(checkpoint_path(tmp_path, 1), {"step": 1})
    with pytest.raises(FileExistsError):
        save_checkpoint(checkpoint_path(tmp_path, 1), {"step": 2})
    assert load_checkpoint(checkpoint_path(tmp_path, 1))["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["step_000001.pt"]  # no temporary file left


# ---------------------------------------------------------------------------- data order


def _stream(num_processes: int, steps: int, start: DataPosition | None = None, batch=8, accumulation=1, samples=20) -> list[list[int]]:
    """Global batches (sorted sample ids per step) as num_processes processes would see them together."""
    start = start or DataPosition()
    iterators = [
        iter(GlobalBatchSampler(samples, batch, accumulation, num_processes, rank, seed=3, start=start)) for rank in range(num_processes)
    ]
    out = []
    for _ in range(steps):
        out.append(sorted(i for it in iterators for _ in range(accumulation) for i in next(it)))
    return out


def test_processes_and_accumulation_split_the_same_global_batches():
    one = _stream(1, 12)
    assert _stream(2, 12) == one
    assert _stream(2, 12, accumulation=2) == one
    assert all(len(set(b)) == 8 for b in one)
    # 20 samples, batches of 8: two batches per epoch, the last 4 samples of each epoch dropped
    assert len(set(one[0]) | set(one[1])) == 16 and set(one[0]) | set(one[1]) != set(one[2]) | set(one[3])


def test_resuming_from_a_position_continues_the_same_stream():
    full = _stream(1, 9)
    position = DataPosition()
    for _ in range(5):
        position = position.advance(8, 20)
    assert position == DataPosition(epoch=2, offset=8)
    assert _stream(2, 4, start=position) == full[5:]


def test_a_position_whose_next_batch_does_not_fit_moves_to_the_next_epoch_first():
    """Resumed with a larger batch, a saved offset may leave too few samples: that batch comes whole from the next epoch."""
    assert DataPosition(epoch=0, offset=16).advance(8, 20) == DataPosition(epoch=1, offset=8)
    assert DataPosition(epoch=3, offset=12).advance(8, 20) == DataPosition(epoch=4, offset=0)  # 12 + 8 = 20: fits, then wraps
    assert DataPosition(epoch=0, offset=13).advance(8, 20) == DataPosition(epoch=1, offset=8)


def test_batch_larger_than_dataset_or_indivisible_is_refused():
    with pytest.raises(ValueError, match="larger than the dataset"):
        GlobalBatchSampler(4, 8, 1, 1, 0, seed=0, start=DataPosition())
    with pytest.raises(ValueError, match=r"divisible by gradient_accumulation_steps \(1\) x processes \(3\)"):
        GlobalBatchSampler(20, 8, 1, 3, 0, seed=0, start=DataPosition())


def test_a_list_of_anything_else_names_its_items():
    import typing

    from kinema.training.config import TrainConfig, _describe

    assert _describe(list[TrainConfig]) == "a list, each item a mapping for TrainConfig"
    assert _describe(tuple[typing.Literal["a", "b"], ...]) == "a list, each item one of 'a', 'b'"
    diffusion = Path(__file__).parents[1] / "configs" / "diffusion" / "tiny.yaml"
    with pytest.raises(ConfigError, match=r"model.channels must be a list of integers, got 'wide' \(str\)"):
        load_config(diffusion, ["model.channels=wide"])


def test_a_checkpoint_takes_numpy_arrays_of_any_layout_and_keeps_them_apart(tmp_path):
    """numpy state (an RNG's key, a metric buffer) may be a reversed view or read-only; the checkpoint stores its own
    copy, so editing the array after saving changes nothing saved."""
    values = np.arange(6, dtype=np.int64)
    frozen = np.arange(4.0)
    frozen.setflags(write=False)
    state = {"reversed": values[::-1], "frozen": frozen, "plain": values}
    held = to_cpu(state)
    values[0] = 99
    assert held["plain"].tolist() == [0, 1, 2, 3, 4, 5] and held["reversed"].tolist() == [5, 4, 3, 2, 1, 0]
    save_checkpoint(tmp_path / "step_000001.pt", state)
    loaded = load_checkpoint(tmp_path / "step_000001.pt")
    assert loaded["reversed"].tolist() == [5, 4, 3, 2, 1, 99] and loaded["frozen"].tolist() == [0.0, 1.0, 2.0, 3.0]


@dataclasses.dataclass
class Free:
    extra: typing.Any = None
    steps: int = 1


def test_a_setting_typed_any_takes_its_value_as_written():
    """A family may leave a setting free (typing.Any: a scheduler's own keyword arguments): it loads as written."""
    from kinema.training.config import from_dict

    loaded = from_dict(Free, {"extra": [1, "a", {"b": 2.5}], "steps": 3})
    assert loaded.extra == [1, "a", {"b": 2.5}] and loaded.steps == 3


def test_a_train_section_left_out_gets_every_documented_default(tmp_path):
    """A config that says nothing under train: runs with the defaults the schema documents, each one of them."""
    bare = tmp_path / "bare.yaml"
    bare.write_text("family: toy\nmodel: {hidden: 16}\ndata: {num_samples: 64}\n")
    train = load_config(bare).train
    assert dataclasses.asdict(train) == dict(
        max_steps=1000, batch_size=32, gradient_accumulation_steps=1, lr=1e-4, lr_schedule="cosine", warmup_steps=0, min_lr_ratio=0.1,
        weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, max_grad_norm=1.0, ema_decay=0.999, mixed_precision="no", compile=False,
        fsdp=False, cpu=False, find_unused_parameters=False, seed=0, init_from=None, init_partial=False, num_workers=0,
        checkpoint_every=500, keep_checkpoints=3, log_every=10, sample_every=0, num_samples=4,
    )


def test_a_config_file_that_is_not_a_config_is_refused_by_what_is_wrong_with_it(tmp_path):
    """`kinema train x.yaml` on a missing, binary, broken, list-shaped or empty file says which, naming the file."""
    cases = {
        "nowhere.yaml": (None, "config file {p} does not exist"),
        "binary.yaml": (b"\xff\xfe\x00family", "config file {p} is not UTF-8 text: is it a YAML config?"),
        "list.yaml": (b"- family: toy\n- model: {}\n", "{p}: a config must be a mapping of sections (family, model, data, train, objective), got list"),
        "number.yaml": (b"3\n", "{p}: a config must be a mapping of sections (family, model, data, train, objective), got int"),
        "empty.yaml": (b"", "{p}: family is required and must be a string naming a registered family, got None"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value) == message.format(p=path), name
    (tmp_path / "broken.yaml").write_text("family: toy\ntrain: {max_steps: 3\n")
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(tmp_path / 'broken.yaml'))} is not valid YAML: \S") as info:
        load_config(tmp_path / "broken.yaml")
    assert "\n" not in str(info.value)


def test_from_dict_called_directly_names_the_class_and_the_unprefixed_keys():
    """A library user building a TrainConfig from a dict gets messages that read without a section name: 'config ...', 'lr'."""
    from kinema.training.config import TrainConfig, from_dict

    with pytest.raises(ConfigError) as info:
        from_dict(TrainConfig, [("lr", 1)])
    assert str(info.value) == "config must be a mapping of keys for TrainConfig, got [('lr', 1)] (list)" and info.value.key == ""
    with pytest.raises(ConfigError) as info:
        from_dict(TrainConfig, {"lr": "fast"})
    assert str(info.value) == "lr must be a number, got 'fast' (str)" and info.value.key == "lr"
    lr = from_dict(TrainConfig, {"lr": 1}).lr
    assert lr == 1.0 and type(lr) is float  # an integer written for a float setting is read as that float


@pytest.mark.parametrize("kwargs, message", [
    ({"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),  # everything dropped: the model learns nothing
    ({"dropout": -0.1}, "dropout must be in [0, 1), got -0.1"),
    ({"channels": 0}, "channels and hidden must be at least 1, got 0 and 16"),
    ({"hidden": 0}, "channels and hidden must be at least 1, got 3 and 0"),
])
def test_an_impossible_toy_model_is_refused_naming_the_setting(kwargs, message):
    from kinema.training.objectives.toy import ToyDenoiserConfig

    with pytest.raises(ValueError, match=re.escape(message)):
        ToyDenoiserConfig(**kwargs)
    ToyDenoiserConfig(dropout=0.0), ToyDenoiserConfig(dropout=0.99), ToyDenoiserConfig(channels=1, hidden=1)  # the edges allowed
