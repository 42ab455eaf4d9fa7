"""Shared fixtures: a tiny random diffusion model folder, built in seconds, for pipeline and CLI tests."""

import pytest
import torch

TINY_UNET = dict(
    sample_size=16, num_frames=4, patch_size=2, channels=(16, 32), blocks_per_level=1,
    attention_levels=(1,), attention_head_dim=16, text_queries=2, groups=4,
)


@pytest.fixture
def one_thread():
    """Tiny tensors: a second thread only adds synchronisation, which stalls when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def text_encoder():
    from kinema.models.text import MiniLMEncoder

    return MiniLMEncoder.from_pretrained()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random VideoUNet saved as a complete Kinema diffusion model folder."""
    from diffusers import DDPMScheduler

    from kinema.models.unet3d import VideoUNet, VideoUNetConfig
    from kinema.pipelines.text2video import PipelineConfig

    torch.manual_seed(0)
    unet = VideoUNet(VideoUNetConfig(**TINY_UNET))
    for p in unet.parameters():  # zero-initialised outputs would make every sample the same: randomise
        torch.nn.init.normal_(p, std=0.05)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    unet.save_pretrained(folder)
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", clip_sample=False)
    PipelineConfig(
        scheduler=dict(scheduler.config), sample_size=16, output_size=32, num_frames=4, default_steps=2,
        reference_prompts=["a small red circle moving left slowly", "a large blue square moving up quickly"],
    ).save(folder)
    return folder
