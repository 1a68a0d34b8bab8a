"""The dialogue prompt format, Python twin of model/dialog/prompt.go.

model/dialog/prompt.go is the one definition; this module repeats its text forms so
Python tools (previews, evaluation scripts) build the same strings that
serving and `dialogbot dataset` build. tests/test_prompt_format.py checks both
against the shared golden examples in testdata/prompt_golden.json, so a change
on one side that is not made on the other fails a test.
"""

from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence

RUDIALOGPT = "rudialogpt"  # "@@ПЕРВЫЙ@@ привет @@ВТОРОЙ@@ привет @@ПЕРВЫЙ@@ как дела? @@ВТОРОЙ@@"
DIALOGPT = "dialogpt"  # "привет<|endoftext|>привет<|endoftext|>как дела?<|endoftext|>"
FORMATS = (RUDIALOGPT, DIALOGPT)

TAG_FIRST = "@@ПЕРВЫЙ@@"
TAG_SECOND = "@@ВТОРОЙ@@"
EOS = "<|endoftext|>"

# Speakers: the bot is always the second speaker; everyone else is the first.
USER = "user"
BOT = "bot"


class PromptTooLong(ValueError):
    """The newest turn and the cue alone do not fit in max_tokens."""


class Turn(NamedTuple):
    speaker: str  # USER or BOT
    text: str


def parse_format(name: str) -> str:
    """Checks a format name; the empty name means ruDialoGPT, as in Go."""
    if name == "":
        return RUDIALOGPT
    if name not in FORMATS:
        raise ValueError(f"unknown prompt format {name!r} (want {RUDIALOGPT!r} or {DIALOGPT!r})")
    return name


def parse_speaker(s) -> str:
    """Accepts "user"/"bot" (golden files) or 0/1 (Go's Speaker values)."""
    if s in (USER, 0):
        return USER
    if s in (BOT, 1):
        return BOT
    raise ValueError(f"unknown speaker {s!r} (want {USER!r} or {BOT!r})")


def stop_strings(fmt: str) -> List[str]:
    """The special tokens that end a generated reply."""
    if fmt == DIALOGPT:
        return [EOS]
    return [EOS, TAG_FIRST, TAG_SECOND]


def _tag(speaker: str) -> str:
    return TAG_SECOND if parse_speaker(speaker) == BOT else TAG_FIRST


def turn_text(fmt: str, turn: Turn) -> str:
    """One turn inside a prompt; the trailing space separates it from the next tag."""
    if fmt == DIALOGPT:
        return turn.text + EOS
    return _tag(turn.speaker) + " " + turn.text + " "


def turn_ids(fmt: str, turn: Turn, encode: Callable[[str], Sequence[int]],
             encode_text: Callable[[str], Sequence[int]]) -> List[int]:
    """Ids of turn_text, as Go's Format.TurnIDs: the format's tags through
    encode (which knows the special tokens), what people wrote through
    encode_text (which does not), so a message cannot forge a turn."""
    if fmt == DIALOGPT:
        return list(encode_text(turn.text)) + list(encode(EOS))
    return list(encode(_tag(turn.speaker))) + list(encode_text(" " + turn.text + " "))


def target_ids(fmt: str, reply: str, encode: Callable[[str], Sequence[int]],
               encode_text: Callable[[str], Sequence[int]]) -> List[int]:
    """Ids of target_text: the reply as plain text, then the stop tag."""
    if fmt == DIALOGPT:
        return list(encode_text(reply)) + list(encode(EOS))
    return list(encode_text(" " + reply + " ")) + list(encode(TAG_FIRST))


def cue(fmt: str) -> str:
    """What a prompt ends with: the start of the bot's turn."""
    return "" if fmt == DIALOGPT else TAG_SECOND


def target_text(fmt: str, reply: str) -> str:
    """What the model learns to generate after the cue: the reply and its stop tag."""
    if fmt == DIALOGPT:
        return reply + EOS
    return " " + reply + " " + TAG_FIRST


def prompt_text(fmt: str, turns: Iterable[Turn]) -> str:
    """The whole prompt as a string (no trimming, no limits: as Go's PromptText)."""
    return "".join(turn_text(fmt, t) for t in turns) + cue(fmt)


def non_empty(turns: Iterable[Turn]) -> List[Turn]:
    """Trims each turn and drops the empty ones, as BuildPrompt does first."""
    out = []
    for t in turns:
        text = t.text.strip()
        if text:
            out.append(Turn(parse_speaker(t.speaker), text))
    return out


def build_prompt(encode: Callable[[str], Sequence[int]], fmt: str, turns: Iterable[Turn],
                 max_turns: int = 0, max_tokens: int = 0,
                 encode_text: Optional[Callable[[str], Sequence[int]]] = None) -> List[int]:
    """Prompt ids as Go's BuildPrompt makes them: oldest turns dropped until the
    prompt fits; the newest turn and the cue are never cut (PromptTooLong).
    encode knows the special tokens; encode_text (default: encode) must not,
    so that text written by people stays text (see turn_ids)."""
    encode_text = encode_text or encode
    kept = non_empty(turns)
    if max_turns > 0 and len(kept) > max_turns:
        kept = kept[len(kept) - max_turns:]
    cue_ids = list(encode(cue(fmt)))
    pieces = [turn_ids(fmt, t, encode, encode_text) for t in kept]
    total = len(cue_ids) + sum(len(p) for p in pieces)
    first = 0
    while max_tokens > 0 and total > max_tokens and first < len(pieces) - 1:
        total -= len(pieces[first])
        first += 1
    if max_tokens > 0 and total > max_tokens:
        raise PromptTooLong(f"message too long for the model's context: {total} tokens, limit {max_tokens}")
    return [i for p in pieces[first:] for i in p] + cue_ids
