# dialogbot: `make` builds bin/dialogbot and bin/libcbridge.so.
# `make test` installs what is missing (Debian/Ubuntu, apt-get), builds, and runs every test.
# `make demo` talks to a model in the terminal, or serves it on Telegram when TELEGRAM_BOT_TOKEN
# (or a token in config.toml) is set: MODEL_DIR=an exported model, HF_DIR=a local Hugging Face
# model (exported first), or neither (ruDialoGPT-small, downloaded once).

SHELL := /bin/bash
GO ?= go
# A Python that can import torch (Debian's python3-torch lives in /usr/bin/python3). Asked from /:
# in the repository "import torch" would find the Go package torch/ as a namespace package.
# Evaluated when used (=, not :=), so that it sees a torch that `make test` has just installed.
PYTHON ?= $(shell cd / && for p in python3 /usr/bin/python3; do $$p -c 'import torch' 2>/dev/null && { command -v $$p; break; }; done)

HF_REPO ?= tinkoff-ai/ruDialoGPT-small
HF_DIR ?= models/hf/ruDialoGPT-small
MODEL_DIR ?= models/ruDialoGPT-small
CONFIG ?= config.toml
# Where the user named a model, make demo uses exactly that one (scripts/demo-model.sh).
given = $(if $(filter command line environment,$(origin $(1))),1,0)

BIN := bin
BRIDGE := $(BIN)/libcbridge.so
GO_TEST_FLAGS ?= -race

.PHONY: all build bridge deps test check test-go test-python demo demo-run vet bench clean libtorch image image-smoke

all: build

build: $(BIN)/dialogbot $(BRIDGE)

# Go code loads the bridge with dlopen at run time, so the binary builds
# (and `go test ./...` runs) without libtorch; only the bridge links it.
$(BIN)/dialogbot: $(shell find . -name '*.go' -not -path './third_party/*') go.mod go.sum
	@mkdir -p $(BIN)
	$(GO) build -o $@ .

# libtorch is looked up when the bridge is built, not when make starts:
# on a fresh machine `make test` installs it first.
$(BRIDGE): $(wildcard cbridge/*.cpp) cbridge/cbridge.h scripts/build-bridge.sh scripts/find-libtorch.sh
	PYTHON=$(PYTHON) scripts/build-bridge.sh $@

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
	rm -f $(BRIDGE)

test: deps
	$(MAKE) check

check: build vet test-go test-python

# Under make, a test that needs the bridge or PostgreSQL fails instead of skipping; those
# that need ../shared skip, and scripts/go-test.sh counts them at the end.
test-go: build
	DIALOGBOT_REQUIRE_TORCH=1 DIALOGBOT_REQUIRE_POSTGRES=1 DIALOGBOT_CBRIDGE=$(CURDIR)/$(BRIDGE) scripts/go-test.sh $(GO_TEST_FLAGS) ./...

test-python:
	$(PYTHON) -m pytest -q model/python

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

# demo: the main job. Serves on Telegram when a token is set, else chats in the terminal.
demo: deps
	@$(MAKE) -s demo-run

demo-run: build
	@model=$$(MODEL_DIR='$(MODEL_DIR)' MODEL_DIR_GIVEN=$(call given,MODEL_DIR) HF_DIR='$(HF_DIR)' \
	  HF_DIR_GIVEN=$(call given,HF_DIR) HF_REPO='$(HF_REPO)' PYTHON='$(PYTHON)' scripts/demo-model.sh) || exit 1; \
	if [ -n "$$TELEGRAM_BOT_TOKEN" ] || grep -qsE '^\s*token\s*=\s*"[^"]' $(CONFIG); then \
	  [ -f $(CONFIG) ] || { cp config.toml.example $(CONFIG) && chmod 600 $(CONFIG); }; \
	  exec $(BIN)/dialogbot serve --config $(CONFIG) --model "$$model"; \
	else exec $(BIN)/dialogbot chat --model "$$model"; fi

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
