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


def test_a_batch_pads_each_prompt_to_the_longest_and_pools_its_own_tokens(text_encoder):
    """encode: one string is one prompt; rows are zero-padded to the longest prompt, and pooled is each prompt's unit mean token."""
    prompts = ["a big blue square moving up quickly", "hi", "hi"]
    fresh = lambda: MiniLMEncoder(text_encoder.bert, text_encoder.tokenizer)  # own cache: the batch is encoded as one
    batch = fresh().encode(prompts)
    alone = [fresh().encode([p]) for p in prompts]
    lengths = [int(a.mask.sum()) for a in alone]
    assert batch.tokens.shape == (3, max(lengths), 384) and batch.mask.sum(dim=1).tolist() == lengths
    for i, a in enumerate(alone):
        n = lengths[i]
        torch.testing.assert_close(batch.tokens[i, :n], a.tokens[0], atol=1e-5, rtol=0)
        assert (batch.tokens[i, n:] == 0).all() and not batch.mask[i, n:].any()
        mean = a.tokens[0].mean(dim=0)
        torch.testing.assert_close(batch.pooled[i], mean / mean.norm(), atol=1e-5, rtol=0)
    single = text_encoder.encode("a big blue square moving up quickly")
    assert single.tokens.shape[0] == 1 and torch.equal(single.tokens[0], batch.tokens[0, : lengths[0]])


def test_token_statistics_are_the_mean_and_std_over_every_real_token_of_every_caption(text_encoder):
    """A model standardises its text input with these: every caption counts, in any batch size, and padding never does."""
    captions = ["a small red circle moving left slowly", "hi", "a large green triangle", "up", "a tiny cyan circle moving down fast"]
    tokens = torch.cat([text_encoder.encode([c]).tokens[0] for c in captions])  # each caption alone: no padding at all
    assert tokens.shape[0] == sum(int(text_encoder.encode([c]).mask.sum()) for c in captions)
    for batch_size in (2, 256):
        mean, std = text_encoder.token_statistics(captions, batch_size=batch_size)
        torch.testing.assert_close(mean, tokens.mean(dim=0), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(std, tokens.std(dim=0), atol=1e-5, rtol=1e-4)  # the sample std (n - 1)
