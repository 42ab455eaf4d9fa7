"""Video and audio files in and out, with provenance: the edge where frames become files and back."""

from kinema.io.audio import AudioReadError, read_audio
from kinema.io.provenance import Provenance
from kinema.io.video import (
    AudioInfo,
    Video,
    VideoInfo,
    VideoReadError,
    probe,
    read_provenance,
    read_video,
    write_video,
)

__all__ = [
    "AudioInfo",
    "AudioReadError",
    "Provenance",
    "Video",
    "VideoInfo",
    "VideoReadError",
    "probe",
    "read_audio",
    "read_provenance",
    "read_video",
    "write_video",
]
