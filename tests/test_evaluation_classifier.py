"""The Shapes classifier behind FD-Shapes: shapes, save/load, training steps, the distance."""

import numpy as np
import pytest
import torch

from kinema.data.shapes import CaptionedShapes
from kinema.evaluation.classifier import (
    HEADS,
    ClassifierTraining,
    ShapesClassifier,
    ShapesClassifierConfig,
    fd_shapes,
    shapes_features,
    train_shapes_classifier,
)

TINY = ShapesClassifierConfig(resolution=16, channels=(8, 8, 16, 16))


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def videos():
    ds = CaptionedShapes("test", num_samples=6, resolution=32)
    return [ds.render(i) for i in range(6)]


def test_forward_backward_shapes(videos):
    torch.manual_seed(0)
    model = ShapesClassifier(TINY)
    x = model.prepare(np.stack(videos[:2]))  # 32x32 videos resized to the config's 16
    assert x.shape == (2, 3, 16, 16, 16)
    logits = model(x)
    assert {name: t.shape for name, t in logits.items()} == {name: (2, len(c)) for name, c in HEADS.items()}
    sum(t.sum() for t in logits.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.features(x).shape == (2, 16)


def test_save_load_round_trip_gives_identical_features(videos, tmp_path):
    model = ShapesClassifier(TINY).eval()
    saved = model.save(tmp_path / "clf")
    assert saved == tmp_path / "clf" and sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    loaded = ShapesClassifier.from_pretrained(saved)
    assert loaded.config == TINY
    np.testing.assert_array_equal(shapes_features(videos, loaded), shapes_features(videos, model))
    with pytest.raises(FileNotFoundError, match="config.json"):
        ShapesClassifier.from_pretrained(tmp_path / "absent")


def test_a_few_training_steps_lower_the_loss(tmp_path):
    training = ClassifierTraining(steps=40, batch_size=16, lr=1e-2, num_train=256, num_eval=8, config=TINY)
    lines = []
    scores = train_shapes_classifier(tmp_path / "clf", training, log=lines.append)
    assert scores["last_loss"] < scores["first_loss"] - 0.2
    # progress every 100 steps and at the last: here only the last
    assert [line.split("  ")[0] for line in lines if line.startswith("step ")] == ["step 40/40"], lines
    assert set(scores["test"]) == set(HEADS)
    assert (tmp_path / "clf" / "model.safetensors").is_file()
    with pytest.raises(FileExistsError):
        train_shapes_classifier(tmp_path / "clf", training, log=None)


def test_fd_shapes_is_zero_for_a_set_with_itself(videos):
    model = ShapesClassifier(TINY).eval()
    shifted = [np.roll(v, 5, axis=2) for v in videos]
    assert fd_shapes(videos, videos, model) < 1e-9 < fd_shapes(videos, shifted, model)


def test_prepare_scales_to_minus_one_one_and_keeps_orientation():
    """The classifier must see frames as the training renders looked: [-1, 1], channels first, not transposed."""
    model = ShapesClassifier(TINY)
    frames = np.zeros((1, 17, 16, 16, 3), np.uint8)
    frames[0, :, 2, 10] = (255, 0, 51)  # one pixel off the diagonal: a transpose would move it
    x = model.prepare(frames)
    assert x.shape == (1, 3, 16, 16, 16)  # the first num_frames frames only
    expected = torch.full((3, 16, 16), -1.0)
    expected[:, 2, 10] = torch.tensor([1.0, -1.0, 51 / 127.5 - 1])
    for f in range(16):
        torch.testing.assert_close(x[0, :, f], expected)
    with pytest.raises(ValueError, match="first 16 frames; got videos of 8 frames"):
        model.prepare(frames[:, :8])


def test_features_of_no_videos_is_a_clear_error():
    """An empty set of generated videos (a failed sampling run) should say so, not fail inside numpy."""
    with pytest.raises(ValueError, match="shapes_features needs at least one video"):
        shapes_features([], ShapesClassifier(TINY))


def test_saving_over_a_classifier_needs_overwrite_and_keeps_the_old_weights(tmp_path):
    """A second save without overwrite must leave the first classifier's files exactly as they were."""
    torch.manual_seed(0)
    first = ShapesClassifier(TINY).save(tmp_path / "clf")
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    torch.manual_seed(1)
    with pytest.raises(FileExistsError, match="overwrite"):
        ShapesClassifier(TINY).save(tmp_path / "clf")
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    ShapesClassifier(TINY).save(tmp_path / "clf", overwrite=True)
    assert (tmp_path / "clf" / "model.safetensors").read_bytes() != before["model.safetensors"]


def test_scores_are_the_fraction_of_correct_predictions_at_the_models_size():
    """Accuracy must be measured on renders at the classifier's own resolution and length, against the true labels."""
    from kinema.evaluation.classifier import score_shapes_classifier

    torch.manual_seed(3)
    config = ShapesClassifierConfig(resolution=24, num_frames=6, channels=(8, 8, 16, 16))
    model = ShapesClassifier(config).eval()
    ds = CaptionedShapes("test", num_samples=12, resolution=24, num_frames=6, seed=5)
    with torch.no_grad():
        logits = model(model.prepare(np.stack([ds.render(i) for i in range(12)])))
    expected = {
        name: float(np.mean([classes[k] == ds.labels(i).to_dict()[name] for i, k in enumerate(logits[name].argmax(1).tolist())]))
        for name, classes in HEADS.items()
    }
    assert score_shapes_classifier(model, "test", 12, seed=5, batch_size=5) == pytest.approx(expected)


def test_training_refuses_a_folder_holding_either_file_before_the_first_step(tmp_path):
    """Minutes of training must not end in an error, or in new weights beside another classifier's config."""
    training = ClassifierTraining(steps=1, batch_size=2, num_train=4, num_eval=2, config=TINY)
    for name in ("config.json", "model.safetensors"):
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        (folder / name).write_text("old")
        lines = []
        with pytest.raises(FileExistsError, match=f"^{folder / name} already exists \\(pass overwrite=True to replace it\\)$"):
            train_shapes_classifier(folder, training, log=lines.append)
        assert lines == [] and [p.name for p in folder.iterdir()] == [name] and (folder / name).read_text() == "old"
    lines = []
    train_shapes_classifier(tmp_path / "config", training, overwrite=True, log=lines.append)
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == ["config.json", "model.safetensors"]
    assert ShapesClassifier.from_pretrained(tmp_path / "config").config == TINY and lines[-1].startswith("step 1/1")


def test_one_training_step_moves_every_weight_by_the_learning_rate(tmp_path):
    """The first AdamW step moves each weight by about lr (sign of its gradient); a schedule starting at 0 would waste it."""
    from safetensors.torch import load_file

    training = ClassifierTraining(steps=1, batch_size=4, lr=1e-2, weight_decay=0.0, num_train=8, num_eval=2, seed=7, config=TINY)
    train_shapes_classifier(tmp_path / "clf", training, log=None)
    torch.manual_seed(7)  # the function seeds torch with training.seed before building the model
    start = ShapesClassifier(TINY).state_dict()
    trained = load_file(str(tmp_path / "clf" / "model.safetensors"))
    moves = torch.cat([(trained[k] - start[k]).abs().flatten() for k in start])
    assert moves.median().item() == pytest.approx(1e-2, rel=0.02) and moves.max().item() < 1.01e-2


def test_training_never_sees_the_held_out_or_test_videos_models_are_judged_on(tmp_path, monkeypatch):
    """Held-out pairs are trained on from another seed than the default evaluation sets, and scored on a third."""
    import kinema.evaluation.classifier as classifier_module

    made = []

    class Recording(CaptionedShapes):
        def __init__(self, split, **kwargs):
            made.append((split, kwargs["seed"], kwargs["resolution"], kwargs["num_frames"]))
            super().__init__(split, **kwargs)

    monkeypatch.setattr(classifier_module, "CaptionedShapes", Recording)
    training = ClassifierTraining(steps=1, batch_size=2, num_train=4, num_eval=2, seed=0, config=TINY)
    train_shapes_classifier(tmp_path / "clf", training, log=None)
    size = (TINY.resolution, TINY.num_frames)
    assert made == [("train", 0, *size), ("heldout", 1, *size), ("test", 100, *size), ("heldout", 100, *size)]
    assert CaptionedShapes("heldout").seed == 0  # the default evaluation set, which training must not render


def test_default_training_is_the_recipe_of_the_shipped_classifier():
    """Re-running the script with its defaults must reproduce the built-in weights' recipe, as their model card states it."""
    import inspect
    import json
    import re

    from kinema.hub import BUILTIN_DIR

    folder = BUILTIN_DIR / "shapes-classifier"
    card = (folder / "MODEL_CARD.md").read_text()
    steps, batch, lr, seed = re.search(r"\(([\d,]+) steps, batch (\d+), AdamW lr ([\d.e-]+), seed (\d+)\)", card).groups()
    num_train = re.search(r"([\d,]+) training videos", card).group(1)
    num_eval = re.search(r"Accuracy on (\d+) rendered videos per split", card).group(1)
    defaults = ClassifierTraining()
    assert (defaults.steps, defaults.batch_size, defaults.lr, defaults.seed) == (int(steps.replace(",", "")), int(batch), float(lr), int(seed))
    assert (defaults.num_train, defaults.num_eval) == (int(num_train.replace(",", "")), int(num_eval))
    # the card names no weight decay: AdamW's own default
    assert defaults.weight_decay == inspect.signature(torch.optim.AdamW).parameters["weight_decay"].default
    shipped = json.loads((folder / "classifier" / "config.json").read_text())
    assert defaults.config == ShapesClassifierConfig(**shipped) == ShapesClassifierConfig()


def test_weights_that_do_not_fit_the_config_name_every_kind_of_difference(tmp_path):
    """Weights from another classifier must be refused with the keys at fault, whether extra, missing or reshaped."""
    import re

    from safetensors.torch import load_file, save_file

    folder = ShapesClassifier(TINY).save(tmp_path / "clf")
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    prefix = f"^{re.escape(str(weights))} does not fit the Shapes classifier of {re.escape(str(folder / 'config.json'))}: keys differ at "
    cases = {
        "extra": ({**state, "heads.mood.weight": torch.zeros(2, 16)}, "heads.mood.weight$"),
        "missing": ({k: v for k, v in state.items() if k != "heads.speed.bias"}, r"heads\.speed\.bias$"),
        "reshaped": ({**state, "heads.size.weight": torch.zeros(3, 16)}, r"heads\.size\.weight$"),
    }
    for name, (broken, keys) in cases.items():
        save_file(broken, str(weights))
        with pytest.raises(ValueError, match=prefix + keys):
            ShapesClassifier.from_pretrained(folder)
    save_file(state, str(weights))
    assert ShapesClassifier.from_pretrained(weights).config == TINY  # the .safetensors file itself also loads


def test_features_are_computed_batch_by_batch_in_the_order_given(videos):
    """batch_size bounds memory; a partial last batch and the batch size itself must not change any video's features."""
    model = ShapesClassifier(TINY).eval()
    with torch.no_grad():
        one_by_one = np.concatenate([model.features(model.prepare(v[None])).double().numpy() for v in videos])
    sizes = []
    model.body.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    for batch_size, runs in ((1, [1] * 6), (4, [4, 2]), (6, [6]), (32, [6])):
        sizes.clear()
        features = shapes_features(iter(videos), model, batch_size=batch_size)
        assert sizes == runs and features.shape == (6, 16) and features.dtype == np.float64
        np.testing.assert_allclose(features, one_by_one, rtol=1e-3, atol=2e-4)  # batched convs round differently


def test_training_twice_with_one_seed_gives_the_same_weights(tmp_path):
    """The recipe must be reproducible: the same seed draws the same videos and the same initial weights."""
    training = ClassifierTraining(steps=1, batch_size=4, num_train=16, num_eval=1, seed=3, config=TINY)
    for name in ("a", "b"):
        train_shapes_classifier(tmp_path / name, training, log=None)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_a_classifier_folder_missing_either_file_names_the_missing_one(tmp_path):
    """A half-copied classifier folder must say which file is absent, not fail inside safetensors or json."""
    import re

    folder = ShapesClassifier(TINY).save(tmp_path / "clf")
    for name in ("model.safetensors", "config.json"):
        kept = (folder / name).read_bytes()
        (folder / name).unlink()
        want = f"Shapes classifier: {folder / name} not found (a folder with config.json and model.safetensors is needed)"
        with pytest.raises(FileNotFoundError, match=f"^{re.escape(want)}$"):
            ShapesClassifier.from_pretrained(folder)
        (folder / name).write_bytes(kept)
    assert ShapesClassifier.from_pretrained(folder).config == TINY


def test_a_config_the_training_renders_cannot_make_is_refused():
    """Captioned Shapes renders multiples of 8 from 16 px and motion needs two frames; other configs cannot be trained."""
    import re

    for resolution, num_frames in ((12, 16), (20, 16), (32, 1), (8, 16)):
        want = f"resolution must be a multiple of 8 >= 16 and num_frames >= 2, got {resolution} and {num_frames}"
        with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
            ShapesClassifierConfig(resolution=resolution, num_frames=num_frames)
    with pytest.raises(ValueError, match=r"^every entry of channels \(16, 20\) must be a multiple of groups=8$"):
        ShapesClassifierConfig(channels=[16, 20])
    small = ShapesClassifierConfig(resolution=16, num_frames=2, channels=[8, 16])  # the smallest it accepts
    assert (small.resolution, small.num_frames, small.channels) == (16, 2, (8, 16))


def test_progress_lines_show_the_mean_loss_of_the_last_hundred_steps(tmp_path, monkeypatch):
    """The logged loss is the recent trend a user watches, not an average dragged by the first steps."""
    import types

    import torch.nn.functional as F

    import kinema.evaluation.classifier as classifier_module

    recorded = []

    def cross_entropy(logits, target):
        loss = F.cross_entropy(logits, target)
        recorded.append(loss.item())
        return loss

    monkeypatch.setattr(classifier_module, "F", types.SimpleNamespace(cross_entropy=cross_entropy, interpolate=F.interpolate))
    config = ShapesClassifierConfig(resolution=16, num_frames=2, channels=(8, 8))
    training = ClassifierTraining(steps=101, batch_size=1, lr=1e-2, num_train=8, num_eval=1, config=config)
    lines = []
    train_shapes_classifier(tmp_path / "clf", training, log=lines.append)
    steps = np.asarray(recorded).reshape(101, len(HEADS)).sum(axis=1)  # the loss is the sum over the five heads
    assert [line.split("  ")[:2] for line in lines] == [  # every 100 steps, and at the last
        ["step 100/101", f"loss {steps[:100].mean():.4f}"],
        ["step 101/101", f"loss {steps[1:].mean():.4f}"],
    ]
    assert abs(steps[100] - steps[0]) > 1e-3  # so the window's end is visible in the fourth decimal
