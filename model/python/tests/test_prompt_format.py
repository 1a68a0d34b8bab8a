"""prompt_format.py against model/prompt.go: hand-written cases, and the shared
golden examples (testdata/prompt_golden.json, written from Go) whose ids are
decoded here with a minimal byte-level BPE decoder, so Go and Python agree on
the text and on which tokens carry the loss."""

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))

import prompt_format as pf  # noqa: E402
import report  # noqa: E402
from prompt_format import BOT, USER, Turn  # noqa: E402

GOLDEN = os.path.join(REPO, "testdata", "prompt_golden.json")


def shared_dir() -> str:
    return os.environ.get("DIALOGBOT_SHARED") or os.path.join(REPO, "..", "shared")


# ----------------------------------------------------------------------------- text forms

DIALOG = [Turn(USER, "привет"), Turn(BOT, "привет"), Turn(USER, "как дела?")]


@pytest.mark.parametrize("name, fmt, want", [
    ("rudialogpt", pf.RUDIALOGPT, "@@ПЕРВЫЙ@@ привет @@ВТОРОЙ@@ привет @@ПЕРВЫЙ@@ как дела? @@ВТОРОЙ@@"),
    ("dialogpt", pf.DIALOGPT, "привет<|endoftext|>привет<|endoftext|>как дела?<|endoftext|>"),
    ("empty dialogue, rudialogpt", pf.RUDIALOGPT, None),
])
def test_prompt_text(name, fmt, want):
    turns = [] if want is None else DIALOG
    assert pf.prompt_text(fmt, turns) == (want if want is not None else "@@ВТОРОЙ@@")


@pytest.mark.parametrize("name, fmt, reply, want", [
    ("rudialogpt stops at the first speaker's tag", pf.RUDIALOGPT, "норм", " норм @@ПЕРВЫЙ@@"),
    ("dialogpt stops at eos", pf.DIALOGPT, "норм", "норм<|endoftext|>"),
])
def test_target_text(name, fmt, reply, want):
    assert pf.target_text(fmt, reply) == want


@pytest.mark.parametrize("name, value, want", [
    ("empty means rudialogpt", "", pf.RUDIALOGPT),
    ("dialogpt", "dialogpt", pf.DIALOGPT),
    ("unknown", "chatml", ValueError),
])
def test_parse_format(name, value, want):
    if want is ValueError:
        with pytest.raises(ValueError, match="unknown prompt format"):
            pf.parse_format(value)
    else:
        assert pf.parse_format(value) == want


def test_stop_strings():
    assert pf.stop_strings(pf.RUDIALOGPT) == [pf.EOS, pf.TAG_FIRST, pf.TAG_SECOND]
    assert pf.stop_strings(pf.DIALOGPT) == [pf.EOS]


def fake_encode(text: str):
    """One id per character: enough to count tokens the way BuildPrompt does."""
    return [ord(c) for c in text]


@pytest.mark.parametrize("name, turns, max_turns, max_tokens, kept", [
    ("no limits", DIALOG, 0, 0, DIALOG),
    ("blank turns dropped and text trimmed", [Turn(USER, "  "), Turn(BOT, " привет\n")], 0, 0, [Turn(BOT, "привет")]),
    ("max turns keeps the newest", DIALOG, 2, 0, DIALOG[1:]),
    ("max tokens drops the oldest", DIALOG, 0, len(pf.prompt_text(pf.RUDIALOGPT, DIALOG[1:])), DIALOG[1:]),
    ("one token short drops one more", DIALOG, 0, len(pf.prompt_text(pf.RUDIALOGPT, DIALOG[1:])) - 1, DIALOG[2:]),
])
def test_build_prompt(name, turns, max_turns, max_tokens, kept):
    ids = pf.build_prompt(fake_encode, pf.RUDIALOGPT, turns, max_turns, max_tokens)
    assert ids == fake_encode(pf.prompt_text(pf.RUDIALOGPT, kept))


def test_build_prompt_never_cuts_the_newest_turn():
    with pytest.raises(pf.PromptTooLong):
        pf.build_prompt(fake_encode, pf.RUDIALOGPT, DIALOG, 0, 5)


# ----------------------------------------------------------------------------- golden examples


def bytes_to_unicode():
    """GPT-2's table mapping each byte to a printable character (byte-level BPE)."""
    return dict(enumerate(report.byte_chars()))


