"""Informal words and fixed phrases (kinema.text.idioms): "smol", "full tilt", "hold A", "verde" reach the caption."""

import pytest

import kinema.text.planner as planner_module
from kinema.data.shapes import shapes_vocabulary
from kinema.text import plan
from kinema.text.idioms import IDIOM_VALUES, Idiom, Idioms, hex_rgb, idioms

TABLE = ("# test\nsmol\tsize\tsmall\nfull tilt\tspeed\tfast\nat a snail's pace\tspeed\tslow\nhold a\tdirection\tleft\n"
         "verde\tcolor\tgreen\nnaranja\tcolor\torange\nkelly-ish\tcolor\t#4CBB17\n")


def write(tmp_path, text):
    path = tmp_path / "idioms.tsv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def read(tmp_path, monkeypatch, text_encoder):
    table = Idioms.read(write(tmp_path, TABLE))
    monkeypatch.setattr(planner_module, "idioms", lambda: table)
    vocabulary = shapes_vocabulary()
    return lambda prompt: plan(prompt, vocabulary, encoder=text_encoder)


def test_phrases_are_split_as_prompts_are(tmp_path):
    """A hyphen splits words and an apostrophe stays inside one, as the planner's tokenizer does."""
    table = Idioms.read(write(tmp_path, TABLE))
    assert table.phrases[("at", "a", "snail's", "pace")] == Idiom("speed", "slow")
    assert table.phrases[("kelly", "ish")] == Idiom("color", "#4cbb17")
    assert table.at(["so", "hold", "a", "now"], 1, 2) == Idiom("direction", "left") and table.at(["hold"], 0, 1) is None
    assert table.longest == 4


@pytest.mark.parametrize("line", ["smol\tsize\ttiny\n", "smol\tshape\tsmall\n", "smol small\n", "mustard\tcolor\t#E1AD0\n"])
def test_a_malformed_line_is_named_with_its_place(tmp_path, line):
    with pytest.raises(ValueError, match=r"idioms\.tsv:2: expected 'phrase<TAB>attribute<TAB>value'"):
        Idioms.read(write(tmp_path, "verde\tcolor\tgreen\n" + line))


def test_hex_codes_are_read_exactly():
    assert hex_rgb("#4CBB17".lower()) == (0x4C, 0xBB, 0x17) and hex_rgb("#4cbb1") is None and hex_rgb("4cbb17x") is None


@pytest.mark.parametrize("prompt, values", [
    ("smol verde circle, hold A, full tilt", {"size": "small", "color": "green", "direction": "left", "speed": "quickly"}),
    ("a big kelly-ish square going up at a snail's pace", {"size": "large", "color": "green", "speed": "slowly"}),
])
def test_an_informal_word_or_fixed_phrase_is_its_plain_value(read, prompt, values):
    scene = read(prompt)
    assert {a: scene.values[a] for a in values} == values, scene.choices
    assert not scene.unplaced, scene.unplaced


def test_a_colour_the_palette_lacks_is_reported_not_drawn(read):
    scene = read("a naranja triangle moving left")
    assert "naranja" in scene.unplaced and scene.choices["color"].how in ("lean", "guess"), scene.choices


def test_a_colour_word_of_the_background_is_not_the_objects(read):
    scene = read("a red circle on a verde background moving left")
    assert scene.values["color"] == "red" and any("verde" in words for words in scene.unplaced), scene.unplaced


def test_the_shipped_idioms_are_slang_not_dictionary_words():
    """Plain words (small, fast, left, red) are the planner's own; the file holds what WordNet lacks or misreads."""
    table = idioms()
    plain = {"small", "big", "large", "little", "tiny", "huge", "fast", "quick", "slow", "left", "right", "up", "down",
             "north", "south", "east", "west", "red", "green", "blue", "yellow", "cyan", "magenta"}
    assert not [words for words in table.phrases if len(words) == 1 and words[0] in plain]
    assert len(table.phrases) >= 300
    assert {idiom.attribute for idiom in table.phrases.values()} == set(IDIOM_VALUES)


def test_speeding_up_is_a_speed_not_the_direction_up(text_encoder):
    """"picks up speed", "speeding up": the particle says how fast, not where; the direction comes from the rest."""
    vocabulary = shapes_vocabulary()
    scene = plan("a red circle that picks up speed moving left", vocabulary, encoder=text_encoder)
    assert (scene.values["direction"], scene.values["speed"]) == ("left", "quickly") and not scene.unplaced, scene.choices
    scene = plan("a red circle speeding up", vocabulary, encoder=text_encoder)
    assert scene.values["speed"] == "quickly" and scene.choices["direction"].how == "guess", scene.choices


def test_the_vocabularys_own_words_in_an_idiom_are_left_to_the_planner(text_encoder):
    """"from the bottom to the top" keeps the value after "to", though the file also lists "to the top"."""
    scene = plan("a large cyan circle going from the bottom to the top slowly", shapes_vocabulary(), encoder=text_encoder)
    assert scene.values["direction"] == "up" and not scene.unplaced, scene.choices
