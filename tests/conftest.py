"""Shared fixtures: a tiny random diffusion model folder, built in seconds, for pipeline and CLI tests."""

import pytest
import torch

TINY_UNET = dict(
    sample_size=16, num_frames=4, patch_size=2, channels=(16, 32), blocks_per_level=1,
    attention_levels=(1,), attention_head_dim=16, text_queries=2, groups=4,
)  # the shape of kinema.pipelines.text2video.tiny_pipeline's denoiser


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
def tiny_model_dir(tmp_path_factory, text_encoder):
    """A random two-level denoiser (16x16x4, output 32x32) saved as a complete Kinema diffusion model folder."""
    from kinema.pipelines.text2video import tiny_pipeline

    return tiny_pipeline(text_encoder).save_pretrained(tmp_path_factory.mktemp("models") / "tiny")
