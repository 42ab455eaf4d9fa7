"""Datasets: the procedural Shapes sets and folders of the user's own videos."""

from kinema.data.shapes import (
    CaptionedShapes,
    ShapeMotion,
    frames_to_tensor,
    parse_caption,
    tensor_to_frames,
)
from kinema.data.video_folder import VideoFolder

__all__ = ["CaptionedShapes", "ShapeMotion", "VideoFolder", "frames_to_tensor", "parse_caption", "tensor_to_frames"]
