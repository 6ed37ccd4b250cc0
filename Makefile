# Tendon: `make run` and `make test` each do their own set-up on a fresh machine.
SHELL := /bin/bash
APT_PACKAGES := libopenblas-dev libserialport-dev libcap-dev libhdf5-dev libturbojpeg0-dev libpng-dev pkg-config rt-tests
PY_HW_REQUIREMENTS := Tools/reference/requirements-hardware.txt
SWIFT_FLAGS ?=
RUN_SECONDS ?= 10
RUN_DIR := .build/run

.PHONY: setup setup-python build release test run bench bench-act bench-act-library fixtures reference-env clean

# Idempotent: installs only the Debian packages that are missing.
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	else echo "setup: system packages present"; fi
	@$(MAKE) --no-print-directory setup-python

# The ROBOTIS dynamixel-sdk is only used by the interoperability test (skipped without it) and by
# Tools/reference scripts that regenerate fixtures; the build never needs Python.
setup-python:
	@if command -v python3 >/dev/null && ! python3 -c 'import dynamixel_sdk' 2>/dev/null; then \
	  python3 -m pip install -q --disable-pip-version-check -r $(PY_HW_REQUIREMENTS) 2>/dev/null \
	    || echo "setup: dynamixel-sdk not installed; the SDK interoperability test will be skipped"; \
	fi

build: setup
	swift build $(SWIFT_FLAGS)

release: setup
	swift build -c release $(SWIFT_FLAGS)

# Swift Testing only; the runner's summary is the last line CI reads.
test: setup
	swift build --build-tests $(SWIFT_FLAGS)
	swift test --skip-build --disable-xctest $(SWIFT_FLAGS)

# The main job on the built-in simulated robot: simulator on pseudo-terminals + real-time loop.
run: release
	@mkdir -p $(RUN_DIR)
	.build/release/tendon run --robot Configs/robots/aloha.yaml --sim --policy sine \
	  --duration $(RUN_SECONDS) --report $(RUN_DIR)/report.json
	@echo "report: $(RUN_DIR)/report.json"

# Benchmarks, never part of the tests. The forward benchmark times PyTorch in the same run, from the
# pinned reference environment.
bench: release reference-env
	.build/release/tendon bench loop --robot Configs/robots/aloha.yaml
	.build/release/tendon bench bus --robot Configs/robots/aloha.yaml
	.build/release/tendon bench gemm
	.build/release/tendon bench forward --threads 1 --python $(REFERENCE_VENV)/bin/python
	.build/release/tendon bench forward --threads 2 --python $(REFERENCE_VENV)/bin/python
	$(MAKE) bench-act
	$(MAKE) bench-act-library

# Observation → chunk on the reference config (backbone 512 × 8, vision depth 4, one 224×224 image, expert
# 512 × 6, K 32, H 50, 10 steps): f32 folder, Q8_0 and Q4_K GGUFs, rounded to nearest and by GPTQ (calibrated
# on 8 other observations the build step writes), Q5_K and the Q4_K mix with a Q5_K backbone by GPTQ, each
# next to PyTorch fp32 and ONNX Runtime.
BENCH_ACT_DIR ?= /tmp/tendon-bench-act
REFERENCE_PY ?= $(firstword $(wildcard /opt/tendon-ref/bin/python) $(REFERENCE_VENV)/bin/python)
bench-act: release
	$(REFERENCE_PY) Tools/reference/qwen_vla_bench.py build --out $(BENCH_ACT_DIR)/hf
	.build/release/tendon-train convert --hf $(BENCH_ACT_DIR)/hf --out $(BENCH_ACT_DIR)/q8_0.gguf --quant q8_0
	.build/release/tendon-train convert --hf $(BENCH_ACT_DIR)/hf --out $(BENCH_ACT_DIR)/q4_k.gguf --quant q4_k
	for q in q8_0 q4_k q5_k; do .build/release/tendon-train convert --hf $(BENCH_ACT_DIR)/hf --out $(BENCH_ACT_DIR)/$$q-gptq.gguf \
	  --quant $$q --calibration $(BENCH_ACT_DIR)/hf/calibration/calibration.jsonl || exit 1; done
	.build/release/tendon-train convert --hf $(BENCH_ACT_DIR)/hf --out $(BENCH_ACT_DIR)/q4_k-q5bb-gptq.gguf --quant q4_k \
	  --tensor-type 'language_model\.layers\.=q5_k' --calibration $(BENCH_ACT_DIR)/hf/calibration/calibration.jsonl
	for m in hf q8_0.gguf q8_0-gptq.gguf q4_k.gguf q4_k-gptq.gguf q5_k-gptq.gguf q4_k-q5bb-gptq.gguf; do \
	  .build/release/tendon bench act --model $(BENCH_ACT_DIR)/$$m --reference $(BENCH_ACT_DIR)/hf \
	    --python $(REFERENCE_PY) --image cam_high=$(BENCH_ACT_DIR)/hf/cam_high.png \
	    --noise $(BENCH_ACT_DIR)/hf/noise.safetensors --steps 10 --iterations 10 --threads 2 || exit 1; \
	done

