# nasctl build, set-up and tests.
#
#   make setup   install the pinned ONNX Runtime library into .cache/onnxruntime
#                (from the npm registry, SHA-256 checked; fast when already done)
#   make test    setup, then go test ./...      (TESTFLAGS="-run X -v" to narrow)
#   make build   go build -o bin/nasctl ./cmd/nasctl

# Go lives in /usr/local/go/bin on the project's machines; add it when a
# non-login shell (CI, make from an editor) does not have it on PATH.
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := /usr/local/go/bin:$(PATH)
endif

GO ?= go
TESTFLAGS ?=

.PHONY: setup test build

setup:
	@bash scripts/setup-onnxruntime.sh

test: setup
	$(GO) test ./... $(TESTFLAGS)

build:
	$(GO) build -o bin/nasctl ./cmd/nasctl
