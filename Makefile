# git-worker — make install | uninstall | demo | test | lint | typing | bench
# Everything runs from a virtualenv in .venv, whose python is the real interpreter (not a
# pyenv shim, which would add ~100 ms to every command and every tab completion).

PYTHON ?= python3
VENV   ?= .venv
PREFIX ?= $(HOME)/.local
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install uninstall install-files demo demo-clean test lint typing bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip's console-script wrapper starts with `import re` (~10 ms on every TAB, measured):
# the venv's git-worker is the checkout's lean shim instead, run by the venv's python.
# The lean launcher runs that python with -S: `site` cost every command 1.3-2 ms of CPU
# (list --json, rm, a completion; old and new launcher alternating, medians of 101: see
# docs/performance.md). tools/lean_launcher.py asks the venv's python, with and without
# -S, what site adds (site-packages, the paths .pth files name: the editable install's
# lib/; the venv as sys.prefix) and writes that into the launcher. What it then does not
# do: run the import lines of .pth files (setuptools' distutils-precedence.pth, which only
# matters to a program that imports distutils), sitecustomize and usercustomize, the user
# site (a venv leaves it out anyway), the interactive help/exit builtins. Fine for a venv
# of git-worker's own: it holds git-worker and its dependencies (and in .venv the test
# tools), none of which needs those. What it holds is read when the launcher is written,
# so the launcher is written again after every pip install there.
LEAN_LAUNCHER = tools/lean_launcher.py git-worker
LEAN_SHIM = $(BIN)/python $(LEAN_LAUNCHER) $(BIN)/git-worker

$(VENV)/.installed: $(BIN)/python pyproject.toml git-worker tools/lean_launcher.py
	$(PIP) install -e .
	$(LEAN_SHIM)
	$(BIN)/python -m compileall -q lib  # an editable install compiles nothing itself
	@touch $@

# pip writes its wrapper again on every install: the lean shim goes back in after it
# (else make bench, after make test, timed the wrapper's `import re`: 13 ms a completion).
$(VENV)/.test-deps: $(VENV)/.installed
	$(PIP) install -e '.[test,dev]'
	$(LEAN_SHIM)
	@touch $@

# An installed copy of its own, which the checkout can be moved or deleted from:
#   $(PREFIX)/lib/git-worker     a virtualenv holding git-worker (built from this checkout,
#                                 not linked to it) and dulwich and argcomplete;
#   $(PREFIX)/bin/git-worker     a link to its lean launcher (below), so `git worker` works;
#   the man page and the completion scripts, as install-files puts them.
# The launcher is the checkout's git-worker shim with the venv's own python in its #! line
# (the interpreter itself, not a pyenv shim, and not pip's console-script wrapper, which
# starts with `import re`: ~10 ms on every TAB, measured), run with -S like LEAN_SHIM's.
# $(LIBDIR)/make-install.manifest records the checkout it came from and the directories
# this install created (written first: a failed install can be uninstalled too), so that
# `make uninstall` removes exactly what install put there.
# (build/ is setuptools' staging directory: a stale one would add deleted files to the wheel.)
LIBDIR   = $(abspath $(PREFIX))/lib/git-worker
MANIFEST = $(LIBDIR)/make-install.manifest
INSTALLED_FILES = bin/git-worker share/man/man1/git-worker.1 \
  share/bash-completion/completions/git-worker.bash share/zsh/site-functions/_git-worker \
  share/fish/vendor_conf.d/git-worker.fish
# Parents first: created in this order, removed (when empty) in the reverse.
INSTALLED_DIRS = bin lib share share/man share/man/man1 share/bash-completion \
  share/bash-completion/completions share/zsh share/zsh/site-functions share/fish \
  share/fish/vendor_conf.d

install:
	@created=$$(sed -n 's/^dir //p' $(MANIFEST) 2>/dev/null); \
	for d in $(INSTALLED_DIRS); do \
	  [ -d "$(PREFIX)/$$d" ] || created="$$created $$d"; done; \
	set -e; rm -rf $(LIBDIR); \
	echo "installing into $(LIBDIR)"; \
	$(PYTHON) -m venv $(LIBDIR); \
	{ echo "source $(CURDIR)"; for d in $$created; do echo "dir $$d"; done; } > $(MANIFEST); \
	rm -rf build; \
	$(LIBDIR)/bin/python -m pip --disable-pip-version-check -q install \
	  --no-warn-script-location .; \
	$(LIBDIR)/bin/python $(LEAN_LAUNCHER) $(LIBDIR)/bin/git-worker
	@$(MAKE) --no-print-directory install-files
	ln -sf $(LIBDIR)/bin/git-worker $(PREFIX)/bin/git-worker
	@case ":$$PATH:" in *":$(abspath $(PREFIX))/bin:"*) ;; \
	  *) echo "note: add $(PREFIX)/bin to PATH to run 'git worker'";; esac
	@echo "zsh: add $(PREFIX)/share/zsh/site-functions to fpath (before compinit) if it is not"

# Removes what install put there: the files above, $(LIBDIR), and the directories install
# created, if nothing else has been put in them since.
uninstall:
	@dirs=$$(sed -n 's/^dir //p' $(MANIFEST) 2>/dev/null | sort -r); \
	cd $(PREFIX) && rm -fv $(INSTALLED_FILES) && rm -rf $(LIBDIR) && \
	for d in $$dirs; do rmdir "$$d" 2>/dev/null || true; done

# The files alone (no virtualenv needed): man page and shell completion.
#   man:  $(PREFIX)/share/man/man1 (found from $(PREFIX)/bin on PATH)
#   bash: bash-completion loads $(PREFIX)/share/bash-completion/completions/git-worker.bash
#         on demand (~/.local/share is searched by default, /usr/local/share via XDG_DATA_DIRS)
#   zsh:  $(PREFIX)/share/zsh/site-functions/_git-worker
#   fish: $(PREFIX)/share/fish/vendor_conf.d (read at start-up, so `git worker` completes too)
SHELL_FILES = lib/git_worker/shell
install-files:
	install -d $(PREFIX)/bin $(PREFIX)/share/man/man1 \
	  $(PREFIX)/share/bash-completion/completions \
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

# import_cycles: no module of git_worker imports, even lazily, one that imports it back.
lint: $(VENV)/.test-deps
	$(BIN)/ruff check lib tests bench tools
	$(BIN)/python tools/import_cycles.py lib/git_worker

typing: $(VENV)/.test-deps
	$(BIN)/mypy

# compileall first: with PYTHONDONTWRITEBYTECODE set (as on CI), edited modules would be
# compiled on every run, which is not what a user's installed copy does.
# The lean shim again too: a pip install into the venv puts pip's wrapper back.
bench: $(VENV)/.installed
	$(LEAN_SHIM)
	$(BIN)/python -m compileall -q lib
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build lib/*.egg-info .pytest_cache
