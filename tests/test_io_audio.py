"""Audio helpers and soundtrack muxing: lengths fitted to the video, formats that cannot hold audio."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from kinema.io import AudioReadError, probe, read_audio, write_video
from kinema.io.audio import fit_audio_length, write_wav

AAC_FRAME = 1024 / 48_000  # seconds: one AAC frame, the slack an encoder may add at the end


def tone(seconds: float, sample_rate: int = 44_100, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return np.repeat((0.3 * np.sin(2 * np.pi * freq * t))[None], channels, axis=0).astype(np.float32)


def black_frames(num_frames: int = 16) -> np.ndarray:
    return np.zeros((num_frames, 32, 32, 3), np.uint8)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def encode_audio(path: Path, samples: np.ndarray, sample_rate: int, codec: str, format: str) -> Path:
    """Write a tone as mp3 / flac / m4a with PyAV, the way a user's sound file would arrive."""
    with av.open(str(path), "w", format=format) as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[:1], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_wav_round_trip(tmp_path):
    samples = tone(0.5, channels=2)
    samples[1] *= 0.5  # tell the channels apart
    write_wav(tmp_path / "t.wav", samples, 44_100)
    decoded, rate = read_audio(tmp_path / "t.wav")
    assert rate == 44_100
    assert decoded.dtype == np.float32 and decoded.shape == samples.shape
    np.testing.assert_allclose(decoded, samples, atol=1 / 32767 + 1e-6)


def test_read_audio_resamples_and_mixes(tmp_path):
    write_wav(tmp_path / "t.wav", tone(1.0, channels=2), 44_100)
    samples, rate = read_audio(tmp_path / "t.wav", sample_rate=48_000, channels=1)
    assert rate == 48_000 and samples.shape[0] == 1
    assert abs(samples.shape[1] - 48_000) <= 64
    assert 0.2 < rms(samples) < 0.31  # FFmpeg mixes identical channels at +3 dB: audible, not clipped


def test_fit_audio_length_trims_and_pads_with_silence():
    samples = np.ones((2, 10), np.float32)
    assert fit_audio_length(samples, 4).shape == (2, 4)
    padded = fit_audio_length(samples, 15)
    assert padded.shape == (2, 15) and padded[:, :10].all() and not padded[:, 10:].any()


