# git-worker — make install | demo | test | lint | typing | bench
# Everything runs from a virtualenv in .venv, whose python is the real interpreter (not a
# pyenv shim, which would add ~100 ms to every command and every tab completion).

PYTHON ?= python3
VENV   ?= .venv
PREFIX ?= $(HOME)/.local
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install install-files demo demo-clean test lint typing bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip's console-script wrapper starts with `import re` (~10 ms on every TAB, measured):
# the venv's git-worker is the checkout's lean shim instead, run by the venv's python.
$(VENV)/.installed: $(BIN)/python pyproject.toml git-worker
	$(PIP) install -e .
	sed '1s|.*|#!$(abspath $(BIN)/python)|' git-worker > $(BIN)/git-worker.tmp
	chmod 755 $(BIN)/git-worker.tmp && mv $(BIN)/git-worker.tmp $(BIN)/git-worker
	$(BIN)/python -m compileall -q lib  # an editable install compiles nothing itself
	@touch $@

$(VENV)/.test-deps: $(VENV)/.installed
	$(PIP) install -e '.[test,dev]'
	@touch $@

# Puts `git-worker` on PATH (so `git worker` works), the man page where man finds it, and
# the completion scripts where each shell finds them.
install: $(VENV)/.installed install-files
	mkdir -p $(PREFIX)/bin
	ln -sf $(abspath $(BIN)/git-worker) $(PREFIX)/bin/git-worker
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; \
	  *) echo "note: add $(PREFIX)/bin to PATH to run 'git worker'";; esac
	@echo "zsh: add $(PREFIX)/share/zsh/site-functions to fpath (before compinit) if it is not"

# The files alone (no virtualenv needed): man page and shell completion.
#   man:  $(PREFIX)/share/man/man1 (found from $(PREFIX)/bin on PATH)
#   bash: bash-completion loads $(PREFIX)/share/bash-completion/completions/git-worker.bash
#         on demand (~/.local/share is searched by default, /usr/local/share via XDG_DATA_DIRS)
#   zsh:  $(PREFIX)/share/zsh/site-functions/_git-worker
#   fish: $(PREFIX)/share/fish/vendor_conf.d (read at start-up, so `git worker` completes too)
SHELL_FILES = lib/git_worker/shell
install-files:
	install -d $(PREFIX)/share/man/man1 $(PREFIX)/share/bash-completion/completions \
	  $(PREFIX)/share/zsh/site-functions $(PREFIX)/share/fish/vendor_conf.d
	install -m 644 lib/git_worker/man/git-worker.1 $(PREFIX)/share/man/man1/git-worker.1
	install -m 644 $(SHELL_FILES)/git-worker.bash \
	  $(PREFIX)/share/bash-completion/completions/git-worker.bash
	install -m 644 $(SHELL_FILES)/_git-worker $(PREFIX)/share/zsh/site-functions/_git-worker
	install -m 644 $(SHELL_FILES)/git-worker.fish $(PREFIX)/share/fish/vendor_conf.d/git-worker.fish

demo: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash demo.sh

demo-clean:
	PATH="$(abspath $(BIN)):$$PATH" bash demo.sh --clean

test: $(VENV)/.test-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check lib tests bench

typing: $(VENV)/.test-deps
	$(BIN)/mypy

# compileall first: with PYTHONDONTWRITEBYTECODE set (as on CI), edited modules would be
# compiled on every run, which is not what a user's installed copy does.
bench: $(VENV)/.installed
	$(BIN)/python -m compileall -q lib
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build lib/*.egg-info .pytest_cache
