"""The Shapes renders obey ../shared/specs/shapes.md."""

import numpy as np
import pytest
import torch

from kinema.data.shapes import (
    COLORS,
    DIRECTIONS,
    HELDOUT_PAIRS,
    SIZES,
    SPEEDS,
    SPLITS,
    CaptionedShapes,
    ShapeMotion,
    parse_caption,
    tensor_to_frames,
)

AREA = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}  # times size**2


def coverage(frames):
    return frames.astype(np.float64).max(axis=-1) / 255.0


def centroids(frames):
    cov = coverage(frames)
    h, w = cov.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    area = cov.sum(axis=(1, 2))
    return np.stack([(cov * xs).sum(axis=(1, 2)) / area, (cov * ys).sum(axis=(1, 2)) / area], axis=1)


@pytest.mark.parametrize("resolution", [64, 32])
def test_captioned_shapes_follow_the_spec(resolution):
    ds = CaptionedShapes("train", num_samples=120, resolution=resolution, seed=3)
    scale = resolution / 64
    for i in range(len(ds)):
        frames, lab = ds.render(i), ds.labels(i)
        assert frames.shape == (16, resolution, resolution, 3) and frames.dtype == np.uint8
        size = SIZES[lab.size] * scale
        # no clipping: the object's whole area is on screen in every frame (the 4x supersampling
        # grid draws a 6-px triangle ~4% too big, the same in every frame)
        area = coverage(frames).sum(axis=(1, 2))
        np.testing.assert_allclose(area, AREA[lab.shape] * size**2, rtol=0.05)
        assert area.max() - area.min() < 0.01 * area.mean()
        # constant velocity in the captioned direction at the captioned speed (within 0.1 px / frame)
        step = np.diff(centroids(frames), axis=0)
        expected = np.asarray(DIRECTIONS[lab.direction]) * SPEEDS[lab.speed] * scale
        assert np.abs(step - expected).max() < 0.1, (lab, step)
        # fully covered pixels carry exactly the caption's colour, everything else is black or a blend of it
        full = coverage(frames) == 1.0
        assert full.any()
        assert (frames[full] == COLORS[lab.color]).all()
        hue = np.asarray(COLORS[lab.color]) > 0
        assert (frames[..., ~hue] == 0).all()


def test_positions_keep_the_object_inside_and_cover_the_frame():
    ds = CaptionedShapes("train", num_samples=400)
    lo = []
    for i in range(len(ds)):
        scene = ds.scene(i)
        s, v = SIZES[scene.labels.size], SPEEDS[scene.labels.speed]
        dx, dy = DIRECTIONS[scene.labels.direction]
        for t in (0, 15):
            x, y = scene.x0 + dx * v * t, scene.y0 + dy * v * t
            assert s / 2 - 1e-9 <= x <= 64 - s / 2 + 1e-9 and s / 2 - 1e-9 <= y <= 64 - s / 2 + 1e-9
        lo.append(scene.x0 - s / 2)
    # start positions are spread out, not stuck at one spot
    assert min(lo) < 3 and max(lo) > 35


def test_splits_hold_the_right_pairs_and_are_disjoint():
    train = CaptionedShapes("train", num_samples=600)
    test = CaptionedShapes("test", num_samples=600)
    heldout = CaptionedShapes("heldout", num_samples=200)
    train_pairs = {(train.labels(i).shape, train.labels(i).color) for i in range(len(train))}
    assert not train_pairs & HELDOUT_PAIRS
    assert len(train_pairs) == 12  # all 12 seen pairs show up
    assert {(heldout.labels(i).shape, heldout.labels(i).color) for i in range(len(heldout))} == HELDOUT_PAIRS
    key = lambda ds, i: (ds.scene(i).labels, round(ds.scene(i).x0, 9), round(ds.scene(i).y0, 9))  # noqa: E731
    assert not {key(train, i) for i in range(600)} & {key(test, i) for i in range(600)}


def test_attributes_are_roughly_uniform():
    ds = CaptionedShapes("train", num_samples=1200)
    labels = [ds.labels(i) for i in range(len(ds))]
    for name, values in [("size", SIZES), ("direction", DIRECTIONS), ("speed", SPEEDS), ("color", COLORS)]:
        counts = [sum(getattr(lab, name) == v for lab in labels) for v in values]
        assert min(counts) > 0.7 * len(labels) / len(values), (name, counts)


def test_same_seed_same_video_other_seed_other_video():
    a, b = CaptionedShapes(seed=1), CaptionedShapes(seed=1)
    assert np.array_equal(a.render(5), b.render(5)) and a.caption(5) == b.caption(5)
    assert not np.array_equal(a.render(5), CaptionedShapes(seed=2).render(5))


