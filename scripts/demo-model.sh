#!/usr/bin/env bash
# Prints the exported model folder that `make demo` runs, exporting it first when needed.
#   MODEL_DIR (given)  an exported model (dialogbot.json); never downloads, never exports
#   HF_DIR (given)     a local Hugging Face GPT-2 folder, exported into models/<its name>; exported again
#                      when that folder was exported from somewhere else
#   neither            ruDialoGPT-small: HF_REPO downloaded once into models/hf/, exported into models/
# MODEL_DIR_GIVEN / HF_DIR_GIVEN say which the user set (the Makefile passes them). Logs go to stderr;
# stdout is the folder alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
hf_repo=${HF_REPO:-tinkoff-ai/ruDialoGPT-small}

fail() { echo "make demo: $*" >&2; exit 1; }
is_hf() { [ -f "$1/config.json" ] && { [ -f "$1/model.safetensors" ] || [ -f "$1/pytorch_model.bin" ]; }; }
# source_of prints the HF folder an export was made from (its dialogbot.json "source").
source_of() { sed -n 's/.*"source": *"\([^"]*\)".*/\1/p' "$1/dialogbot.json" 2>/dev/null | head -1; }

export_to() { # HF_DIR OUT
  local hf out tmp
  hf=$(cd "$1" && pwd) out=$2
  if [ -f "$out/dialogbot.json" ] && [ "$(source_of "$out")" = "$hf" ]; then
    echo "using $out, exported from $hf" >&2
    return
  fi
  echo "exporting $hf into $out" >&2
  mkdir -p "$(dirname "$out")"
  tmp=$(mktemp -d "$out.tmp.XXXX")
  "$py" "$root/model/python/export.py" --hf "$hf" --out "$tmp" >&2 || { rm -rf "$tmp"; fail "export of $hf failed"; }
  rm -rf "$out"
  mv "$tmp" "$out"
}

if [ "${MODEL_DIR_GIVEN:-0}" = 1 ]; then
  [ -f "$MODEL_DIR/dialogbot.json" ] ||
    fail "MODEL_DIR=$MODEL_DIR holds no exported model (no dialogbot.json). Export one with: python3 model/python/export.py --hf HF_DIR --out $MODEL_DIR, or run make demo HF_DIR=HF_DIR"
  echo "$MODEL_DIR"
  exit 0
fi
if [ "${HF_DIR_GIVEN:-0}" = 1 ]; then
  [ -d "$HF_DIR" ] || fail "HF_DIR=$HF_DIR does not exist"
  is_hf "$HF_DIR" || fail "HF_DIR=$HF_DIR is not a Hugging Face model folder (it needs config.json and model.safetensors or pytorch_model.bin)"
  out="$root/models/$(basename "$(cd "$HF_DIR" && pwd)")"
  export_to "$HF_DIR" "$out"
  echo "$out"
  exit 0
fi
hf="$root/models/hf/$(basename "$hf_repo")"
if ! is_hf "$hf"; then
  echo "downloading $hf_repo from the Hugging Face hub into $hf" >&2
  "$py" "$root/model/python/fetch.py" --repo "$hf_repo" --out "$hf" >&2 || fail "download of $hf_repo failed"
fi
out="$root/models/$(basename "$hf_repo")"
export_to "$hf" "$out"
echo "$out"