# The same reference config with the libraries' own initialisers instead of the fixtures' unit-gain
# randomizer (std 0.02 backbone, torch Linear defaults): a milder random model, not a trained one.
BENCH_ACT_LIBRARY_DIR ?= /tmp/tendon-bench-act-library
bench-act-library: release
	$(REFERENCE_PY) Tools/reference/qwen_vla_bench.py build --out $(BENCH_ACT_LIBRARY_DIR)/hf --init library
	.build/release/tendon-train convert --hf $(BENCH_ACT_LIBRARY_DIR)/hf --out $(BENCH_ACT_LIBRARY_DIR)/q4_k.gguf --quant q4_k
	for q in q8_0 q4_k; do .build/release/tendon-train convert --hf $(BENCH_ACT_LIBRARY_DIR)/hf --out $(BENCH_ACT_LIBRARY_DIR)/$$q-gptq.gguf \
	  --quant $$q --calibration $(BENCH_ACT_LIBRARY_DIR)/hf/calibration/calibration.jsonl || exit 1; done
	for m in hf q8_0-gptq.gguf q4_k.gguf q4_k-gptq.gguf; do \
	  .build/release/tendon bench act --model $(BENCH_ACT_LIBRARY_DIR)/$$m --reference $(BENCH_ACT_LIBRARY_DIR)/hf \
	    --python $(REFERENCE_PY) --image cam_high=$(BENCH_ACT_LIBRARY_DIR)/hf/cam_high.png \
	    --noise $(BENCH_ACT_LIBRARY_DIR)/hf/noise.safetensors --steps 10 --iterations 10 --threads 2 || exit 1; \
	done

# The model-side reference environment (torch, transformers, tokenizers, safetensors, gguf), pinned.
REFERENCE_VENV ?= .venv-reference
reference-env:
	@[ -x $(REFERENCE_VENV)/bin/python ] || python3 -m venv $(REFERENCE_VENV)
	$(REFERENCE_VENV)/bin/pip install -q -r Tools/reference/requirements.txt -r $(PY_HW_REQUIREMENTS)

# Regenerates every committed fixture from the reference implementations.
fixtures: reference-env
	$(REFERENCE_VENV)/bin/python Tools/reference/dynamixel_fixtures.py --out Tests/Fixtures/dynamixel/sdk_packets.json
	$(REFERENCE_VENV)/bin/python Tools/reference/tokenizer_fixtures.py --out Tests/Fixtures/tokenizer
	$(REFERENCE_VENV)/bin/python Tools/reference/qwen_vla.py --out Tests/Fixtures/qwen_vla
	$(REFERENCE_VENV)/bin/python Tools/reference/checkpoint_fixtures.py write --out Tests/Fixtures/checkpoint
	$(REFERENCE_VENV)/bin/python Tools/reference/qwen35_reference.py --out Tests/Fixtures/qwen35
	$(REFERENCE_VENV)/bin/python Tools/reference/hdf5_fixtures.py --out Tests/Fixtures/hdf5
	$(REFERENCE_VENV)/bin/python Tools/reference/camera_fixtures.py --out Tests/Fixtures/cameras
	$(REFERENCE_VENV)/bin/python Tools/reference/qwen35_vision_reference.py --out Tests/Fixtures/vision
	$(REFERENCE_VENV)/bin/python Tools/reference/tensor_fixtures.py
	$(REFERENCE_VENV)/bin/python Tools/reference/ggml_quantizer_fixtures.py
	$(REFERENCE_VENV)/bin/python Tools/reference/pillow_resize_fixtures.py
	$(REFERENCE_VENV)/bin/python Tools/reference/calibration_fixtures.py
	$(REFERENCE_VENV)/bin/python Tools/reference/gptq_reference.py

clean:
	rm -rf .build
