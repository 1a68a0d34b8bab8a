"""How often the int8 copy of nano-ru answers exactly as its float32 copy: 20 sessions, greedily.

Each session is one Russian dialogue of the anekdot corpus (../shared/data/corpus): its turns but the
last are the history, alternating user and bot, and both copies greedily write the bot's next reply
(at most 24 tokens, up to a stop token) in nano-ru's prompt format. The int8 copy computes as the
bridge does, path for path (model/python/int8.py), so this measures what `model.dtype = "auto"` gives.
Prompts are tokenized by the Go tokenizer (`dialogbot tokenize`), which is the one the bot uses.

    /usr/bin/python3 scripts/int8-agreement.py [--sessions 20] [--bin bin/dialogbot] [--shared ../shared]
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "model", "python"))
import export  # noqa: E402
import gpt2  # noqa: E402
import prompt_format as pf  # noqa: E402

STOP_IDS = (0, 1, 2)  # nano-ru: <|endoftext|>, @@ПЕРВЫЙ@@, @@ВТОРОЙ@@ end a reply


def dialogues(corpus: str, n: int, min_turns: int = 3):
    """The first n dialogues with at least min_turns turns ("- " lines, blank-line separated)."""
    with tarfile.open(corpus) as tar:
        member = next(m for m in tar.getmembers() if m.isfile())
        text = tar.extractfile(member).read().decode("utf-8")
    out = []
    for block in text.split("\n\n"):
        turns = [ln[2:].strip() for ln in block.splitlines() if ln.startswith("- ") and ln[2:].strip()]
        if len(turns) >= min_turns:
            out.append(turns)
            if len(out) == n:
                break
    return out


def tokenize(binary: str, tokenizer: str, texts):
    lines = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    res = subprocess.run([binary, "tokenize", "--tokenizer", tokenizer], input=lines, capture_output=True,
                         text=True, check=True)
    return [json.loads(ln) for ln in res.stdout.splitlines() if ln.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--bin", default=os.path.join(ROOT, "bin", "dialogbot"))
    p.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    a = p.parse_args()
    hf = os.path.join(a.shared, "models", "nano-ru")
    sessions = dialogues(os.path.join(a.shared, "data", "corpus", "anekdot-dialogues-ru.tar.xz"), a.sessions)
    prompts = []
    for turns in sessions:
        history = turns[:-1]
        # The bot speaks last: the history alternates, ending with the user.
        speakers = [pf.USER if (len(history) - i) % 2 == 1 else pf.BOT for i in range(len(history))]
        prompts.append(pf.prompt_text(pf.RUDIALOGPT, [pf.Turn(s, t) for s, t in zip(speakers, history)]))
    ids = tokenize(a.bin, os.path.join(hf, "tokenizer.json"), prompts)
    fp32 = gpt2.load_hf(hf).eval()
    int8 = export.quantize_int8(gpt2.load_hf(hf)).eval()
    same_top1 = same_reply = 0
    with torch.no_grad():
        for prompt in ids:
            a_top = fp32(torch.tensor([prompt]))[0, -1].argmax().item()
            b_top = int8(torch.tensor([prompt]))[0, -1].argmax().item()
            same_top1 += a_top == b_top
            ra = gpt2.greedy(fp32, prompt, 24, stop_ids=STOP_IDS)
            rb = gpt2.greedy(int8, prompt, 24, stop_ids=STOP_IDS)
            same_reply += ra == rb
    n = len(ids)
    print(f"nano-ru int8 vs float32, {n} sessions: first token equal {same_top1}/{n}, greedy reply equal {same_reply}/{n}")


if __name__ == "__main__":
    main()
