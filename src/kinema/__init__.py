"""Kinema: AI video generation, training and evaluation in one package.

    import kinema
    video = kinema.generate("a small red circle moving left slowly", seed=0)   # the default model
    video.save("clip.mp4")
    pipe = kinema.load_pipeline("shape-motion-gan")                            # or any model folder / run
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["generate", "load_pipeline", "__version__"]


def __getattr__(name: str) -> Any:
    # imported on first use, so `import kinema` (and `kinema --help`) stays fast
    if name == "generate":
        from kinema.pipelines.generate import generate

        return generate
    if name == "load_pipeline":
        from kinema.pipelines import load_pipeline

        return load_pipeline
    raise AttributeError(f"module 'kinema' has no attribute {name!r}")