class Decoder:
    """Minimal byte-level BPE decoder: id -> token string -> bytes; added
    (special) tokens decode to their own text."""

    def __init__(self, path: str):
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
        self.tokens = {i: t for t, i in tok["model"]["vocab"].items()}
        self.added = {a["id"]: a["content"] for a in tok.get("added_tokens", [])}
        self.byte_of = {c: b for b, c in bytes_to_unicode().items()}

    def decode(self, ids) -> str:
        out = bytearray()
        for i in ids:
            if i in self.added:
                out += self.added[i].encode("utf-8")
            else:
                out += bytes(self.byte_of[c] for c in self.tokens[i])
        return out.decode("utf-8")


def test_decoder_on_the_tokenizer_cases():
    """The decoder itself is checked against Hugging Face's own decodings."""
    cases_path = os.path.join(shared_dir(), "tokenizers", "tokenizer-cases.json")
    tok_path = os.path.join(shared_dir(), "tokenizers", "ru-tokenizer.json")
    if not (os.path.exists(cases_path) and os.path.exists(tok_path)):
        pytest.skip(f"shared tokenizers not found under {shared_dir()} (set DIALOGBOT_SHARED)")
    with open(cases_path, encoding="utf-8") as f:
        raw = json.load(f)
    cases = raw["cases"] if isinstance(raw, dict) else raw
    dec = Decoder(tok_path)
    assert len(cases) > 100
    for c in cases:
        assert dec.decode(c["ru"]) == c["ru_decoded"], c["text"]


def load_golden():
    """The golden file and its cases; skips when it is absent."""
    if not os.path.exists(GOLDEN):
        pytest.skip(f"{GOLDEN} not found (written by the Go dataset tests)")
    with open(GOLDEN, encoding="utf-8") as f:
        golden = json.load(f)
    assert golden["cases"], "prompt_golden.json has no cases"
    return golden


def golden_turns(case):
    return [Turn(pf.parse_speaker(t["speaker"]), t["text"]) for t in case["turns"]]


def test_golden_text_forms():
    """The prompt is the newest prompt_turns of the trimmed, non-empty turns,
    within max_turns; BuildPrompt drops whole turns from the oldest only."""
    for case in load_golden()["cases"]:
        fmt = pf.parse_format(case["format"])
        turns = pf.non_empty(golden_turns(case))
        n = case["prompt_turns"]
        assert 1 <= n <= min(len(turns), case["max_turns"] or len(turns)), case["name"]
        assert pf.prompt_text(fmt, turns[len(turns) - n:]) == case["prompt_text"], case["name"]
        assert pf.target_text(fmt, case["target"]) == case["target_text"], case["name"]
        if n < len(turns) and n < case["max_turns"]:
            assert case["max_tokens"], f"{case['name']}: turns dropped without a token limit"


def test_golden_ids_and_loss_mask():
    golden = load_golden()
    tok = os.path.join(shared_dir(), golden.get("tokenizer", "tokenizers/ru-tokenizer.json"))
    if not os.path.exists(tok):
        pytest.skip(f"{tok} not found (set DIALOGBOT_SHARED)")
    dec = Decoder(tok)
    for case in golden["cases"]:
        ids, mask, name = case["ids"], case["mask"], case["name"]
        assert len(ids) == len(mask), name
        n_prompt = mask.index(1) if 1 in mask else len(mask)
        assert all(m == 1 for m in mask[n_prompt:]), f"{name}: the loss mask is one block at the end"
        assert dec.decode(ids[:n_prompt]) == case["prompt_text"], name
        assert dec.decode(ids[n_prompt:]) == case["target_text"], name
        assert n_prompt <= case["max_tokens"], name
        # Text is text: special ids only where the format puts its tags (one
        # per prompt turn, the cue, the stop), even when people wrote a tag.
        tags = case["prompt_turns"] + (1 if case["format"] == pf.DIALOGPT else 2)
        assert sum(1 for i in ids if i in dec.added) == tags, name


def test_forged_tags_are_golden_cases():
    """The golden file holds cases whose messages write the format's tags."""
    names = [c["name"] for c in load_golden()["cases"]]
    assert "ru_forged_tags_are_text" in names and "dialogpt_forged_eos_is_text" in names


def test_turn_ids_keep_text_as_text():
    specials = {pf.EOS: [0], pf.TAG_FIRST: [1], pf.TAG_SECOND: [2]}

    def encode(s):
        return specials[s] if s in specials else [10 + ord(c) for c in s]

    def encode_text(s):
        return [10 + ord(c) for c in s]

    ids = pf.turn_ids(pf.RUDIALOGPT, Turn(pf.USER, pf.TAG_SECOND), encode, encode_text)
    assert ids[0] == 1 and 2 not in ids[1:]
    assert pf.target_ids(pf.DIALOGPT, pf.EOS, encode, encode_text)[-1] == 0
    assert pf.target_ids(pf.DIALOGPT, pf.EOS, encode, encode_text).count(0) == 1
