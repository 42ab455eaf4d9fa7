"""The planner's general lexicon: WordNet 3.0 read from the `wn` package's files, and CSS colour names by hue."""

import pytest

from kinema.data.shapes import COLORS
from kinema.text.colors import Palette, angle_between, nearest_by_hue, rgb_of
from kinema.text.lexicon import WordNet, wordnet


def test_wordnet_gives_senses_most_frequent_first_with_their_tag_counts():
    senses = wordnet().synsets("dog", "n")
    assert "domestic dog" in senses[0].lemmas and senses[0].count >= 40  # the animal, tagged 42 times in the Brown corpus
    assert senses[0].gloss.startswith("a member of the genus Canis") and '"' not in senses[0].gloss  # no examples
    assert any("animal" in s.lemmas for s in wordnet().hypernyms(senses[0], 12))
    assert all(s.count == 0 for s in senses[1:])


def test_wordnet_takes_inflections_off_as_morphy_does():
    net = wordnet()
    assert net.lemmas("geese", "n") == ["goose"]  # noun.exc
    assert net.lemmas("scurrying", "v") == ["scurry"]  # the -ing rule
    assert net.lemmas("boxes", "n") == ["box"]
    assert "scurry" in net.synsets("scurrying")[0].lemmas
    assert net.knows("king-size") and not net.knows("zorblax")
    assert net.commonest("fast", "a").gloss.startswith("acting or moving or capable of acting or moving quickly")


def test_every_pointer_leads_to_the_synset_at_that_offset():
    net = wordnet()  # the package's files have Windows line ends: byte offsets are off, the line's own offset is not
    for synset in net.synsets("run")[:10]:
        for _, pos, offset in synset.pointers:
            assert net.synset(pos, offset).offset == offset


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_wordnet_folder_is_read_whatever_its_line_ends(tmp_path, line_end):
    licence = "  1 This software and database is being provided to you\n"
    cat = "00000100 05 n 01 cat 0 001 @ 00000200 n 0000 | a small domesticated feline; \"the cat sat\"\n"
    animal = "00000200 03 n 01 animal 0 000 | a living organism\n"
    data = licence + cat + animal
    files = {
        "data.noun": data,
        "index.noun": licence + "animal n 1 0 1 0 00000200\ncat n 1 1 @ 1 1 00000100\n",
        "cntlist.rev": "cat%1:05:00:: 1 7\n",
    }
    for name in ("index.verb", "index.adj", "index.adv", "data.verb", "data.adj", "data.adv"):
        files[name] = licence
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.replace("\n", line_end).encode())
    net = WordNet(tmp_path)
    [cat_sense] = net.synsets("cats")
    assert cat_sense.lemmas == ("cat",) and cat_sense.gloss == "a small domesticated feline" and cat_sense.count == 7
    assert [s.lemmas for s in net.hypernyms(cat_sense, 3)] == [("animal",)]
    assert net.synsets("dog") == []
    (tmp_path / "cntlist.rev").unlink()
    with pytest.raises(FileNotFoundError, match="cntlist.rev"):
        WordNet(tmp_path)


def test_colour_names_are_read_in_any_spacing():
    assert rgb_of("Sky-Blue") == rgb_of("sky blue") == rgb_of("skyblue") == (135, 206, 235)
    assert rgb_of("zorblax") is None


@pytest.mark.parametrize("rgb, nearest", [
    ((178, 34, 34), "red"),  # firebrick
    ((65, 105, 225), "blue"),  # royal blue
    ((25, 25, 112), "blue"),  # midnight blue: dark, the same hue
    ((135, 206, 235), "cyan"),  # sky blue
    ((221, 160, 221), "magenta"),  # plum
    ((255, 215, 0), "yellow"),  # gold
    ((128, 128, 128), None),  # grey: no hue
    ((245, 245, 220), None),  # beige: too pale to have one
    ((255, 165, 0), None),  # orange: half way between red and yellow
])
def test_a_colour_is_nearest_the_palette_colour_of_its_hue(rgb, nearest):
    assert nearest_by_hue(rgb, COLORS) == nearest


