"""The conformance suite: what every registered pipeline guarantees, run on each one's tiny random model.

A new family gets these tests by registering its pipeline with a ``tiny`` factory
(kinema.pipelines.Registration); a registration without one fails here.
"""

import math
import threading

import numpy as np
import pytest
import torch

from kinema.pipelines import load_pipeline, registered

PIPELINES = sorted((name, variant) for name, r in registered().items() for variant in r.variants or (None,))
PROMPT = "a small red circle moving left slowly"


@pytest.fixture(scope="module", params=PIPELINES, ids=[f"{n}-{v}" if v else n for n, v in PIPELINES])
def pipe(request, text_encoder):
    name, variant = request.param
    registration = registered()[name]
    assert registration.tiny is not None, f"pipeline {name!r} registers no tiny factory for the conformance suite"
    torch.set_num_threads(1)
    return registration.tiny(text_encoder=text_encoder, **({"variant": variant} if variant else {}))


def prompts_for(pipe, count: int) -> list[str] | None:
    contract = pipe.contract()
    if contract.prompt == "none":
        return None
    if contract.prompt_choices:
        return [contract.prompt_choices[i % len(contract.prompt_choices)] for i in range(count)]
    return [PROMPT, "a large blue square moving up quickly", "a big yellow triangle drifting right"][:count]


def call(pipe, count: int = 1, **kwargs):
    prompts = prompts_for(pipe, count)
    if prompts is None:
        return pipe(num_videos=count, **kwargs)
    return pipe(prompts, **kwargs)


def a_valid_value(option):
    """A value the option allows, other than its default where there is one."""
    if option.choices:
        return option.choices[-1]
    if option.type is str:
        return "blue"
    low = option.low if option.low is not None else 0
    high = option.high if option.high is not None else low + 10
    if option.type is int and option.multiple > 1:  # the next value the declared step allows
        return min(high, max(low, (option.default or option.offset) + option.multiple))
    value = min(high, max(low, (option.default or 0) + 1)) if option.type is int else (low + high) / 2
    return option.type(value)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_output_shape_dtype_and_range(pipe):
    contract = pipe.contract()
    out = call(pipe, 2, seed=0)
    frames = contract.option("num_frames").default
    assert out.frames.shape == (2, frames, *contract.size, 3) and out.frames.dtype == np.uint8
    assert out.frames.std() > 0, "a random model still draws something"
    assert len(out.prompts) == 2 and out.seeds == [0, 1]
    assert set(out.options) == {o.name for o in contract.options}  # every option, as used
    assert "2 clips" in repr(out) and "array" not in repr(out)


def test_save_load_gives_the_same_frames(pipe, tmp_path, text_encoder):
    pipe.save_pretrained(tmp_path / "m")
    loaded = load_pipeline(tmp_path / "m", device="cpu", text_encoder=text_encoder)
    assert type(loaded) is type(pipe) and loaded.contract() == pipe.contract()
    assert np.array_equal(call(loaded, 2, seed=3).frames, call(pipe, 2, seed=3).frames)


def test_seed_rule_clip_i_uses_seed_plus_i(pipe):
    batch = call(pipe, 3, seed=10)
    prompts = prompts_for(pipe, 3)
    for i in range(3):
        single = pipe(num_videos=1, seed=10 + i) if prompts is None else pipe(prompts[i], seed=10 + i)
        # the same noise; batched float math may move a value by one grey level, never more
        diff = np.abs(single.frames[0].astype(int) - batch.frames[i])
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (i, diff.max(), (diff > 0).mean())
    assert not np.array_equal(batch.frames[0], batch.frames[1])
    assert not np.array_equal(call(pipe, 1, seed=11).frames, call(pipe, 1, seed=12).frames)


def test_declared_options_are_taken_and_recorded(pipe):
    contract = pipe.contract()
    image = np.full((*contract.size, 3), 128, np.uint8)
    for option in contract.options:
        value = a_valid_value(option)
        out = call(pipe, 1, seed=0, image=image if option.needs_image else None, **{option.name: value})
        assert out.options[option.name] == value, option.name
        if option.alias:  # the short name (the CLI flag) is the same option
            assert call(pipe, 1, seed=0, image=image if option.needs_image else None, **{option.alias: value}).options[option.name] == value
    out = call(pipe, 1, seed=0, num_frames=3, height=24, width=40)
    assert out.frames.shape[1:] == (3, 24, 40, 3)


