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
	$(BIN)/python -m pip install --quiet -e '.[train,test,cluster]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The main job on the bundled samples: build -> inspect -> fit (quickstart) -> eval -> predict
# (after srdata frames on the bundled demo clip).
# Re-running resumes the training run instead of restarting it (--resume auto).
demo: $(STAMP)
	$(BIN)/srdata frames data/demo/episode.mp4 --out $(DEMO)/frames
	$(BIN)/srdata build --src data/samples --out $(DEMO)/ds --scale 4 --blur 1.2 --val 2 --test 2
	$(BIN)/srdata inspect $(DEMO)/ds --json $(DEMO)/inspect.json --sheet $(DEMO)/sheet.png
	SRKIT_CACHE=$(DEMO)/cache $(BIN)/sr-train fit recipes/quickstart.yaml --resume auto
	$(BIN)/sr-train eval recipes/quickstart.yaml --weights $(DEMO)/quickstart/best.safetensors --json $(DEMO)/eval.json
	SRKIT_CACHE=$(DEMO)/cache $(BIN)/sr-train predict --weights $(DEMO)/quickstart/best.safetensors $(DEMO)/ds/test_X4 --out $(DEMO)/predict
	$(BIN)/python scripts/side_by_side.py --lr $(DEMO)/ds/test_X4 --sr $(DEMO)/predict --hr $(DEMO)/ds/test --out $(DEMO)/side_by_side.png
	@echo "demo: see $(DEMO)/sheet.png, $(DEMO)/quickstart/curves.png, $(DEMO)/eval.json and $(DEMO)/side_by_side.png"

# Speed, as ratios against baselines measured in the same run (run on an otherwise idle machine).
bench: $(STAMP)
	$(BIN)/python bench/build.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/frames.py
	$(BIN)/python bench/cluster.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/predict.py
	$(BIN)/python bench/degrade.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/loader.py

clean:
	rm -rf out $(VENV)