def test_32_renders_the_same_scene_at_half_scale():
    big, small = CaptionedShapes(resolution=64), CaptionedShapes(resolution=32)
    for i in range(10):
        assert big.labels(i) == small.labels(i)
        # each resolution snaps edges to its own 4x sample grid: up to 1/8 px at 32 plus 1/16 from 64
        np.testing.assert_allclose(centroids(small.render(i)), centroids(big.render(i)) / 2, atol=0.19)


def test_items_are_tensors_in_minus_one_one_with_captions():
    ds = CaptionedShapes("test", num_samples=4, resolution=32)
    item = ds[2]
    assert item["video"].shape == (3, 16, 32, 32) and item["video"].dtype == torch.float32
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert item["caption"] == ds.labels(2).caption()
    assert np.array_equal(tensor_to_frames(item["video"]), ds.render(2))
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["video"].shape == (2, 3, 16, 32, 32)


def test_varied_captions_name_the_same_attributes():
    ds = CaptionedShapes("train", num_samples=300, captions="varied")
    captions = {ds.caption(i) for i in range(len(ds))}
    assert len({c.split()[1] for c in captions}) > 5  # several phrasings, not one template
    for i in range(len(ds)):
        assert parse_caption(ds.caption(i)) == ds.labels(i).to_dict(), ds.caption(i)
    # switching caption style never changes the video
    assert np.array_equal(ds.render(7), CaptionedShapes("train", num_samples=300).render(7))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        CaptionedShapes("validation")
    with pytest.raises(ValueError, match="resolution"):
        CaptionedShapes(resolution=30)
    with pytest.raises(ValueError, match="num_frames"):
        CaptionedShapes(num_frames=40)
    with pytest.raises(IndexError):
        CaptionedShapes(num_samples=3)[3]


def test_shape_motion_follows_the_recipe():
    ds = ShapeMotion()
    assert len(ds) == 4000
    for i in range(200):
        scene, frames = ds.scene(i), ds.render(i)
        assert scene.shape in ("circle", "square") and 10 <= scene.size <= 24
        assert max(scene.color) >= 64
        along = 0 if scene.direction == "left-to-right" else 1
        assert scene.start[along] <= 20 and scene.end[along] >= 44
        area = coverage(frames).sum(axis=(1, 2))
        # the whole shape stays inside (area constant), and it moves the stated way overall
        np.testing.assert_allclose(area, AREA[scene.shape] * scene.size**2 * (np.asarray(scene.color).max() / 255), rtol=0.05)
        path = centroids(frames)
        assert path[-1, along] - path[0, along] >= 44 - 20 - 1
    assert len({ds.scene(i).direction for i in range(50)}) == 2


def test_an_index_past_the_end_names_the_index_and_the_length():
    """An off-by-one in a user's loop should be reported with both numbers, for either dataset."""
    with pytest.raises(IndexError, match=r"^index 3 out of range for 3 samples$"):
        CaptionedShapes(num_samples=3)[3]
    with pytest.raises(IndexError, match=r"^index -1 out of range for 3 samples$"):
        CaptionedShapes(num_samples=3).caption(-1)
    with pytest.raises(IndexError, match=r"^index 2 out of range for 2 samples$"):
        ShapeMotion(num_samples=2)[2]


def test_each_split_draws_its_clips_from_its_own_stream():
    """Train, test and held-out clips of one index and seed are independent draws, so scores on one split say nothing
    about the clips of another: two splits on one stream would repeat each other's size, direction, speed and start."""
    from itertools import combinations

    sets = {split: CaptionedShapes(split, num_samples=48, seed=0) for split in SPLITS}
    for a, b in combinations(SPLITS, 2):
        motion = [(lambda s: (s.labels.size, s.labels.direction, s.labels.speed))(sets[split].scene(i)) for split in (a, b) for i in range(48)]
        same = sum(motion[i] == motion[48 + i] for i in range(48))
        assert same < 12, f"{a} and {b} share {same} of 48 motions (independent draws share about 3)"
        assert all(sets[a].scene(i).x0 != sets[b].scene(i).x0 for i in range(48))


def test_the_canonical_caption_reads_size_colour_shape_direction_speed():
    """Captions are the conditioning text: the spec's template and example must come out word for word."""
    from kinema.data.shapes import ShapesLabels

    assert ShapesLabels("circle", "red", "small", "left", "slowly").caption() == "a small red circle moving left slowly"
    assert ShapesLabels("triangle", "cyan", "large", "down", "quickly").caption() == "a large cyan triangle moving down quickly"


