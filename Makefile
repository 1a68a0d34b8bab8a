# dialogbot: `make` builds bin/dialogbot and bin/libcbridge.so.
# `make test` installs what is missing (Debian/Ubuntu, apt-get), builds, and runs every test.
# `make demo` fetches and exports ruDialoGPT-small (or uses MODEL_DIR) and talks to it,
# or serves it on Telegram when TELEGRAM_BOT_TOKEN is set.

SHELL := /bin/bash
GO ?= go
CXX ?= g++
# A Python that can import torch (Debian's python3-torch lives in /usr/bin/python3).
# (Asked from /: here, "import torch" would find the Go package torch/ as a namespace package.)
PYTHON ?= $(shell cd / && for p in python3 /usr/bin/python3; do $$p -c 'import torch; torch.zeros(1)' 2>/dev/null && { command -v $$p; break; }; done)

HF_REPO ?= tinkoff-ai/ruDialoGPT-small
HF_DIR ?= models/hf/ruDialoGPT-small
MODEL_DIR ?= models/ruDialoGPT-small
CONFIG ?= config.toml

BIN := bin
BRIDGE := $(BIN)/libcbridge.so
TORCH_MK := build/torch.mk

.PHONY: all build bridge deps test check test-go test-python demo demo-run model vet bench clean libtorch image image-smoke

all: build

build: $(BIN)/dialogbot $(BRIDGE)

# Go code loads the bridge with dlopen at run time, so the binary builds
# (and `go test ./...` runs) without libtorch; only the bridge links it.
$(BIN)/dialogbot: $(shell find . -name '*.go' -not -path './third_party/*') go.mod go.sum
	@mkdir -p $(BIN)
	$(GO) build -o $@ .

$(TORCH_MK): scripts/find-libtorch.sh
	@mkdir -p build
	@PYTHON=$(PYTHON) scripts/find-libtorch.sh > $@

-include $(TORCH_MK)

$(BRIDGE): cbridge/cbridge.cpp cbridge/cbridge.h $(TORCH_MK)
	@if [ "$(TORCH_KIND)" = "none" ] || [ -z "$(TORCH_KIND)" ]; then \
	  echo "libtorch not found. Install Debian's: sudo apt-get install libtorch-dev libopenblas0-openmp" >&2; \
	  echo "or unpack the official archive into third_party/libtorch (make libtorch), or pip install torch." >&2; \
	  rm -f $(TORCH_MK); exit 1; fi
	@echo "cbridge: using libtorch from $(TORCH_KIND)"
	@mkdir -p $(BIN)
	$(CXX) -O2 -shared -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) $(TORCH_DEFS) $< $(TORCH_INC) \
	  -L$(TORCH_LIBDIR) -Wl,--no-as-needed $(TORCH_LIBS) -Wl,--as-needed -ldl -Wl,-rpath,$(TORCH_LIBDIR) -o $@

bridge: $(BRIDGE)

# deps installs the system packages the project needs when one is missing.
deps:
	@scripts/install-deps.sh

# The official CUDA libtorch archive, for GPU machines with internet.
LIBTORCH_URL ?= https://download.pytorch.org/libtorch/cu126/libtorch-cxx11-abi-shared-with-deps-2.7.1%2Bcu126.zip
libtorch:
	@mkdir -p third_party
	curl -fL -o third_party/libtorch.zip '$(LIBTORCH_URL)'
	cd third_party && unzip -q -o libtorch.zip && rm libtorch.zip
	@echo "$(LIBTORCH_URL)" > third_party/libtorch/SOURCE
	rm -f $(TORCH_MK)

# Set-up first, then a fresh make that sees the installed libtorch.
test: deps
	$(MAKE) check

check: build vet test-go test-python

test-go: build
	DIALOGBOT_REQUIRE_TORCH=1 DIALOGBOT_CBRIDGE=$(CURDIR)/$(BRIDGE) $(GO) test -count=1 ./...

test-python:
	$(PYTHON) -m pytest -q model/python

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

# fetch + export ruDialoGPT-small (needs internet once); skipped when MODEL_DIR exists.
model: $(MODEL_DIR)/model.pt

$(MODEL_DIR)/model.pt:
	@if [ -f $(HF_DIR)/config.json ] && { [ -f $(HF_DIR)/model.safetensors ] || [ -f $(HF_DIR)/pytorch_model.bin ]; }; \
	then echo "using the local Hugging Face model in $(HF_DIR)"; \
	else $(PYTHON) model/python/fetch.py --repo $(HF_REPO) --out $(HF_DIR); fi
	$(PYTHON) model/python/export.py --hf $(HF_DIR) --out $(MODEL_DIR)

# demo: the main job. Serves on Telegram when a token is set, else chats in the terminal.
demo: deps
	$(MAKE) demo-run

demo-run: build model
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ] || grep -qsE '^\s*token\s*=\s*"[^"]' $(CONFIG); then \
	  [ -f $(CONFIG) ] || sed 's#^path = ""#path = "$(MODEL_DIR)"#' config.toml.example > $(CONFIG); \
	  $(BIN)/dialogbot serve --config $(CONFIG); \
	else $(BIN)/dialogbot chat --model $(MODEL_DIR); fi

bench: build
	$(BIN)/dialogbot bench --model $(MODEL_DIR)

# Container images (docs/deploy.md): the CPU image, built from a local Debian base
# when no registry is reachable, and its smoke test against a fake Bot API.
image:
	deploy/build-image.sh cpu

image-smoke: image
	deploy/smoke.sh dialogbot:cpu

clean:
	rm -rf bin build