def test_undeclared_options_are_refused_by_name(pipe):
    contract = pipe.contract()
    taken = {o.name for o in contract.options}
    for name in ["sampling_temperature", *({"guidance_scale", "negative_prompt", "scheduler"} - taken)]:
        with pytest.raises(ValueError, match=f"does not take {name}; it takes: num_frames"):
            call(pipe, 1, **{name: 1})


def test_bad_values_are_refused_before_any_work(pipe):
    contract = pipe.contract()
    calls = []
    hook = [m.register_forward_hook(lambda *a: calls.append(1)) for m in pipe.modules().values()]
    try:
        for option in contract.options:
            if option.type is str:
                continue
            bad = [math.nan, math.inf] if option.type is float else [1.5]
            if option.low is not None:
                bad.append(option.low - 1)
            if option.high is not None:
                bad.append(option.high + 1)
            if option.multiple > 1:  # in range, off the declared step
                bad.append((option.default or option.offset + option.multiple) + 1)
            for value in bad:
                with pytest.raises(ValueError, match=option.name):
                    call(pipe, 1, **{option.name: value})
        for seed in (-1, 2**64, 1.5):
            with pytest.raises(ValueError, match=r"seed \(--seed\) must be a whole number from 0"):
                call(pipe, 1, seed=seed)
    finally:
        for h in hook:
            h.remove()
    assert not calls, "a network ran before the inputs were checked"


def test_one_pipeline_serves_two_threads(pipe):
    prompts = prompts_for(pipe, 2)
    args = [((None if prompts is None else prompts[i]), 20 + i) for i in range(2)]
    expected = [pipe(p, seed=s).frames for p, s in args]
    results, errors = [None, None], []

    def work(i):
        try:
            for _ in range(3):
                frames = pipe(args[i][0], seed=args[i][1]).frames
                assert results[i] is None or np.array_equal(results[i], frames)
                results[i] = frames
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(np.array_equal(r, e) for r, e in zip(results, expected))


def test_image_to_video_starts_on_the_given_image(pipe):
    contract = pipe.contract()
    if not contract.image:
        pytest.skip("this pipeline does not take an image")
    h, w = contract.size
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) % 7) * 36], axis=-1).astype(np.uint8)  # texture, not a flat field
    out = call(pipe, 2, seed=0, image=image)
    for clip in out.frames:
        assert psnr(clip[0], image) >= 30
    # a larger picture is resized to the output size first
    big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    assert psnr(call(pipe, 1, seed=0, image=big).frames[0, 0], image) >= 30
    # and a picture of another shape (here: only its height differs) is resized on both sides
    tall = np.repeat(image, 2, axis=0)
    assert psnr(call(pipe, 1, seed=0, image=tall).frames[0, 0], image) >= 30


def test_first_frame_tensor_resizes_any_picture_to_the_model_square():
    import torch.nn.functional as F

    from kinema.pipelines.common import first_frame_tensor, image_tensor

    rng = np.random.default_rng(0)
    for shape in [(32, 16, 3), (16, 32, 3), (24, 24, 3), (16, 16, 3)]:
        picture = rng.integers(0, 256, shape, dtype=np.uint8)
        out = first_frame_tensor(picture, 2, 16, torch.device("cpu"))
        expected = F.interpolate(image_tensor(picture, 2), size=(16, 16), mode="area")
        assert out.shape == (2, 3, 16, 16) and torch.allclose(out, expected), shape


