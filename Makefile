# nasctl build, set-up, tests and the main job.
#
#   make search  the main job: generate the leaves dataset (data/leaves) and run a
#                CPU-sized MetaQNN search on it (runs/leaves-cpu: report, plots,
#                exported winners); running it again resumes or re-reports the run
#   make search-nasnet
#                the CPU-sized NASNet cell search on the same data (runs/nasnet-cpu)
#   make compare both searches' best models measured side by side (runs/compare)
#   make test    set-up, go vet, go test ./..., then the race detector on the
#                concurrent packages and every fuzz target for 5,000 inputs
#                (TESTFLAGS="-run X -v" narrows go test ./... and skips the rest)
#   make setup   install the pinned ONNX Runtime library into .cache/onnxruntime
#                (from the npm registry, SHA-256 checked; fast when already done)
#   make setup-cuda
#                install a GPU build of ONNX Runtime with its CUDA provider into
#                .cache/onnxruntime-cuda (npm registry, SHA-256 checked; the
#                tests use it too, so "make test" runs it)
#   make build   go build -o bin/nasctl ./cmd/nasctl
#   make build-arm64
#                cross-compile nasctl for linux/arm64 (Debian's aarch64 gcc for
#                cgo) into bin/linux-arm64/, with the pinned arm64 ONNX Runtime
#                beside it: copy that folder to the robot (docs/arm64.md)
#   make test-arm64
#                build-arm64, then run that build under QEMU user emulation and
#                check arch inspect, predict, bench and a latency table against
#                the host build (not part of "make test": docs/arm64.md)
#   make bench-train
#                nasctl's training step and exported-model latency against
#                PyTorch's (Debian's python3-torch), interleaved rounds, on
#                reference networks of the CPU search (BENCH_ROUNDS=5)

# Go lives in /usr/local/go/bin on the project's machines; add it when a
# non-login shell (CI, make from an editor) does not have it on PATH.
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := /usr/local/go/bin:$(PATH)
endif

GO ?= go
TESTFLAGS ?=
RUN ?= leaves-cpu
DATA ?= data/leaves

# bench-train's reference networks are those of scripts/torch_compare.py
# (trials of runs/leaves-cpu); BENCH_FLAGS='--arch "C(8,3,1) - SM()"' times
# others, BENCH_FLAGS="--json out.json" keeps every measurement.
BENCH_ROUNDS ?= 5
BENCH_FLAGS ?=

.PHONY: setup setup-cuda setup-test test race fuzz build build-arm64 test-arm64 search search-nasnet compare bench-train

setup:
	@bash scripts/setup-onnxruntime.sh

setup-cuda:
	@bash scripts/setup-onnxruntime-cuda.sh

setup-test: setup setup-cuda
	@bash scripts/setup-test-deps.sh

# Go's default of 10 minutes per test binary is too short on a loaded 2-core
# machine (docs/testing.md, "Time limit").
TESTTIMEOUT ?= 30m

test: setup-test
	$(GO) vet ./...
	$(GO) test -timeout $(TESTTIMEOUT) ./... $(TESTFLAGS)
ifeq ($(TESTFLAGS),)
	@$(MAKE) --no-print-directory race fuzz
endif

# The packages that run goroutines, under the race detector. search's two
# NASNet resume tests are left out here (they run above, and take minutes
# under the detector without exercising more concurrency than the rest).
race:
	$(GO) test -race -count=1 ./cluster ./controller/agentbench ./dashboard ./dataset ./internal/progress
	$(GO) test -race -count=1 ./runtime -run 'Dropout|TestTrain'
	$(GO) test -race -count=1 ./search -skip 'TestNASNet(Trained)?ResumeEqualsUninterrupted|TestNASNetAgents'

