"""all-MiniLM-L6-v2 in our own code: same numbers as sentence-transformers, weights verified."""

import shutil

import pytest
import torch

from kinema.models.text import MINILM_SHA256, MiniLMEncoder, TextEncoderError, package_model_dir


def test_matches_sentence_transformers(text_encoder):
    st = pytest.importorskip("sentence_transformers")
    prompts = ["a small red circle moving left slowly", "hi", "a big box drifting towards the top at a fast pace"]
    ours = text_encoder.encode(prompts)
    ref = st.SentenceTransformer(str(package_model_dir()), device="cpu")
    torch.testing.assert_close(ours.pooled, ref.encode(prompts, convert_to_tensor=True), atol=1e-5, rtol=0)
    tokens = ref.encode(prompts, output_value="token_embeddings")
    for i, t in enumerate(tokens):
        assert ours.mask[i].sum() == len(t)
        torch.testing.assert_close(ours.tokens[i, : len(t)], t, atol=1e-4, rtol=0)
        assert (ours.tokens[i, len(t) :] == 0).all()


def test_direction_words_move_tokens_more_than_the_sentence(text_encoder):
    left, right = text_encoder.encode(["a red circle moving left", "a red circle moving right"]).tokens
    assert torch.cosine_similarity(left[-2], right[-2], dim=0) < 0.9  # the direction token itself differs


def test_refuses_weights_that_are_not_the_official_ones(tmp_path):
    folder = tmp_path / "minilm"
    shutil.copytree(package_model_dir(), folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(data))
    with pytest.raises(TextEncoderError, match="not the official all-MiniLM-L6-v2"):
        MiniLMEncoder.from_pretrained(folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(TextEncoderError, match="tokenizer.json"):
        MiniLMEncoder.from_pretrained(folder)
    assert len(MINILM_SHA256) == 64


def test_closest_reference_is_the_most_similar_training_prompt_and_none_means_no_distance(text_encoder):
    """The out-of-distribution warning rests on this: the nearest training prompt by cosine; with no references, cosine 1 (never far)."""
    from kinema.models.text import PromptReference

    references = ["a red circle moving left", "a big blue square moving up quickly", "a small green triangle"]
    prompts = ["a large blue box drifting upwards fast", "red circle going left", "a green triangle, small"]
    closest = PromptReference(text_encoder, references).closest(prompts)
    pooled = text_encoder.encode(references).pooled
    for (reference, cosine), prompt in zip(closest, prompts):
        sims = torch.nn.functional.cosine_similarity(text_encoder.encode([prompt]).pooled, pooled)
        assert reference == references[int(sims.argmax())] and cosine == pytest.approx(float(sims.max()), abs=1e-5)
    assert [r for r, _ in closest] == [references[1], references[0], references[2]]
    assert PromptReference(text_encoder, []).closest(["anything", ""]) == [("", 1.0), ("", 1.0)]


def test_max_length_truncates_prompts_to_that_many_tokens(text_encoder):
    """A caller that asks for shorter prompts gets them cut at max_length tokens ([CLS] and [SEP] included), and the first tokens kept."""
    short = MiniLMEncoder.from_pretrained(max_length=6, expected_sha256=None)  # the same files as the fixture's, checked there
    long_prompt = "a very large bright red circle moving slowly from the left edge to the right edge"
    assert short.max_length == 6
    encoded = short.encode([long_prompt, "hi"])
    assert encoded.mask.sum(dim=1).tolist() == [6, 3]  # [CLS] hi [SEP]
    full = text_encoder.encode([long_prompt])
    assert int(full.mask.sum()) > 6