def test_a_contract_describes_what_each_kind_of_model_takes():
    """`kinema models` shows this line: an unconditional model must not claim to take a prompt, nor an i2v one to need none."""
    from kinema.pipelines.common import Contract

    def contract(tasks, prompt, image, **kwargs):
        return Contract(tasks=tasks, prompt=prompt, image=image, options=(), size=(16, 16), **kwargs)

    assert contract(("unconditional",), "none", False).describe() == "no prompt"
    assert contract(("text-to-video",), "required", False).describe() == "a prompt"
    assert contract(("text-to-video",), "required", True).describe() == "a prompt, optionally an image (first frame)"
    assert contract(("text-to-video", "unconditional"), "optional", True).describe() == (
        "a prompt and/or an image (first frame), or neither (unconditional)")
    assert contract(("image-to-video",), "none", True, image_required=True).describe() == "an image (first frame), no prompt"
    assert contract(("image-to-video",), "required", True, image_required=True).describe() == "an image (first frame) and a prompt"
    assert contract(("text-to-video",), "required", False, prompt_choices=("circle", "square")).describe() == (
        "a prompt, one of: circle, square")


def test_a_class_prompt_with_stray_spaces_is_that_class(tmp_path):
    """" circle " pasted from a file with its spaces must draw the circle class, as the prompt check already accepts it."""
    from kinema.models.gan import GeneratorConfig, VideoGenerator
    from kinema.pipelines.gan import GANPipeline, GANSettings

    torch.manual_seed(0)
    generator = VideoGenerator(GeneratorConfig(resolution=16, num_frames=4, content_dim=8, noise_dim=4, motion_dim=8, base_channels=32,
                                               min_channels=8, temporal_levels=2, condition_dim=16, condition="class", num_classes=2))
    pipe = GANPipeline(generator, GANSettings(output_size=16, num_frames=4, class_names=["circle", "square"]))
    padded = pipe(["  square ", "circle"], seed=3).frames
    assert np.array_equal(padded, pipe(["square", "circle"], seed=3).frames)


def test_the_progress_callback_counts_up_to_its_total(pipe):
    """The progress bar is drawn from these calls: it must rise step by step and end full (step == total), never short."""
    seen = []
    call(pipe, 1, seed=0, callback=lambda step, total, preview: seen.append((step, total)))
    assert seen, "no progress reported"
    steps = [s for s, _ in seen]
    assert steps == sorted(steps) and all(1 <= s <= t for s, t in seen)
    assert seen[-1][0] == seen[-1][1]


def test_an_image_only_option_without_an_image_is_refused_by_its_flag(pipe):
    """A user who typed --steps for a GAN without --image must read which flag needs an image, as they typed it."""
    import re

    needing = [o for o in pipe.contract().options if o.needs_image]
    if not needing:
        pytest.skip("no option of this pipeline needs an image")
    for option in needing:
        with pytest.raises(ValueError, match=re.escape(f"{option.name} (--") + r"[a-z-]+\) applies to image-to-video only"):
            call(pipe, 1, **{option.name: a_valid_value(option)})


def test_every_pipeline_names_its_networks_and_a_new_one_that_does_not_is_told(pipe):
    """modules() is what save, device, dtype, quantize and the estimate walk: every registered pipeline gives its
    networks, each holding the weights it draws with; a new pipeline that forgets it fails loudly, never as a model
    with no networks."""
    from kinema.pipelines.common import VideoPipeline

    modules = pipe.modules()
    assert modules and all(isinstance(m, torch.nn.Module) and any(True for _ in m.parameters()) for m in modules.values())
    assert type(pipe).modules is not VideoPipeline.modules
    with pytest.raises(NotImplementedError):
        VideoPipeline.modules(pipe)


def test_the_progress_callback_reports_every_step_once_with_an_image_too(pipe):
    """Image-to-video adds work (a GAN fits the image first): the bar must still count 1, 2, ... total, none skipped."""
    contract = pipe.contract()
    calls = [{}]
    if contract.image:
        h, w = contract.size
        calls.append({"image": np.full((h, w, 3), 90, np.uint8)})
    for extra in calls:
        seen = []
        call(pipe, 1, seed=0, callback=lambda step, total, preview: seen.append((step, total)), **extra)
        total = seen[-1][1]
        assert [s for s, _ in seen] == list(range(1, total + 1)) and {t for _, t in seen} == {total}, (extra.keys(), seen)
    if contract.image and contract.option("num_inference_steps") and contract.option("num_inference_steps").needs_image:
        seen = []
        call(pipe, 1, seed=0, image=calls[1]["image"], num_inference_steps=3, callback=lambda step, total, preview: seen.append(step))
        assert seen == [1, 2, 3, 4]  # three fitting steps, then the forward pass


