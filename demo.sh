#!/usr/bin/env bash
# make demo: git-worker on a scratch repository, start to finish, in about half a minute.
# No API keys, no network: the "agent" is a script that does what a coding agent does
# (reads its task, writes code, commits), and the tasks come from a stand-in `bd`.
# Everything lives in ./demo (git-ignored); `make demo-clean` removes it.
#
#   bash demo.sh            run the demo (make demo puts .venv/bin on PATH first)
#   bash demo.sh --clean    stop the demo's agents and remove ./demo
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
demo="$here/demo"
repo="$demo/shop"

if [[ -t 1 && -z "${NO_COLOR-}" && "${TERM-}" != dumb ]]; then
  bold=$'\e[1m' dim=$'\e[2m' cyan=$'\e[36m' green=$'\e[32m' reset=$'\e[0m'
else
  bold='' dim='' cyan='' green='' reset=''
fi
step() { printf '\n%s==> %s%s\n' "$bold$cyan" "$*" "$reset"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$reset"; }
run() {  # show the command as one would type it, then run it
  local shown="" arg
  for arg in "$@"; do
    if [[ "$arg" =~ [^A-Za-z0-9_./:=@%+-] ]]; then shown+=" '${arg//\'/\'\\\'\'}'"; else shown+=" $arg"; fi
  done
  printf '%s$%s%s\n' "$green" "$shown" "$reset"
  "$@"
}

clean() {
  if [[ -d "$repo/.git" ]] && command -v git-worker >/dev/null; then
    # rm --force also stops agents that are still at work.
    for id in $(git -C "$repo" for-each-ref --format='%(refname:lstrip=2)' refs/workers/); do
      (cd "$repo" && git worker rm --force "$id" >/dev/null 2>&1) || true
    done
  fi
  rm -rf "$demo"
}

if [[ "${1-}" == --clean ]]; then
  clean
  echo "removed $demo"
  exit 0
fi
if ! command -v git-worker >/dev/null; then
  echo "demo.sh: git-worker is not on PATH; run it with: make demo" >&2
  exit 1
fi
clean  # a previous run's leftovers

# A fixed identity, so that the demo works on a machine where git knows nobody (CI, root).
export GIT_AUTHOR_NAME="Demo Author" GIT_AUTHOR_EMAIL="demo@example.com"
export GIT_COMMITTER_NAME="Demo Author" GIT_COMMITTER_EMAIL="demo@example.com"
export PATH="$demo/bin:$PATH"
mkdir -p "$demo/bin"

# --- the stand-ins ---------------------------------------------------------------------

# bd, the issue tracker: three ready issues (the JSON shapes of `bd ready/show --json`).
cat > "$demo/bin/bd" <<'EOF'
#!/bin/sh
issue() {
  case "$1" in
    shop-a1f) printf '{"id":"shop-a1f","title":"Add a discount function","description":"Add discount(price, percent) to shop/prices.py, with a test.","status":"open","priority":1,"issue_type":"feature"}' ;;
    shop-b7k) printf '{"id":"shop-b7k","title":"Round prices to cents","description":"total() must round to two decimals.","status":"open","priority":2,"issue_type":"bug"}' ;;
    shop-c3x) printf '{"id":"shop-c3x","title":"Support currencies","description":"Prices carry a currency; refuse to add EUR to USD.","status":"open","priority":2,"issue_type":"feature"}' ;;
    *) return 1 ;;
  esac
}
case "$1" in
  ready) case " $* " in *" --json "*) ;; *)  # what bd prints for people
           printf '  shop-a1f  [P1 feature]  Add a discount function\n'
           printf '  shop-b7k  [P2 bug]      Round prices to cents\n'
           printf '  shop-c3x  [P2 feature]  Support currencies\n'; exit 0 ;; esac
         printf '['; issue shop-a1f; printf ','; issue shop-b7k; printf ','; issue shop-c3x; printf ']\n' ;;
  show) for a in "$@"; do case "$a" in shop-*) id="${a#--id=}";; --id=*) id="${a#--id=}";; esac; done
        issue "$id" || { echo '{"error":"not found","code":"not_found"}' >&2; exit 1; }; echo ;;
  update) issue "$2" | sed 's/"status":"open"/"status":"in_progress"/'; echo ;;
  close) exit 0 ;;
  *) echo '[]' ;;
esac
EOF

# The agent: reads its prompt, works for a few seconds, writes code, commits. One of the
# three tasks "fails its tests", so that the demo shows a failed worker too.
cat > "$demo/bin/demo-agent" <<'EOF'
#!/bin/sh
id=$(basename "$PWD")
say() { echo "[$(date +%H:%M:%S)] $*"; }
task=$(grep -m1 '^You are working on task' "${GIT_WORKER_PROMPT_FILE:-/dev/null}" || true)
say "${task:-task $id}"
say "reading shop/prices.py"; sleep 1
case "$id" in
  shop-a1f)
    say "writing discount()"; sleep 2
    cat >> shop/prices.py <<'PY'


def discount(price: float, percent: float) -> float:
    return price * (100 - percent) / 100
