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

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
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

bench: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build lib/*.egg-info .pytest_cache