def test_start_positions_are_uniform_over_the_whole_allowed_range():
    """Every start that keeps the object inside for all frames is used, right up to both edges of that range."""
    ds = CaptionedShapes("train", num_samples=800)
    spread = {-1: [], 0: [], 1: []}  # where in its range each start lies, by the motion along that axis
    for i in range(len(ds)):
        scene = ds.scene(i)
        s, v = SIZES[scene.labels.size], SPEEDS[scene.labels.speed]
        for d, p in zip(DIRECTIONS[scene.labels.direction], (scene.x0, scene.y0)):
            lo, hi = s / 2 + (v * 15 if d < 0 else 0), 64 - s / 2 - (v * 15 if d > 0 else 0)
            assert lo <= p <= hi
            spread[d].append((p - lo) / (hi - lo))
    for d, where in spread.items():
        assert min(where) < 0.02 and max(where) > 0.98, d
        assert np.mean(where) == pytest.approx(0.5, abs=0.05), d


def test_items_at_other_clip_lengths_match_render_and_labels():
    """A dataset of 8- or 23-frame clips hands out the same clip as render(), with the object inside every frame."""
    for num_frames in (8, 23):
        ds = CaptionedShapes("train", num_samples=40, resolution=16, num_frames=num_frames, seed=5)
        for i in range(len(ds)):
            item = ds[i]
            assert item["video"].shape == (3, num_frames, 16, 16)
            assert np.array_equal(tensor_to_frames(item["video"]), ds.render(i))
            assert item["labels"] == ds.labels(i).to_dict() and item["caption"] == ds.caption(i)


def test_shape_motion_scenes_cover_the_recipe_ranges():
    """Starts, ends, control points and colours span the spec's ranges, not a corner of them (MoCoGAN Table 1)."""
    ds = ShapeMotion(num_samples=300, seed=4)
    across, dark_channel, controls = [], 0, []
    for i in range(len(ds)):
        scene = ds.scene(i)
        lo, hi = scene.size / 2, 64 - scene.size / 2
        along = 0 if scene.direction == "left-to-right" else 1
        assert lo <= scene.start[along] <= 20 and 44 <= scene.end[along] <= hi
        for point in (scene.start, scene.end):
            assert lo <= point[1 - along] <= hi
            across.append((point[1 - along] - lo) / (hi - lo))
        assert all(lo <= c <= hi for c in scene.control)
        controls.extend((c - lo) / (hi - lo) for c in scene.control)
        assert max(scene.color) >= 64 and all(0 <= c <= 255 for c in scene.color)
        dark_channel += min(scene.color) < 64
        labels = ds.labels(i)
        assert labels == {**scene.__dict__, "start": list(scene.start), "control": list(scene.control), "end": list(scene.end), "color": list(scene.color)}
    assert min(across) < 0.05 and max(across) > 0.95 and np.mean(across) == pytest.approx(0.5, abs=0.06)
    assert min(controls) == 0 and max(controls) == 1  # uniform over the frame, then clamped at both sides
    assert dark_channel > 100  # a channel under 64 is common (about 55 of every 100 colours)
    with pytest.raises(IndexError, match=r"^index -1 out of range for 300 samples$"):
        ds.scene(-1)


