# srkit: `make demo` runs the main job on data/samples; `make test` runs the tests.
# Both create or refresh .venv first, so a fresh clone needs nothing but Python >= 3.10.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.srkit-installed
DEMO   := out/demo

.PHONY: venv test test-slow demo bench clean

venv: $(STAMP)

# Re-install whenever the project's metadata changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	$(BIN)/srdata build --src data/samples --out $(DEMO)/ds --scale 4 --blur 1.2 --val 2 --test 2
	$(BIN)/srdata inspect $(DEMO)/ds --json $(DEMO)/inspect.json --sheet $(DEMO)/sheet.png

clean:
	rm -rf out $(VENV)
