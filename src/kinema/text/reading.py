"""One prompt as the scene planner reads it: its words and the punctuation between them, what each pass found, and
the grammar the passes lean on (noun phrases, the object's noun, phrases reported whole)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from kinema.text.colors import rgb_of
from kinema.text.lexicon import wordnet
from kinema.text.phrases import Match
from kinema.text.words import DETERMINERS, MOTION_WORDS, OBJECT_WORDS, STOP_WORDS, Token, read_number, tokenize

RELATIVE = frozenset({"that", "which", "who"})  # "a ball that darts left": the next word is its verb
_SENTENCE_END = re.compile(r"[.!?;\n]")  # not ":": "add one to the clip: green, zooming west" is one request
_WEAK = ("meaning", "lean")
MAX_RESPELT = 20  # letters: a longer "word" is no misspelling worth 50 lookups a letter  # matches a phrase reported whole may hold: MiniLM's guesses, not the prompt's words


@dataclass
class Reading:
    """One prompt: its words, which of them the passes took, and what they found."""

    prompt: str
    tokens: list[Token]
    texts: list[str]  # lowercased words; a spelling mistake is replaced by the word meant
    used: list[bool]
    matches: list[Match] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)  # words of things the model cannot draw: never placed by meaning
    between: set[int] = field(default_factory=set)  # words of a value between the vocabulary's ("45 degrees", "top right")
    lacking: set[int] = field(default_factory=set)  # words of a value of an attribute the vocabulary lacks ("medium-sized")
    quiet: set[int] = field(default_factory=set)  # words read and dropped: the model's own background, idioms
    report: set[int] = field(default_factory=set)  # words of a phrase the model cannot draw, reported whole
    units: list[set[int]] = field(default_factory=list)  # those phrases, each one entry of Scene.unplaced
    _parts: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, prompt: str) -> Reading:
        tokens = tokenize(prompt)
        return cls(prompt, tokens, [t.text for t in tokens], [False] * len(tokens))

    # ------------------------------------------------------------------------------------------ words

    def gap(self, i: int) -> str:
        """The prompt's text between word i and the next ("" after the last)."""
        return self.prompt[self.tokens[i].end : self.tokens[i + 1].start] if i + 1 < len(self.tokens) else ""

    def joined(self, i: int, n: int) -> str:
        """Words i to i + n - 1 as the prompt joins them, lowercased: "king-size", "sky blue"."""
        return "".join(self.texts[k] + self.gap(k).lower() for k in range(i, i + n - 1)) + self.texts[i + n - 1]

    def part(self, i: int) -> int:
        """Which sentence part word i is in (parts end at . ! ? ; and new lines)."""
        if not self._parts:
            ends = [bool(_SENTENCE_END.search(self.gap(k))) for k in range(len(self.tokens))]
            self._parts = [sum(ends[:k]) for k in range(len(self.tokens))]
        return self._parts[i]

    def broken(self, i: int) -> bool:
        """Whether punctuation (or the prompt's end) follows word i."""
        return bool(re.search(r"[^\w\s'\-/]", self.gap(i))) or i + 1 >= len(self.tokens)

    @property
    def content(self) -> list[int]:
        return [i for i, w in enumerate(self.texts) if w not in STOP_WORDS]

    def left(self, quiet_words: set[str]) -> list[int]:
        """Content words no pass has taken, dropped or refused."""
        return [i for i in self.content if not self.used[i] and self.texts[i] not in quiet_words and i not in self.quiet
                and i not in self.refused and not self.texts[i].isdigit()]

    def weak(self, i: int) -> bool:
        """Whether word i is placed by nothing surer than MiniLM meaning."""
        return all(m.how in _WEAK for m in self.matches if i in m.tokens)

    # ------------------------------------------------------------------------------------------ findings

    def report_phrase(self, indices: set[int]) -> None:
        """Report these words as one phrase the model cannot draw; what they hold is not the object's."""
        self.report |= indices
        if len(indices) > 1:
            self.units.append(set(indices))
        self.drop(indices)
        for k in indices:
            self.used[k] = True

    def drop(self, indices: set[int]) -> None:
        """Forget the matches on these words (a background's colour, the words of a phrase reported whole); a lean
        stays (its word is reported anyway)."""
        self.matches = [m for m in self.matches if not set(m.tokens) & indices or m.how == "lean"]

    # ------------------------------------------------------------------------------------------ grammar

    def noun_phrases(self, noun: str | None, motion: set[str]) -> list[tuple[int, list[int]]]:
        """Each noun phrase's last word (its noun) and the words before it (its adjectives): the words after a
        determiner, a number or a sentence part's start, up to a function word, punctuation, a verb of motion, an
        -ing form, a word used mostly as a verb, a word of a ``motion`` attribute's value (a direction, a speed) after
        a word no pass placed, or after a word of the ``noun`` attribute: "a wee cobalt tile | slowly descending", "a
        jumbo emerald ball | drop like a stone", but "a big slow red circle"."""
        of_motion = {i for m in self.matches if m.attribute in motion for i in m.tokens}
        of_noun = {m.tokens[-1] for m in self.matches if m.attribute == noun}  # a name of several words ends the phrase at its last
        in_name = {i for m in self.matches if m.attribute == noun for i in m.tokens}  # ... and holds its "of", "it": "slice of pizza", "post-it"
        taken = {i for m in self.matches for i in m.tokens}
        relative = {i for i in range(1, len(self.texts)) if self.texts[i] in RELATIVE and self.texts[i - 1] not in STOP_WORDS}
        starts = {0} | {i + 1 for i in range(len(self.texts)) if (self.texts[i] in DETERMINERS and i not in relative)
                        or self.broken(i) or read_number(self.texts, i) is not None}
        out = []
        for start in sorted(starts):
            run, k = [], start
            while k < len(self.texts) and (k in in_name or self.texts[k] not in STOP_WORDS and self.texts[k] not in MOTION_WORDS) \
                    and not (k in of_motion and run and run[-1] not in taken) \
                    and not (run and (self.texts[k].endswith("ing") or (k not in taken and k + 1 not in of_noun
                                                                         and mostly_verb(self.texts[k])))):
                run.append(k)
                if self.broken(k) or k in of_noun:
                    break
                k += 1
            if run:
                out.append((run[-1], run[:-1]))
        return out

    def object(self, noun: str | None, motion: set[str]) -> int | None:
        """The word of the object's noun: of the noun phrases ending in a ``noun`` word or a word for the object ("a red
        one"), the one with the most values before it ("a small green triangle", not the verb of "Circle back to me";
        "a petite emerald one" after "I'm collecting triangles."), the first of equals; else the first ``noun`` word."""
        shapes = sorted(m.tokens[-1] for m in self.matches if m.attribute == noun and m.how not in _WEAK)
        valued = {i for m in self.matches if m.how != "lean" for i in m.tokens}
        phrases = [(head, sum(i in valued for i in before)) for head, before in self.noun_phrases(noun, motion)
                   if head in shapes or self.texts[head] in OBJECT_WORDS]
        if not phrases:
            return shapes[0] if shapes else None
        return max(phrases, key=lambda p: (p[1], p[0] in shapes, -p[0]))[0]

    # ------------------------------------------------------------------------------------------ as the prompt says it

    def words(self, indices) -> list[str]:
        """The prompt's own text of these words, word by word (a hyphenated word whole: "itsy-bitsy")."""
        out, run = [], []
        for i in sorted(indices):
            if run and (i != run[-1] + 1 or self.gap(run[-1]) not in ("-", "/")):
                out.append(self.prompt[self.tokens[run[0]].start : self.tokens[run[-1]].end])
                run = []
            run.append(i)
        if run:
            out.append(self.prompt[self.tokens[run[0]].start : self.tokens[run[-1]].end])
        return out

    def entries(self, indices: set[int]) -> list[str]:
        """The words reported, as the prompt spells them: one entry per phrase reported whole and the words next to it
        ("changes colour to" + "red" + "halfway through"), a function word with the next word of its phrase, else word
        by word ("dog", "car")."""
        in_unit = {i for unit in self.units for i in unit} | self.between | self.lacking  # "3 pixels per frame": one entry
        holes = {k for k in range(1, len(self.texts) - 1) if self.texts[k] in STOP_WORDS and k - 1 in indices and k + 1 in indices
                 and (k - 1 in in_unit or k + 1 in in_unit) and not self.broken(k - 1) and not self.broken(k)}
        groups: list[list[int]] = []
        for i in sorted(indices | holes):  # "changes colour [to] red": a function word between a phrase and a word reported
            k = groups[-1][-1] if groups else None
            if k == i - 1 and not self.broken(k) and (self.texts[k] in STOP_WORDS or self.texts[i] in STOP_WORDS or k in in_unit
                                                      or i in in_unit or self.gap(k) in ("-", "/")):
                groups[-1].append(i)
            else:
                groups.append([i])
        return [self.prompt[self.tokens[g[0]].start : self.tokens[g[-1]].end] for g in groups]