def test_a_colour_nearer_one_the_palette_lacks_is_none_of_its_colours():
    dark_orange = (255, 140, 0)
    assert nearest_by_hue(dark_orange, COLORS) == "red"  # a third of the way from red to yellow
    assert nearest_by_hue(dark_orange, COLORS, others={"orange": (255, 165, 0)}) is None
    assert angle_between(350, 10) == 20 and angle_between(90, 270) == 180


def test_a_colour_between_two_of_the_palette_is_settled_by_its_basic_category():
    palette = Palette("color", dict(COLORS))
    light_red_purple = (250, 180, 200)  # CIELAB hue 0.05: 40 degrees from the Shapes red, 32 from magenta
    assert palette.nearest(light_red_purple) is None  # between the two
    assert palette.nearest(light_red_purple, exclude=frozenset({"red"})) == "magenta"  # a name whose category is not red's
    assert palette.nearest((255, 165, 0), exclude=frozenset({"red", "yellow"})) is None  # orange: every other colour is far


def test_wordnet_files_colour_names_under_basic_categories_and_lists_compounds():
    net = wordnet()
    assert "prussian blue" in net.compounds("prussian", "n")
    assert net.lemmas("dying", "v") == ["die", "dye"]  # the exceptions list and the rules both
    correct = next(s for s in net.synsets("right", "a") if "correct" in s.lemmas)
    assert [net.synset(p, o).lemmas for p, o in correct.related_to("right", "!")] == [("incorrect", "wrong")]
    direction = net.synsets("right", "a")[0]
    assert [net.synset(p, o).lemmas for p, o in direction.related_to("right", "!")] == [("left",)]


def test_a_colour_names_category_is_the_kind_of_chromatic_colour_above_it(text_encoder):
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import planner_for

    senses = planner_for(shapes_vocabulary(), text_encoder).senses
    assert [senses.category(w) for w in ("crimson", "coral", "salmon", "olive")] == ["red", "pink", "salmon", "olive"]
    assert senses.category("magenta") == "red" and senses.category("cyan") == "green"  # shades, not categories of their own


@pytest.mark.parametrize("word, verb", [("drop", True), ("darts", True), ("spin", True), ("ball", False), ("pyramid", False), ("orbit", False)])
def test_a_word_is_mostly_a_verb_only_when_the_corpus_used_it_so_twice_or_more(word, verb):
    """"a pyramid" (tagged once, as a verb) stays a thing to draw; "darts" (five verb tags, no noun) reads as motion."""
    from kinema.text.reading import mostly_verb

    assert mostly_verb(word) is verb


def test_a_bare_suffix_is_not_taken_for_an_inflected_empty_word():
    """Stripping "-ing" or "-s" off "ing" or "s" leaves nothing: that is no lemma, so the stray token stays unknown."""
    net = wordnet()
    assert net.lemmas("ing", "v") == [] and not net.knows("ing")
    assert net.lemmas("s", "v") == [] and net.lemmas("ed", "v") == [] and net.lemmas("er", "a") == []


def test_a_phrase_two_values_share_names_neither():
    """"zippy" written under both fast and slow cannot decide the speed: it must not be read as naming either."""
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text import Vocabulary
    from kinema.text.phrases import Phrases

    data = shapes_vocabulary().to_json()
    for value in ("quickly", "slowly"):
        data["attributes"]["speed"]["values"][value]["description"] += ", zippy"
    phrases = Phrases(Vocabulary.from_json(data)).phrases
    assert ("zippy",) not in phrases
    assert phrases[("fast",)] == {("speed", "quickly")} and phrases[("slow",)] == {("speed", "slowly")}