def test_dataset_arguments_are_checked_with_exact_limits_and_messages():
    """A wrong argument names itself, the allowed values and what was given; the limits themselves are accepted."""
    cases = [
        (lambda: CaptionedShapes("validation"), "split must be one of ('train', 'test', 'heldout'), got 'validation'"),
        (lambda: CaptionedShapes(captions="fancy"), "captions must be 'canonical' or 'varied', got 'fancy'"),
        (lambda: CaptionedShapes(resolution=30), "resolution must be a multiple of 8 from 16 to 1024, got 30"),
        (lambda: CaptionedShapes(resolution=8), "resolution must be a multiple of 8 from 16 to 1024, got 8"),
        (lambda: ShapeMotion(resolution=1032), "resolution must be a multiple of 8 from 16 to 1024, got 1032"),
        (lambda: CaptionedShapes(num_frames=1), "num_frames must be at least 2, got 1"),
        (lambda: CaptionedShapes(num_frames=24), "num_frames=24 is too many: a large quick shape would leave the frame (max 23)"),
        (lambda: ShapeMotion(num_samples=0), "num_samples must be positive, got 0"),
        (lambda: ShapeMotion("heldout"), "split must be 'train' or 'test', got 'heldout'"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError) as err:
            make()
        assert str(err.value) == message
    assert len(CaptionedShapes(resolution=16, num_frames=23, num_samples=1)) == 1
    assert CaptionedShapes(resolution=24, num_samples=1).render(0).shape == (16, 24, 24, 3)  # any multiple of 8
    assert len(ShapeMotion(resolution=1024, num_frames=2, num_samples=1)) == 1


def test_each_shape_is_drawn_centred_on_its_stated_position():
    """The labels' position is where the object is drawn: the bounding-box centre, whose centroid sits on it for a
    circle or square and s/6 below it for the apex-up triangle (to within the 4x sample grid)."""
    from kinema.data.shapes import bezier_path

    ds = CaptionedShapes("train", num_samples=90, resolution=32)
    errors = {}
    for i in range(len(ds)):
        scene = ds.scene(i)
        lab = scene.labels
        (dx, dy), v, t = DIRECTIONS[lab.direction], SPEEDS[lab.speed], np.arange(16)
        below = SIZES[lab.size] / 6 if lab.shape == "triangle" else 0.0
        expected = np.stack([scene.x0 + dx * v * t, scene.y0 + dy * v * t + below], axis=1) / 2  # 32 px = half scale
        errors.setdefault(lab.shape, []).append(centroids(ds.render(i)) - expected)
    for shape, error in errors.items():
        error = np.concatenate(error)
        assert np.abs(error.mean(axis=0)).max() < 0.04, (shape, error.mean(axis=0))
    assert np.abs(np.concatenate(errors["circle"])).max() < 0.04
    motion = ShapeMotion(num_samples=24, resolution=32)
    circles = [i for i in range(24) if motion.scene(i).shape == "circle"]
    assert len(circles) > 5
    for i in circles:
        np.testing.assert_allclose(centroids(motion.render(i)), bezier_path(motion.scene(i)) / 2, atol=0.04)


class _ScriptedRng:
    """Stands in for np.random.Generator: integers() pops the scripted choices (or colours, when a size is asked),
    uniform(a, b) takes a scripted fraction of the way from a to b."""

    def __init__(self, choices, colours, fractions):
        self._choices, self._colours, self._fractions = list(choices), list(colours), list(fractions)

    def integers(self, *args, size=None):
        return np.asarray(self._colours.pop(0)) if size else self._choices.pop(0)

    def uniform(self, low, high):
        return low + self._fractions.pop(0) * (high - low)


@pytest.mark.parametrize("direction", [0, 1])
def test_shape_motion_redraws_dark_colours_and_swaps_the_axes_for_top_to_bottom(direction):
    """The spec's recipe exactly: a colour whose brightest channel is 64 is kept (63 is redrawn); top-to-bottom
    is the left-to-right scene with x and y swapped, control point included."""
    from kinema.data.shapes import sample_motion_scene

    rng = _ScriptedRng(
        choices=[1, direction],  # a square
        colours=[[63, 10, 0], [0, 64, 0], [0, 0, 200]],
        fractions=[0.5, 0.1, 0.2, 0.3, 0.4, 0.9, 0.05],
    )
    scene = sample_motion_scene(rng)
    size = 10 + 0.5 * 14  # 17 px: centres stay within [8.5, 55.5]
    start = (8.5 + 0.1 * (20 - 8.5), 8.5 + 0.2 * (55.5 - 8.5))
    end = (44 + 0.3 * (55.5 - 44), 8.5 + 0.4 * (55.5 - 8.5))
    control = (55.5, 8.5)  # 0.9 * 64 = 57.6 and 0.05 * 64 = 3.2, clamped into the frame
    if direction:
        start, end, control = start[::-1], end[::-1], control[::-1]
    assert (scene.shape, scene.size, scene.color) == ("square", size, (0, 64, 0))
    assert scene.direction == ("left-to-right", "top-to-bottom")[direction]
    np.testing.assert_allclose([scene.start, scene.control, scene.end], [start, control, end], rtol=1e-12)


def test_item_i_is_drawn_from_the_documented_seed_stream():
    """Published results name (seed, split, index): item i must come from the stream (seed, split number, i),
    so a dataset rendered today matches one rendered by an earlier release."""
    from kinema.data.shapes import sample_motion_scene, sample_scene

    for split, stream in [("train", 0), ("test", 1), ("heldout", 2)]:
        ds = CaptionedShapes(split, num_samples=4, seed=5, num_frames=12)
        for i in (0, 3):
            assert ds.scene(i) == sample_scene(np.random.default_rng([5, stream, i]), split, 12), (split, i)
    for split, stream in [("train", 10), ("test", 11)]:
        motion = ShapeMotion(split, num_samples=4, seed=5)
        for i in (0, 3):
            assert motion.scene(i) == sample_motion_scene(np.random.default_rng([5, stream, i])), (split, i)
