# Two entry points (README): `make demo` runs the main job, `make test` the test suite.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

DEMO_TRACE ?= builtin:synthetic-demo
DEMO_ARMS  ?= plain@0,*@1-4
DEMO_OUT   ?= results/demo
DEMO_RUNS  ?= 50

.PHONY: demo test lint clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) -m simulator run --trace $(DEMO_TRACE) \
	    --setting replay --setting stochastic --setting adversarial \
	    --policy ucbspec --policy exp3spec --policy uniform --policy oracle \
	    --arms '$(DEMO_ARMS)' --runs $(DEMO_RUNS) --seed 0 --workers 2 --out $(DEMO_OUT)
	$(PY) -m simulator plot $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) results .pytest_cache