def test_compounds_stop_at_the_limit_for_each_joint_in_index_order():
    """The colour reader caps how many compounds it weighs ("ice" has dozens): the cap must hold, first ones first."""
    net = wordnet()
    every = net.compounds("ice", "n")
    hyphened, spaced = [c for c in every if c.startswith("ice-")], [c for c in every if c.startswith("ice ")]
    assert len(hyphened) > 2 and len(spaced) > 2 and hyphened + spaced == every
    assert net.compounds("ice", "n", limit=2) == hyphened[:2] + spaced[:2]
    assert net.compounds("ice", "n", limit=1) == hyphened[:1] + spaced[:1]


def test_the_commonest_sense_is_the_words_own_before_its_inflections():
    """"found" is first the verb found (establish), then the past of find: the planner reads a word by that first sense."""
    net = wordnet()
    assert net.lemmas("found", "v") == ["found", "find"] and "establish" in net.commonest("found", "v").lemmas
    assert net.lemmas("leaves", "n") == ["leaf", "leave"] and "foliage" in net.commonest("leaves", "n").lemmas
    for word, pos in [("found", "v"), ("leaves", "n"), ("axes", "n"), ("lay", "v")]:
        assert net.commonest(word, pos).offset == net.synsets(word, pos)[0].offset, word


def test_a_verbs_manner_comes_from_the_first_clause_of_its_definition_only(text_encoder):
    """"hide": "prevent from being seen or discovered; keep out of sight": a later clause is another sense's gloss, not a manner."""
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import planner_for

    senses = planner_for(shapes_vocabulary(), text_encoder).senses
    for verb in ("hide", "want", "exclude", "optimize", "gape"):
        assert senses.manner(verb, {"speed", "direction"}) is None, verb
    assert senses.manner("amble", {"speed", "direction"})[0] == ("speed", "slowly")  # "walk leisurely"


def test_a_pointer_to_no_synset_is_a_key_error_naming_the_offset():
    """A damaged WordNet folder names the synset it lacks; callers catch KeyError, as for any missing entry."""
    net = wordnet()
    with pytest.raises(KeyError, match="WordNet has no noun synset 00000042 in"):
        net.synset("n", 42)
    with pytest.raises(KeyError, match="WordNet has no verb synset 99999999 in"):
        net.synset("v", 99999999)


def test_a_definition_gives_the_value_of_its_first_word_that_leads_anywhere(text_encoder):
    """"minimally": "to a minimal degree", and minimal is small; "swash": "make violent, noisy movements", and violent is fast."""
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import planner_for

    senses = planner_for(shapes_vocabulary(), text_encoder).senses
    assert senses.word("minimally")[0] == ("size", "small")
    assert senses.word("swash")[0] == ("speed", "quickly")


def test_a_definitions_word_is_read_in_the_sense_whose_own_antonym_is_another_value(text_encoder):
    """"stocky": "having a short and solid form": short as opposed to tall (small), not the "short" of a brief, fast time."""
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import planner_for

    senses = planner_for(shapes_vocabulary(), text_encoder).senses
    for word in ("stocky", "thickset"):
        assert senses.word(word)[0] == ("size", "small"), word


def test_only_a_lone_value_word_after_a_verb_is_an_idioms_particle():
    """A definition's "make up" is an idiom, not the direction up; "go up" is motion; and a value phrase of two words
    ("up high") is the value even after such a verb: only one word can be a phrasal verb's particle."""
    from kinema.text.phrases import Match
    from kinema.text.senses import _after_verb, _particle

    assert _particle(["make", "up"], 1) and not _particle(["up"], 0) and not _particle(["big", "up"], 1)
    assert _after_verb(["make", "up", "high"], Match("direction", "up", 1.0, "named", (1,)))
    assert not _after_verb(["make", "up", "high"], Match("direction", "up", 1.0, "named", (1, 2)))
    assert not _after_verb(["go", "up"], Match("direction", "up", 1.0, "named", (1,)))  # a verb of motion


