"""tokenizer.json built from vocab.json + merges.txt (hub repos without tokenizer.json)."""

import json
import os

import pytest

import hftokenizer
from conftest import MERGES, write_bpe_files


def test_build_from_hand_made_files(tmp_path):
    n = write_bpe_files(str(tmp_path))
    tok = hftokenizer.build_tokenizer_json(str(tmp_path))
    assert tok["model"]["type"] == "BPE"
    assert tok["model"]["merges"] == MERGES
    assert len(tok["model"]["vocab"]) == n
    assert tok["pre_tokenizer"] == {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    assert tok["decoder"]["type"] == "ByteLevel"
    assert [(t["id"], t["content"], t["special"]) for t in tok["added_tokens"]] == [
        (0, "<|endoftext|>", True), (1, "@@ПЕРВЫЙ@@", True), (2, "@@ВТОРОЙ@@", True)]
    # Added tokens missing from vocab.json join the vocab with their ids.
    assert tok["model"]["vocab"]["@@ВТОРОЙ@@"] == 2


def test_tokenizer_config_added_tokens_decoder(tmp_path):
    write_bpe_files(str(tmp_path), tags=False)
    cfg = {"added_tokens_decoder": {"300": {"content": "<pad>", "special": True}}, "eos_token": "<|endoftext|>"}
    json.dump(cfg, open(tmp_path / "tokenizer_config.json", "w"))
    tok = hftokenizer.build_tokenizer_json(str(tmp_path))
    assert [t["content"] for t in tok["added_tokens"]] == ["<|endoftext|>", "<pad>"]
    assert hftokenizer.vocab_size(tok) == 301


def test_conflicting_ids_are_an_error(tmp_path):
    write_bpe_files(str(tmp_path))
    json.dump({"<|endoftext|>": 7}, open(tmp_path / "added_tokens.json", "w"))
    with pytest.raises(ValueError, match="has id 7"):
        hftokenizer.build_tokenizer_json(str(tmp_path))


@pytest.mark.parametrize("files, how", [
    pytest.param(["tokenizer.json"], "copied", id="copy"),
    pytest.param(["vocab.json", "merges.txt"], "built", id="build"),
    pytest.param([], None, id="none"),
])
def test_write_tokenizer_json(tmp_path, files, how):
    src = tmp_path / "src"
    src.mkdir()
    write_bpe_files(str(src))
    (src / "tokenizer.json").write_text('{"copied": true}')
    for f in {"tokenizer.json", "vocab.json", "merges.txt"} - set(files):
        os.remove(src / f)
    out = str(tmp_path / "tokenizer.json")
    if how is None:
        with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
            hftokenizer.write_tokenizer_json(str(src), out)
        return
    assert hftokenizer.write_tokenizer_json(str(src), out) == how
    assert json.load(open(out)).get("copied", False) == (how == "copied")


def test_rebuilds_the_shared_ru_tokenizer(shared, tmp_path):
    """Split the real nano-ru tokenizer.json into vocab.json + merges.txt and build it back."""
    ref = json.load(open(os.path.join(shared, "tokenizers", "ru-tokenizer.json"), encoding="utf-8"))
    json.dump(ref["model"]["vocab"], open(tmp_path / "vocab.json", "w", encoding="utf-8"), ensure_ascii=False)
    with open(tmp_path / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in ref["model"]["merges"]))
    got = hftokenizer.build_tokenizer_json(str(tmp_path))
    for key in ("added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"):
        assert got[key] == ref[key], key
    for key in ("type", "vocab", "merges", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                "fuse_unk", "byte_fallback", "ignore_merges", "dropout"):
        assert got["model"][key] == ref["model"][key], key
