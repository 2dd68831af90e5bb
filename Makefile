# git-worker — make install | demo | test | lint | typing | bench
# Everything runs from a virtualenv in .venv, whose python is the real interpreter (not a
# pyenv shim, which would add ~100 ms to every command and every tab completion).

PYTHON ?= python3
VENV   ?= .venv
PREFIX ?= $(HOME)/.local
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install demo test lint typing bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	@touch $@

$(VENV)/.test-deps: $(VENV)/.installed
	$(PIP) install -e '.[test,dev]'
	@touch $@

# Puts `git-worker` on PATH (so `git worker` works) and the man page where man finds it.
install: $(VENV)/.installed
	mkdir -p $(PREFIX)/bin $(PREFIX)/share/man/man1
	ln -sf $(abspath $(BIN)/git-worker) $(PREFIX)/bin/git-worker
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; \
	  *) echo "note: add $(PREFIX)/bin to PATH to run 'git worker'";; esac

demo: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash demo.sh

test: $(VENV)/.test-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check lib tests bench

typing: $(VENV)/.test-deps
	$(BIN)/mypy

bench: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build lib/*.egg-info .pytest_cache