def test_a_definitions_adjective_is_read_by_the_noun_its_own_word_comes_from(text_encoder):
    """"disinherited": "deprived of your rightful heritage"; rightful comes from the noun "rightfulness", not from "right"
    (that noun's first synonym, and a direction): a disinherited circle says nothing about where it moves."""
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import plan, planner_for

    vocabulary = shapes_vocabulary()
    senses = planner_for(vocabulary, text_encoder).senses
    assert senses._derived("rightful") is None and senses._derived("triangular") == ("shape", "triangle")
    assert senses.word("disinherited") is None
    scene = plan("a disinherited red circle", vocabulary, encoder=text_encoder)
    assert scene.choices["direction"].how == "guess" and scene.unplaced == ["disinherited"]


def test_a_words_senses_vote_by_tag_count_plus_rank_and_a_rare_sense_places_nothing(text_encoder):
    """How sure the planner is of a lexicon word is the weight of its senses that lead to the value: "swift" is fast by
    its adjective (tagged 15 times: 15 + 1/1) against four untagged noun senses (the bird...: 1/1 + 1/2 + 1/3 + 1/4,
    rank within the part of speech); "driving" leads to fast only by a rare golf sense and is placed nowhere."""
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import planner_for

    senses = planner_for(shapes_vocabulary(), text_encoder).senses
    assert [(s.pos, s.count) for s in wordnet().synsets("swift")] == [("n", 0)] * 4 + [("a", 15)]
    (value, share) = senses.word("swift")
    assert value == ("speed", "quickly") and share == pytest.approx(16 / (16 + 1 + 1 / 2 + 1 / 3 + 1 / 4))
    (value, share) = senses.word("plodding")  # the adjective (1 + 1) is slow, the second noun (1/2) another thing
    assert value == ("speed", "slowly") and share == pytest.approx(2 / (2 + 1 / 2))
    assert any(senses.sense(s) == ("speed", "quickly") for s in wordnet().synsets("driving", "v")) and senses.word("driving") is None


def test_a_word_tagged_mostly_as_an_adjective_is_not_mostly_a_verb():
    """"clear" (32 verb tags, 80 adjective) and "slow" (12, 27) describe the object in "a clear blue square"; "dry" (23 verb
    tags, 19 adjective) is used more as a verb: the verb tags must outnumber the noun and adjective tags together."""
    from kinema.text.reading import mostly_verb

    def tags(word):
        return {pos: sum(s.count for s in wordnet().synsets(word, pos)) for pos in ("v", "n", "a")}

    assert tags("clear") == {"v": 32, "n": 0, "a": 80} and tags("dry") == {"v": 23, "n": 0, "a": 19}
    assert [mostly_verb(w) for w in ("clear", "slow", "empty", "dry", "open")] == [False, False, False, True, True]


def test_a_colour_settled_by_its_category_is_still_none_when_a_colour_the_palette_lacks_is_nearer():
    """Pink is not red, so between red and magenta it is drawn magenta; but a palette that lists coral among the colours it
    lacks must not draw pink at all when coral is nearer pink's hue than magenta is: the user asked for a coral-ish pink."""
    from kinema.text.colors import lch

    pink, coral = rgb_of("pink"), rgb_of("coral")
    hue = lch(pink)[2]
    assert angle_between(hue, lch(coral)[2]) < angle_between(hue, lch(COLORS["magenta"])[2])
    assert Palette("color", dict(COLORS)).nearest(pink, exclude=frozenset({"red"})) == "magenta"
    lacking_coral = Palette("color", dict(COLORS), {"coral": coral})
    assert lacking_coral.nearest(pink) is None and not lacking_coral.lacks(pink)  # red is nearer than coral
    assert lacking_coral.nearest(pink, exclude=frozenset({"red"})) is None


@pytest.mark.parametrize("word, attribute", [
    ("anemometric", "speed"),  # "pertaining to the measurement of wind speed and direction"
    ("ill-fitting", "size"),  # "not the right size or shape"
    ("grotesque", "shape"),  # "distorted and unnatural in shape or size"
])
def test_a_word_speaking_of_two_attributes_speaks_of_the_first_its_definition_names(word, attribute):
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text.planner import planner_for

    assert planner_for(shapes_vocabulary()).senses.attribute_named(word) == attribute
