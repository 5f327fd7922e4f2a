# The README's commands. Every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DAGSTER_HOME_DIR := $(CURDIR)/data/.dagster

.PHONY: setup run test ui studies render

setup: $(STAMP)

# Reinstall only when the dependencies change. torch is pinned to a CPU build in
# pyproject.toml; pip finds it on local disk where the machine provides one.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/esmr run --seed 0 --preset paper

# Two workers (pytest-xdist): the suite takes half the time on 2 cores. TEST_WORKERS=0 runs it
# in one process.
TEST_WORKERS ?= 2
test: setup
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS)

# Every shipped study at `paper`, one after another (hours on 2 cores; resumable: rerun to
# continue). SEEDS=0-2 runs a first pass on fewer seeds; STUDY_DATA picks the data dir.
STUDIES ?= fair_test observability content_effect sensitivity engagement_tradeoff emotion_models training_budget horizon igl_styles learners
STUDY_DATA ?= data
studies: setup
	for study in $(STUDIES); do \
		$(VENV)/bin/esmr study run studies/$$study.toml --data-dir $(STUDY_DATA) $(if $(SEEDS),--seeds $(SEEDS)) || exit 1; \
	done
	$(VENV)/bin/python docs/render/studies.py --data-dir $(STUDY_DATA)

# Every table, plot and quoted figure of the README and docs/ from the committed cell archive
# (studies/cells/) alone; STUDY_DATA=<dir> archives that data dir's finished cells first.
render: setup
	$(VENV)/bin/python docs/render/studies.py $(if $(filter command line environment,$(origin STUDY_DATA)),--data-dir $(STUDY_DATA))
	$(VENV)/bin/python docs/render/results.py
	$(VENV)/bin/python docs/render/fair_test.py
	$(VENV)/bin/python docs/render/moved.py
	$(VENV)/bin/python docs/render/simulator.py
	$(VENV)/bin/python docs/render/figures.py

# `dagster dev` is deprecated in Dagster 1.13 in favour of `dg dev`, which needs
# dagster-dg-cli (not a dependency). So run what `dagster dev` runs: the webserver on
# 127.0.0.1:3000 and the daemon (it dequeues runs launched from the UI and runs
# schedules, sensors and backfills), sharing the instance `esmr run` uses by default.
# docs/dagster.yaml (sqlite under DAGSTER_HOME, run concurrency limits) is copied in once.
# Create the instance's storage once, before the webserver and the daemon start: on a fresh
# instance both would create its tables at once, and one of them fails.
INIT_INSTANCE := import dagster; dagster.DagsterInstance.get().dispose()
ui: setup
	mkdir -p $(DAGSTER_HOME_DIR)
	test -f $(DAGSTER_HOME_DIR)/dagster.yaml || cp docs/dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	export DAGSTER_HOME=$(DAGSTER_HOME_DIR); \
	$(VENV)/bin/python -c "$(INIT_INSTANCE)"; \
	trap 'kill $$daemon' EXIT; \
	$(VENV)/bin/dagster-daemon run -w workspace.yaml & daemon=$$!; \
	$(VENV)/bin/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p 3000
