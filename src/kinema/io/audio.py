"""Soundtracks for videos: read any audio FFmpeg decodes, fit it to a video's length, mux it, write WAV."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import av
import numpy as np

from kinema.io.atomic import atomic_path

MUX_SAMPLE_RATE = 48_000  # Opus takes only 8/12/16/24/48 kHz; AAC and PCM are fine at 48 kHz too
_CHUNK = 1024  # samples per frame handed to the encoder; PyAV re-chunks to the codec's frame size


class AudioReadError(ValueError):
    """A file could not be read as audio; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read audio '{path}': {reason}")


def _layout(channels: int) -> str:
    if channels == 1:
        return "mono"
    if channels == 2:
        return "stereo"
    raise ValueError(f"channels must be 1 or 2, got {channels}")


def read_audio(
    path: str | os.PathLike, sample_rate: int | None = None, channels: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of ``path`` (wav, mp3, aac, m4a, flac, or a video's soundtrack).

    Returns ``(samples, sample_rate)`` with samples float32 of shape (channels, n) in [-1, 1].
    ``sample_rate`` / ``channels`` (1 or 2) resample or down/up-mix; None keeps the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(path, "no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioReadError(path, "it has no audio stream")
            stream = container.streams.audio[0]
            rate = sample_rate or stream.codec_context.sample_rate
            layout = _layout(channels) if channels else stream.codec_context.layout.name
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
    except av.FFmpegError as err:
        raise AudioReadError(path, f"not a readable audio file ({err.strerror or err})") from err
    if not chunks:
        raise AudioReadError(path, "it holds no audio samples")
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), rate


def fit_audio_length(samples: np.ndarray, num_samples: int) -> np.ndarray:
    """Trim ``samples`` (channels, n) to ``num_samples``, or pad the end with silence."""
    if samples.ndim != 2:
        raise ValueError(f"samples must be (channels, n), got shape {samples.shape}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    missing = num_samples - samples.shape[1]
    if missing <= 0:
        return samples[:, :num_samples]
    return np.pad(samples, ((0, 0), (0, missing)))


def write_wav(
    path: str | os.PathLike, samples: np.ndarray, sample_rate: int, *, overwrite: bool = False
) -> Path:
    """Write float samples in [-1, 1], shape (channels, n) or (n,), as 16-bit PCM WAV."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or samples.shape[0] not in (1, 2):
        raise ValueError(f"samples must be (n,) or (channels, n) with 1 or 2 channels, got shape {samples.shape}")
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with atomic_path(path, overwrite=overwrite) as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(pcm.shape[0])
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(pcm.T.tobytes())  # WAV interleaves channels
    return Path(path)


def load_soundtrack(path: str | os.PathLike, duration: float) -> np.ndarray:
    """Read ``path`` at the mux rate as mono or stereo, trimmed or silence-padded to ``duration`` seconds."""
    samples, _ = read_audio(path, sample_rate=MUX_SAMPLE_RATE)
    if samples.shape[0] > 2:
        # Decode again rather than drop channels: FFmpeg's downmix keeps the centre and surrounds audible.
        samples, _ = read_audio(path, sample_rate=MUX_SAMPLE_RATE, channels=2)
    return fit_audio_length(samples, round(duration * MUX_SAMPLE_RATE))


class AudioTrack:
    """A soundtrack fed into an open output container in step with the video, so the file stays interleaved."""

    def __init__(self, container: av.container.OutputContainer, codec: str, samples: np.ndarray) -> None:
        self._container = container
        self._samples = np.asarray(samples, dtype=np.float32)
        self._layout = _layout(samples.shape[0])
        self._stream = container.add_stream(codec, rate=MUX_SAMPLE_RATE)
        self._stream.layout = self._layout
        self._next = 0  # first sample not yet encoded

    def mux_until(self, seconds: float) -> None:
        """Encode the samples that play before ``seconds``."""
        self._encode_to(min(round(seconds * MUX_SAMPLE_RATE), self._samples.shape[1]))

    def finish(self) -> None:
        """Encode what is left and flush the encoder."""
        self._encode_to(self._samples.shape[1])
        self._container.mux(self._stream.encode(None))

    def _encode_to(self, end: int) -> None:
        while self._next < end:
            stop = min(self._next + _CHUNK, end)
            chunk = np.ascontiguousarray(self._samples[:, self._next : stop])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self._layout)
            frame.sample_rate = MUX_SAMPLE_RATE
            frame.pts = self._next
            self._container.mux(self._stream.encode(frame))
            self._next = stop