@functools.lru_cache(maxsize=8192)
def mostly_verb(word: str) -> bool:
    """Whether WordNet's corpus used a word more as a verb than as a noun or adjective, twice at least ("drop",
    "darts"; not "ball", nor "pyramid": once as a verb, never as a noun)."""
    net = wordnet()
    count = {pos: sum(s.count for s in net.synsets(word, pos)) for pos in ("v", "n", "a")}
    return count["v"] >= 2 and count["v"] > count["n"] + count["a"]


@functools.lru_cache(maxsize=8192)
def verb_form(word: str) -> bool:
    """Whether a word is an inflected verb ("spinning", "changes", "bounced"), as WordNet's morphology reads it."""
    return word.endswith(("ing", "es", "ed", "s")) and word not in MOTION_WORDS and bool(wordnet().lemmas(word, "v"))


def respelt(word: str) -> str | None:
    """The word one letter off ``word`` (a letter dropped, doubled, swapped or replaced) that WordNet or the colour
    names know, the commonest first: "saphire" -> sapphire, "minature" -> miniature."""
    if len(word) > MAX_RESPELT:
        return None
    net = wordnet()
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:k], word[k:]) for k in range(len(word) + 1)]
    edits = [a + b[1:] for a, b in splits if b] + [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1] \
        + [a + c + b[1:] for a, b in splits if b for c in letters] + [a + c + b for a, b in splits for c in letters]
    known = [e for e in dict.fromkeys(edits) if e != word and (rgb_of(e) or net.has_lemma(e))]
    if not known:
        return None
    return max(known, key=lambda e: (rgb_of(e) is not None, sum(s.count + 1 for s in net.synsets(e))))
