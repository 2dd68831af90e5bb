#!/usr/bin/env bash
# make demo: the whole flow on a scratch repository, with a scripted agent (no API keys).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
demo="$here/demo"
rm -rf "$demo" && mkdir -p "$demo"
cd "$demo"
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com

git init -q -b main project && cd project
printf 'def parse(s):\n    return s.split(",")\n' > parser.py
git add parser.py && git commit -q -m "a small project"

cat > "$demo/demo-agent" <<'AGENT'
#!/bin/sh
# A scripted stand-in for a coding agent: reads its prompt, works a little, commits.
prompt=$(cat)
id=$(basename "$PWD")
echo "demo agent on $id: $(printf '%s\n' "$prompt" | head -n 1)"
sleep 2
echo "# $id" >> NOTES.md
git add NOTES.md && git commit -q -m "$id: done"
echo "committed $(git rev-parse --short HEAD)"
AGENT
chmod +x "$demo/demo-agent"
git config worker.agent demo
git config worker.agent.demo.command "$demo/demo-agent"

echo "\$ git worker spawn demo-1 demo-2 demo-3 -d 'add a note'"
git worker spawn demo-1 demo-2 demo-3 -d "add a note"
echo; echo "\$ git worker list"; git worker list
sleep 3
echo; echo "\$ git worker list   # a few seconds later"; git worker list
echo; echo "\$ cat .git/workers/demo-1/agent.log"; cat .git/workers/demo-1/agent.log
echo; echo "\$ git log --oneline worker/demo-1"; git log --oneline worker/demo-1
echo; echo "The scratch repository is $demo/project; remove it with: rm -rf $demo"