PY
    printf 'from shop.prices import discount\n\n\ndef test_discount():\n    assert discount(200, 25) == 150\n' > tests/test_discount.py
    git add -A && git commit -q -m "Add discount(price, percent)" && say "committed: Add discount(price, percent)"
    say "done" ;;
  shop-b7k)
    say "changing total()"; sleep 3
    sed -i 's/return sum(prices)/return round(sum(prices), 2)/' shop/prices.py
    git commit -q -am "Round totals to cents" && say "committed: Round totals to cents"
    sleep 2; say "done" ;;
  *)
    say "adding a currency to every price"; sleep 3
    say "running the tests"; sleep 1
    say "FAILED tests/test_prices.py::test_total - TypeError: Money + float"
    say "giving up: the task needs a decision (convert, or refuse?)"
    exit 1 ;;
esac
EOF
chmod +x "$demo/bin/bd" "$demo/bin/demo-agent"

# --- the scratch repository ------------------------------------------------------------

step "A scratch repository with three ready bd issues"
mkdir -p "$repo/shop" "$repo/tests"
cd "$repo"
git init -q -b main
mkdir .beads  # where bd keeps its issues: git-worker asks bd when it finds this
for id in shop-a1f shop-b7k shop-c3x; do bd show "$id" --json; done > .beads/issues.jsonl
printf '"""Prices of the demo shop."""\n\n\ndef total(prices: list[float]) -> float:\n    return sum(prices)\n' > shop/prices.py
printf 'from shop.prices import total\n\n\ndef test_total():\n    assert total([1.5, 2.25]) == 3.75\n' > tests/test_prices.py
: > shop/__init__.py
git add -A && git commit -q -m "The demo shop"
run bd ready

step "Tell git-worker which agent to run (any command; here the scripted one)"
run git config worker.agent demo
run git config worker.agent.demo.command "$demo/bin/demo-agent"

# --- spawn ------------------------------------------------------------------------------

step "Spawn three workers: one worktree, one branch, one agent each"
if python3 -c 'import git_worker.tracker' 2>/dev/null; then
  run git worker spawn shop-a1f shop-b7k shop-c3x
else  # a git-worker without bd support: give the task texts on the command line
  run git worker spawn shop-a1f -d "Add a discount function to shop/prices.py, with a test."
  run git worker spawn shop-b7k -d "Round prices to cents in total()."
  run git worker spawn shop-c3x -d "Support currencies: refuse to add EUR to USD."
fi

step "While they work"
run git worker list
note "(the registry is in the repository itself: plain git can read it)"
run git for-each-ref --format='%(refname)' refs/workers/

count() {  # how many workers are in one of the states given
  git worker list --json | python3 -c 'import json, sys
print(sum(r["state"] in sys.argv[1:] for r in json.load(sys.stdin)))' "$@"
}
wait_until() {  # wait_until N STATE...: until N workers are in those states (30 s at most)
  local n=$1; shift
  printf '%s' "$dim"
  for _ in $(seq 60); do
    [[ "$(count "$@")" -ge "$n" ]] && break
    printf '.'
    sleep 0.5
  done
  printf '%s\n' "$reset"
}

wait_until 1 exited failed
step "A moment later: one has finished, the others are still at work"
run git worker list
wait_until 3 exited failed

# --- results ----------------------------------------------------------------------------

step "When they are done: two exited, one failed"
run git worker list

step "What the failed agent said (its log)"
if git worker logs -h >/dev/null 2>&1; then
  run git worker logs shop-c3x
else
  log="$(git rev-parse --git-common-dir)/workers/shop-c3x/agent.log"
  printf '%s$ cat %s%s\n' "$green" "${log#"$here"/}" "$reset"
  cat "$log"
fi

step "What a successful agent did: a commit on its own branch"
run git log --oneline main..worker/shop-a1f
run git diff --stat main worker/shop-a1f

step "Before landing anything: which workers would collide?"
run git worker conflicts

step "What shop-a1f would land (its change against main)"
run git worker diff shop-a1f --stat

step "Land the good ones through the merge queue (the gate here: the project's own check)"
note "(each result is tested as it will land, in a scratch worktree; main moves only to a pass)"
run git config worker.reviewGate "sh -c 'test -f shop/prices.py'"
run git worker land shop-a1f shop-b7k || true  # the collision forecast above: b7k is skipped, nothing changed
run git log --oneline -3 main

step "Each worker's history is a git log of its registry ref"
run git log --format='%h %ad %s' --date=format:%H:%M:%S refs/workers/shop-a1f

step "Done with them: prune removes what landed, and keeps every worker with work"
run git worker list --size
run git worker prune
run git worker rm shop-b7k || true
run git worker rm shop-b7k --keep-branch
run git worker list

printf '\n%sThe demo repository is %s.%s\n' "$bold" "${repo#"$here"/}" "$reset"
echo "Try: cd ${repo#"$here"/} && git worker show shop-c3x --history, git worker logs shop-c3x, git worker doctor"
echo "Watch every worker live, with keys for the loop: cd ${repo#"$here"/} && git worker watch"
if [[ -t 0 && -t 1 ]]; then
  read -r -p "Remove the demo now? [y/N] " answer || answer=n
  if [[ "$answer" == [yY]* ]]; then
    cd "$here"
    clean
    echo "removed $demo"
    exit 0
  fi
fi
echo "Remove it with: make demo-clean"
