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
