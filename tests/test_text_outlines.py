"""Everyday things by their outline (kinema.text.outlines): "a tent" is drawn as a triangle, "a coin" as a circle."""

import pytest

from kinema.data.shapes import shapes_vocabulary
from kinema.text import plan
from kinema.text.outlines import OUTLINE_NAMES, Outlines, outlines


@pytest.fixture(scope="module")
def read(text_encoder):
    vocabulary = shapes_vocabulary()

    def read(prompt):
        return plan(prompt, vocabulary, encoder=text_encoder)

    return read


def write(tmp_path, text):
    path = tmp_path / "outlines.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_word_is_found_in_its_plural_and_dictionary_forms(tmp_path):
    table = Outlines.read(write(tmp_path, "# things\nnacho\ttriangle\nloaf\trectangle\nleaf\toval\npizza slice\ttriangle\t-\n"))
    assert table.word("nachos") == "triangle" and table.word("Nacho") == "triangle"
    assert table.word("loaves") == "rectangle"  # WordNet's noun.exc: loaves -> loaf
    assert table.word("leaves") == "oval" and table.word("leafs") == "oval"
    assert table.word("slice") is None  # only the whole name
    assert table.phrase(["pizza", "slices"]) == "triangle" and table.phrase(["pizza"]) is None
    assert table.longest == 2


def test_a_kind_of_a_listed_thing_inherits_its_outline(tmp_path):
    """WordNet: a doubloon is a coin, a tepee a tent; a dog is a kind of neither."""
    from kinema.text.lexicon import wordnet

    table = Outlines.read(write(tmp_path, "coin\tcircle\ntent\ttriangle\n"))
    net = wordnet()
    assert table.sense(net.commonest("doubloon", "n")) == "circle"
    assert table.sense(net.commonest("tepee", "n")) == "triangle"
    assert table.sense(net.commonest("dog", "n")) is None


def test_a_name_of_several_words_stands_for_its_own_sense_not_its_first_words(tmp_path):
    """"playing card" is a rectangle; that says nothing of "playing" or of what else WordNet files under "play"."""
    from kinema.text.lexicon import wordnet

    table = Outlines.read(write(tmp_path, "playing card\trectangle\ngolf ball\tcircle\n"))
    net = wordnet()
    assert table.sense(net.commonest("playing_card", "n")) == "rectangle"
    assert table.sense(net.commonest("golf_ball", "n")) == "circle"
    assert table.sense(net.commonest("playing", "n")) is None and table.sense(net.commonest("golf", "n")) is None


@pytest.mark.parametrize("line", ["tent\ttriangular\n", "tent triangle\n", "tent\n"])
def test_a_malformed_line_is_named_with_its_place(tmp_path, line):
    path = write(tmp_path, "coin\tcircle\n" + line)
    with pytest.raises(ValueError, match=r"outlines\.tsv:2: expected 'name<TAB>outline'"):
        Outlines.read(path)


def test_the_shipped_outlines_leave_geometric_words_to_the_planner():
    """A geometric word (circle, cube, cone) is the planner's to read; the file holds everyday things only."""
    table = outlines()
    geometric = {"circle", "square", "triangle", "sphere", "cube", "pyramid", "cone", "disc", "disk", *OUTLINE_NAMES}
    assert not [name for name in table.names if len(name) == 1 and name[0] in geometric]
    assert len(table.names) >= 500 and set(table.names.values()) <= set(OUTLINE_NAMES)


@pytest.mark.parametrize("prompt, shape", [
    ("a blue tent drifting up", "triangle"),
    ("green nachos sliding right fast", "triangle"),
    ("a small yellow dice going down", "square"),
    ("a slice of pizza, blue, heading left", "triangle"),
    ("a red doubloon rolling left", "circle"),  # not in the file: a kind of coin
    ("a magenta tent shape moving up", "triangle"),  # the word before "shape" is the object's noun
])
def test_an_everyday_thing_is_drawn_as_its_outline(read, prompt, shape):
    scene = read(prompt)
    assert scene.values["shape"] == shape and scene.choices["shape"].how == "lexicon", scene.choices
    assert not scene.unplaced, scene.unplaced


def test_a_thing_before_the_objects_noun_only_says_what_it_is_like(read):
    """"a pizza box" is a box, "an egg-yolk ball" a yellow ball: the first noun does not give the shape."""
    scene = read("a pizza box moving left")
    assert scene.values["shape"] == "square"
    scene = read("a tiny egg-yolk ball floating up")
    assert (scene.values["shape"], scene.values["color"]) == ("circle", "yellow"), scene.choices


def test_a_thing_whose_outline_the_model_lacks_is_reported_and_leans_to_the_nearest(read):
    """An egg is an oval: not drawable here, so the words are reported and the clip shows the nearest shape."""
    scene = read("a red egg rolling left")
    assert "egg" in scene.unplaced
    assert scene.values["shape"] == "circle" and scene.choices["shape"].how == "lean", scene.choices


def test_a_name_of_several_words_is_the_object_of_its_sentence(read):
    """"post-it" ends in a function word: the noun phrase still reaches it, so it beats "earth" in an idiom."""
    scene = read("Honestly I am down to earth, so: a big hot-pink post-it climbing up.")
    assert scene.values["shape"] == "square" and scene.values["color"] == "magenta", scene.choices