# Every fuzz target beyond its seed corpus, FUZZTIME each. A count, not a
# duration: Go 1.26's fuzzing coordinator can fail a duration-limited run with
# "context deadline exceeded" on a loaded machine (docs/testing.md).
FUZZTIME ?= 5000x
fuzz:
	@for t in genotype:FuzzParse genotype:FuzzParseCellPair genotype:FuzzParseGenotype search:FuzzConfig cluster:FuzzTensors; do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		$(GO) test ./$${t%%:*} -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) >/tmp/nasctl-fuzz.log 2>&1 || { cat /tmp/nasctl-fuzz.log; exit 1; }; \
	done

build:
	$(GO) build -o bin/nasctl ./cmd/nasctl

# The arm64 build loads libonnxruntime at run time (dlopen), so cgo needs the
# cross compiler and C library only; the library goes where FindLibrary
# looks beside the executable (.cache/onnxruntime under its folder).
ARM64_DIR ?= bin/linux-arm64

build-arm64:
	@bash scripts/setup-cross-arm64.sh
	@bash scripts/setup-onnxruntime.sh arm64
	CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc $(GO) build -o $(ARM64_DIR)/nasctl ./cmd/nasctl
	@mkdir -p $(ARM64_DIR)/.cache/onnxruntime
	@cp .cache/onnxruntime-arm64/libonnxruntime.so.1 $(ARM64_DIR)/.cache/onnxruntime/libonnxruntime.so.1
	@echo "$(ARM64_DIR): nasctl for linux/arm64 and ONNX Runtime $$(sed -n 's/^ORT_VERSION=//p' scripts/setup-onnxruntime.sh); copy the folder to the robot"

test-arm64: setup build
	@bash scripts/setup-cross-arm64.sh test
	@$(MAKE) --no-print-directory build-arm64
	@bash scripts/test-arm64.sh

# A leaf is a leaf either way round, so the trials and the final phase train
# on images flipped at random (docs/search-quality.md, "Flipped training
# images"); the preset flips nothing, for data whose class depends on it.
# The final phase also shifts them by up to two pixels (the same document,
# "Shifted training images": measured on three datasets).
search: setup build
	@test -f $(DATA)/LEAF_0000.png || bin/nasctl dataset generate --out $(DATA) --count 4000 --seed 1
	@if [ -f runs/$(RUN)/config.yaml ]; then \
		bin/nasctl search metaqnn --resume runs/$(RUN); \
	else \
		bin/nasctl search metaqnn --preset cpu --augment flips --final-augment flips,shift:2 --data $(DATA) --name $(RUN); \
	fi

# The NASNet cell search of the CPU preset on the same data (runs/nasnet-cpu),
# and the side-by-side measurement of both searches' best models.
NASNET_RUN ?= nasnet-cpu

search-nasnet: setup build
	@test -f $(DATA)/LEAF_0000.png || bin/nasctl dataset generate --out $(DATA) --count 4000 --seed 1
	@if [ -f runs/$(NASNET_RUN)/config.yaml ]; then \
		bin/nasctl search nasnet --resume runs/$(NASNET_RUN); \
	else \
		bin/nasctl search nasnet --preset cpu --data $(DATA) --name $(NASNET_RUN); \
	fi

compare: setup build
	@test -f runs/$(RUN)/winners/best.onnx -a -f runs/$(NASNET_RUN)/winners/best.onnx || \
		{ echo "compare needs both searches: make search search-nasnet" >&2; exit 1; }
	bin/nasctl bench runs/$(RUN)/winners/best.onnx runs/$(NASNET_RUN)/winners/best.onnx \
		--data $(DATA) --threads 1 --out runs/compare

bench-train: setup build
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "bench-train needs PyTorch: sudo apt-get install python3-torch libopenblas0-pthread" >&2; exit 1; }
	/usr/bin/python3 scripts/torch_compare.py --nasctl bin/nasctl --input 32x32x1 --batch 128 --threads 2 \
		--rounds $(BENCH_ROUNDS) $(BENCH_FLAGS)