def test_gan_image_to_video_fits_inversion_restarts_starts_per_clip():
    """inversion_restarts is how many random starts each clip's fit tries: 3 for 2 clips is 6 fitted together."""
    import dataclasses

    from kinema.pipelines.gan import GANPipeline, tiny_pipeline

    tiny = tiny_pipeline()
    pipe = GANPipeline(tiny.generator, dataclasses.replace(tiny.settings, inversion_restarts=3))
    batches = []
    hook = pipe.generator.register_forward_hook(lambda module, args, out: batches.append(out.shape[0]))
    try:
        image = np.full((*pipe.contract().size, 3), 90, np.uint8)
        pipe(num_videos=2, image=image, num_inference_steps=2, seed=0)
    finally:
        hook.remove()
    assert batches == [6, 6, 6, 2]  # 2 fitting steps and the pick of the best start, then the clips themselves


def test_every_pipeline_class_carries_the_name_it_is_registered_under():
    """model_index.json's "pipeline" is written from the class's name and read back through the registry: they must agree."""
    for name, registration in registered().items():
        assert registration.pipeline.name == name, (name, registration.pipeline)



def test_a_pipeline_loaded_in_bfloat16_holds_every_network_in_bfloat16(pipe, tmp_path, text_encoder):
    """--dtype bfloat16 halves the memory of every network a folder holds, not of some: a float32 one left over
    would cost the memory the user asked to save (and mix dtypes in one call)."""
    if pipe.name == "diffusers":
        pytest.skip("diffusers pipelines load through diffusers' own dtype handling (tests/test_diffusers_backend.py)")
    loaded = load_pipeline(pipe.save_pretrained(tmp_path / "m"), device="cpu", dtype="bfloat16", text_encoder=text_encoder)
    dtypes = {name: {p.dtype for p in module.parameters()} for name, module in loaded.modules().items()}
    assert dtypes == {name: {torch.bfloat16} for name in pipe.modules()}