def test_fit_audio_length_keeps_the_start_when_trimming():
    """A soundtrack longer than the video must lose its end, not its opening."""
    samples = np.arange(20, dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(fit_audio_length(samples, 4), [[0, 1, 2, 3], [10, 11, 12, 13]])
    np.testing.assert_array_equal(fit_audio_length(samples, 10), samples)


def test_read_audio_errors_name_the_file(tmp_path):
    with pytest.raises(AudioReadError, match="nothing.wav"):
        read_audio(tmp_path / "nothing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(AudioReadError, match="junk.wav"):
        read_audio(tmp_path / "junk.wav")
    write_video(tmp_path / "silent.mp4", black_frames(2))
    with pytest.raises(AudioReadError, match="no audio stream"):
        read_audio(tmp_path / "silent.mp4")


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov", ".avi"])
def test_long_audio_is_trimmed_to_the_video(tmp_path, suffix):
    write_wav(tmp_path / "tone3s.wav", tone(3.0), 44_100)
    path = tmp_path / f"clip{suffix}"
    write_video(path, black_frames(16), fps=8, audio=tmp_path / "tone3s.wav")  # 2 s of video
    info = probe(path)
    assert info.audio is not None and info.audio.sample_rate == 48_000
    assert info.audio.duration == pytest.approx(2.0, abs=AAC_FRAME)
    samples, rate = read_audio(path)
    assert samples.shape[1] / rate == pytest.approx(2.0, abs=AAC_FRAME)


def test_short_audio_is_padded_with_silence(tmp_path):
    write_wav(tmp_path / "tone1s.wav", tone(1.0), 44_100)
    write_video(tmp_path / "clip.mp4", black_frames(16), fps=8, audio=tmp_path / "tone1s.wav")
    assert probe(tmp_path / "clip.mp4").audio.duration == pytest.approx(2.0, abs=AAC_FRAME)
    samples, rate = read_audio(tmp_path / "clip.mp4")
    assert samples.shape[1] / rate == pytest.approx(2.0, abs=AAC_FRAME)
    assert rms(samples[:, int(0.1 * rate) : int(0.9 * rate)]) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)
    assert rms(samples[:, int(1.1 * rate) :]) < 0.01


@pytest.mark.parametrize(
    ("suffix", "codec", "format"), [(".flac", "flac", "flac"), (".mp3", "libmp3lame", "mp3"), (".m4a", "aac", "ipod")]
)
def test_compressed_sound_files_can_be_muxed(tmp_path, suffix, codec, format):
    sound = encode_audio(tmp_path / f"tone{suffix}", tone(1.5, 48_000), 48_000, codec, format)
    write_video(tmp_path / "clip.mp4", black_frames(8), fps=8, audio=sound)
    assert probe(tmp_path / "clip.mp4").audio.duration == pytest.approx(1.0, abs=AAC_FRAME)


@pytest.mark.parametrize("name", ["clip.gif", "frames"])
def test_formats_without_audio_refuse_it(tmp_path, name):
    write_wav(tmp_path / "tone.wav", tone(1.0), 44_100)
    with pytest.raises(ValueError, match="cannot hold audio"):
        write_video(tmp_path / name, black_frames(4), audio=tmp_path / "tone.wav")
    assert not (tmp_path / name).exists()


def test_missing_sound_file_fails_before_writing(tmp_path):
    with pytest.raises(AudioReadError, match="gone.wav"):
        write_video(tmp_path / "clip.mp4", black_frames(4), audio=tmp_path / "gone.wav")
    assert not (tmp_path / "clip.mp4").exists()


def test_avi_soundtrack_keeps_every_sample_and_pads_the_end_with_silence(tmp_path):
    """AVI stores PCM: a 48 kHz stereo soundtrack comes back sample for sample, aligned to the first frame."""
    samples = np.stack([tone(1.5, 48_000)[0], 0.5 * tone(1.5, 48_000, freq=660.0)[0]])
    write_wav(tmp_path / "stereo.wav", samples, 48_000)
    expected, _ = read_audio(tmp_path / "stereo.wav")
    write_video(tmp_path / "clip.avi", black_frames(16), fps=8, audio=tmp_path / "stereo.wav")  # 2 s of video
    decoded, rate = read_audio(tmp_path / "clip.avi")
    assert rate == 48_000 and decoded.shape == (2, 96_000)
    np.testing.assert_array_equal(decoded[:, :72_000], expected)
    assert not decoded[:, 72_000:].any()
    info = probe(tmp_path / "clip.avi").audio
    assert (info.codec, info.sample_rate, info.channels, info.duration) == ("pcm_s16le", 48_000, 2, 2.0)


def test_surround_sound_is_mixed_down_to_stereo_and_mono_stays_mono(tmp_path):
    """A 5.1 soundtrack is muxed as two audible channels (not one, not six); a mono one keeps its single channel."""
    import wave

    t = np.arange(48_000) / 48_000
    for channels in (3, 6):  # 2.1 and 5.1
        pcm = np.stack([8000 * np.sin(2 * np.pi * (300 + 50 * c) * t) for c in range(channels)]).round().astype("<i2")
        with wave.open(str(tmp_path / f"{channels}.wav"), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(48_000)
            out.writeframes(pcm.T.tobytes())
        write_video(tmp_path / f"{channels}.avi", black_frames(8), fps=8, audio=tmp_path / f"{channels}.wav")
        assert probe(tmp_path / f"{channels}.avi").audio.channels == 2
        mixed, _ = read_audio(tmp_path / f"{channels}.avi")
        assert mixed.shape == (2, 48_000) and min(rms(mixed[0]), rms(mixed[1])) > 0.05
    write_wav(tmp_path / "mono.wav", tone(1.0), 44_100)
    write_video(tmp_path / "mono.avi", black_frames(8), fps=8, audio=tmp_path / "mono.wav")
    assert probe(tmp_path / "mono.avi").audio.channels == 1


def test_write_wav_takes_one_or_two_channels_and_clips_to_16_bit(tmp_path):
    """A 1-D array is mono; louder than full scale is clipped, not wrapped; any other channel count is refused."""
    import wave

    write_wav(tmp_path / "mono.wav", np.array([0.0, 0.5, -0.5, 1.5, -2.0]), 8_000)
    with wave.open(str(tmp_path / "mono.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 8_000, 5)
        assert np.frombuffer(wav.readframes(5), "<i2").tolist() == [0, 16384, -16384, 32767, -32767]
    for shape in [(0, 10), (3, 10), (1, 2, 10)]:
        with pytest.raises(ValueError) as err:
            write_wav(tmp_path / "bad.wav", np.zeros(shape), 8_000)
        assert str(err.value) == f"samples must be (n,) or (channels, n) with 1 or 2 channels, got shape {shape}"
    assert not (tmp_path / "bad.wav").exists()


def test_a_sound_file_without_samples_or_a_channel_count_past_two_is_refused(tmp_path):
    """An empty WAV is named as empty (an AudioReadError naming the file); asking for 3 channels is a clear error."""
    write_wav(tmp_path / "empty.wav", np.zeros((1, 0)), 8_000)
    with pytest.raises(AudioReadError) as err:
        read_audio(tmp_path / "empty.wav")
    assert str(err.value) == f"cannot read audio '{tmp_path / 'empty.wav'}': it holds no audio samples"
    write_wav(tmp_path / "tone.wav", tone(0.1, channels=2), 44_100)
    with pytest.raises(ValueError, match=r"^channels must be 1 or 2, got 3$"):
        read_audio(tmp_path / "tone.wav", channels=3)
    assert read_audio(tmp_path / "tone.wav", channels=2)[0].shape == (2, 4410)


def test_fit_audio_length_accepts_zero_and_names_bad_arguments():
    """Zero samples is a valid length (an empty track); a negative length or a 1-D array is a caller's bug, named."""
    samples = np.ones((2, 10), np.float32)
    assert fit_audio_length(samples, 0).shape == (2, 0)
    with pytest.raises(ValueError, match=r"^num_samples must be >= 0, got -1$"):
        fit_audio_length(samples, -1)
    with pytest.raises(ValueError, match=r"^samples must be \(channels, n\), got shape \(10,\)$"):
        fit_audio_length(samples[0], 4)


def test_read_audio_errors_carry_the_path_and_the_reason(tmp_path):
    """Callers report err.path and err.reason on their own; a str path comes back as a Path, the reason unprefixed."""
    missing = str(tmp_path / "nothing.wav")
    with pytest.raises(AudioReadError) as err:
        read_audio(missing)
    assert (err.value.path, err.value.reason) == (Path(missing), "no such file")
    assert str(err.value) == f"cannot read audio '{missing}': no such file"
    with pytest.raises(AudioReadError) as err:
        read_audio(tmp_path)  # a folder is not a sound file
    assert (err.value.path, err.value.reason) == (tmp_path, "no such file")
    write_video(tmp_path / "silent.avi", black_frames(2))
    with pytest.raises(AudioReadError) as err:
        read_audio(str(tmp_path / "silent.avi"))
    assert (err.value.path, err.value.reason) == (tmp_path / "silent.avi", "it has no audio stream")
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(AudioReadError) as err:
        read_audio(tmp_path / "junk.wav")
    assert err.value.reason.startswith("not a readable audio file (") and isinstance(err.value.__cause__, av.FFmpegError)
    made = AudioReadError("song.mp3", "too quiet")  # the public error, raised by a user's own loader
    assert (made.path, made.reason, str(made)) == (Path("song.mp3"), "too quiet", "cannot read audio 'song.mp3': too quiet")


def test_a_soundtrack_is_muxed_in_step_with_the_video_and_finished_to_its_last_sample(tmp_path):
    """Audio fed as the video advances keeps the file interleaved, so players need not buffer the whole track."""
    from kinema.io.audio import AudioTrack

    class Recording:
        def __init__(self, container):
            self.container, self.samples = container, []

        def add_stream(self, *args, **kwargs):
            return self.container.add_stream(*args, **kwargs)

        def mux(self, packets):
            self.samples += [p.size // 4 for p in packets]  # stereo 16-bit PCM: 4 bytes a sample
            self.container.mux(packets)

    samples = np.stack([tone(1.0, 48_000)[0], tone(1.0, 48_000, freq=660.0)[0]])  # 48,000 samples
    with av.open(str(tmp_path / "sound.avi"), "w", format="avi") as container:
        out = Recording(container)
        track = AudioTrack(out, "pcm_s16le", samples)
        track.mux_until(0.125)  # one frame at 8 fps
        assert sum(out.samples) == 6_000 and max(out.samples) <= 1024
        track.mux_until(0.1)  # never goes back
        assert sum(out.samples) == 6_000
        track.mux_until(0.5)
        assert sum(out.samples) == 24_000
        track.mux_until(5.0)  # past the end: only what there is
        assert sum(out.samples) == 48_000
        track.finish()
        assert sum(out.samples) == 48_000
    decoded, rate = read_audio(tmp_path / "sound.avi")
    assert rate == 48_000
    np.testing.assert_allclose(decoded, samples, atol=1 / 32767 + 1e-6)


def test_a_soundtrack_at_another_sample_rate_keeps_its_pitch_and_length(tmp_path):
    """A 44.1 kHz song muxed into a 48 kHz track is resampled, not replayed faster: a 1 kHz tone stays 1 kHz."""
    write_wav(tmp_path / "tone.wav", tone(1.0, 44_100, freq=1000.0), 44_100)
    write_video(tmp_path / "clip.avi", black_frames(8), fps=8, audio=tmp_path / "tone.wav")  # 1 s of video
    decoded, rate = read_audio(tmp_path / "clip.avi")
    assert (rate, decoded.shape) == (48_000, (1, 48_000))
    spectrum = np.abs(np.fft.rfft(decoded[0]))  # 1 Hz a bin over one second
    assert int(np.argmax(spectrum)) == 1000
    assert rms(decoded[:, 1000:-1000]) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)  # the whole second is sound


@pytest.mark.parametrize(("num_frames", "fps"), [(2, 9), (4, 7), (1, 11)])
def test_a_soundtrack_is_cut_to_the_nearest_sample_of_the_video_length(tmp_path, num_frames, fps):
    """At rates like 9 or 7 fps the video's length is no whole number of samples; the track rounds to the nearest."""
    write_wav(tmp_path / "tone.wav", tone(1.0, 48_000), 48_000)
    write_video(tmp_path / "clip.avi", black_frames(num_frames), fps=fps, audio=tmp_path / "tone.wav")
    decoded, _ = read_audio(tmp_path / "clip.avi")
    expected = int(num_frames * 48_000 / fps + 0.5)  # 10,666.67 -> 10,667; 27,428.57 -> 27,429; 4,363.64 -> 4,364
    assert decoded.shape == (1, expected)


def test_formats_without_audio_name_the_ones_that_have_it(tmp_path):
    """The refusal tells the user which formats would keep their soundtrack."""
    write_wav(tmp_path / "tone.wav", tone(0.5), 44_100)
    for name, holder in [("clip.gif", "GIF"), ("frames", "a PNG folder")]:
        with pytest.raises(ValueError) as err:
            write_video(tmp_path / name, black_frames(4), audio=tmp_path / "tone.wav")
        assert str(err.value) == f"{holder} cannot hold audio; write .mp4, .mov, .webm or .avi to keep it"