def test_an_option_keeps_converts_and_refuses_values_in_the_words_a_user_reads():
    """Every option a pipeline declares is checked here: a value comes back as given (text untouched, whole numbers
    as int, others as float), and a refusal names the flag and exactly what it allows."""
    import re

    from kinema.pipelines.common import Contract, Option

    text = Option("negative_prompt", str, "", "what guidance steers away from", alias="negative")
    assert text.check("  Blue Sky ") == "  Blue Sky "  # a prompt is the user's text, spaces and case included
    with pytest.raises(ValueError, match=r"^negative_prompt \(--negative\) must be text, got 3$"):
        text.check(3)
    choice = Option("scheduler", str, "ddim", "sampler", choices=("ddim", "euler"))
    assert choice.check("euler") == "euler"
    with pytest.raises(ValueError, match=r"^scheduler \(--scheduler\) must be one of ddim, euler, got 'Euler'$"):
        choice.check("Euler")
    assert choice.describe() == "scheduler (--scheduler): one of ddim, euler, default 'ddim'"

    steps = Option("num_inference_steps", int, 20, "denoising steps", low=1, high=1000, alias="steps")
    for value in (7, 7.0, np.int64(7), np.float32(7.0)):
        assert steps.check(value) == 7 and type(steps.check(value)) is int
    for value, message in ((True, "a number, got True"), ("7", "a number, got '7'"), (7.5, "a whole number, got 7.5"),
                           (0, ">= 1 and <= 1000, got 0"), (1001, ">= 1 and <= 1000, got 1001")):
        with pytest.raises(ValueError, match=rf"^num_inference_steps \(--steps\) must be {re.escape(message)}$"):
            steps.check(value)
    assert steps.describe() == "num_inference_steps (--steps): >= 1 and <= 1000, default 20"

    frames = Option("num_frames", int, 13, "frames per clip", low=5, multiple=4, offset=1, alias="frames", needs_image=True)
    assert frames.check(9) == 9 and frames.check(5) == 5
    with pytest.raises(ValueError, match=r"^num_frames \(--frames\) must be 1 more than a multiple of 4, >= 5, got 10$"):
        frames.check(10)
    assert frames.describe() == "num_frames (--frames): 1 more than a multiple of 4, >= 5, default 13, with --image only"
    assert Option("height", int, 64, "frame height", multiple=8).allowed() == "a multiple of 8"
    assert Option("seed_offset", int, None, "an int").allowed() == "an int"

    fps = Option("fps", float, 8.0, "frame rate", low=0, low_open=True, high=1000)
    assert fps.check(3) == 3.0 and type(fps.check(3)) is float and fps.check(1000) == 1000.0
    with pytest.raises(ValueError, match=r"^fps \(--fps\) must be > 0 and <= 1000, got 0$"):
        fps.check(0)
    with pytest.raises(ValueError, match=r"^fps \(--fps\) must be a finite number, got nan$"):
        fps.check(math.nan)
    eta = Option("eta", float, None, "DDIM's eta", cli=False)
    assert (eta.label, eta.allowed(), eta.describe(), eta.check(np.float32(0.5))) == ("eta", "a float", "eta: a float", 0.5)

    contract = Contract(tasks=("text-to-video",), prompt="required", image=False, options=(steps, fps), size=(16, 16))
    assert contract.resolve({"steps": 5, "fps": None}, False, "m") == {"num_inference_steps": 5, "fps": 8.0}
    assert contract.resolve({}, False, "m") == {"num_inference_steps": 20, "fps": 8.0}
    with pytest.raises(ValueError, match=r"^num_inference_steps given twice \(as num_inference_steps and steps\)$"):
        contract.resolve({"num_inference_steps": 5, "steps": 6}, False, "m")
    with pytest.raises(ValueError, match=r"^m does not take eta; it takes: num_inference_steps \(--steps\): >= 1 and <= 1000, "
                                         r"default 20; fps \(--fps\): > 0 and <= 1000, default 8\.0$"):
        contract.resolve({"eta": 0.0}, False, "m")


def test_a_pipeline_output_prints_its_clips_size_and_first_prompts_and_seeds():
    """`print(pipe(...))` is how a notebook user sees a result: clip count, frames and width x height, not the array."""
    from kinema.pipelines.common import VideoPipelineOutput

    one = VideoPipelineOutput(frames=np.zeros((1, 3, 8, 12, 3), np.uint8), prompts=["a"], seeds=[5])
    assert repr(one) == "VideoPipelineOutput(1 clip of 3 frames at 12x8, prompts=['a'], seeds=[5])"
    many = VideoPipelineOutput(frames=np.zeros((5, 2, 16, 4, 3), np.uint8), prompts=["a", "b", "c", "d", "e"], seeds=[0, 1, 2, 3, 4])
    assert repr(many) == "VideoPipelineOutput(5 clips of 2 frames at 4x16, prompts=['a', 'b', ...], seeds=[0, 1, 2, 3])"


def test_the_provenance_names_an_image_file_and_says_nothing_of_an_array(tiny_model_dir, tmp_path):
    """An image given as a file is recorded by its path; one given as pixels in Python has no name to record."""
    import kinema
    from kinema.io import read_video

    image = np.full((32, 32, 3), 200, np.uint8)
    from_array = kinema.generate("a red circle", tmp_path / "a.mp4", model=tiny_model_dir, image=image, steps=1)
    assert from_array.image is None
    assert "image" not in read_video(tmp_path / "a.mp4").provenance.extra
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "first.png")
    from_file = kinema.generate("a red circle", tmp_path / "b.mp4", model=tiny_model_dir, image=tmp_path / "first.png", steps=1)
    assert from_file.image == str(tmp_path / "first.png")
    assert read_video(tmp_path / "b.mp4").provenance.extra["image"] == str(tmp_path / "first.png")
