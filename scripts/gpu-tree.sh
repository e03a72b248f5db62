#!/usr/bin/env bash
# The device tool sends the working tree with every call (tracked files,
# untracked files git does not ignore, and the carried paths), 64 MiB in all.
# The test fixtures alone are about 46 MB of the tree, and the GPU check
# carries 8 + 31 + 8 MB (scripts/gpu-check.sh): together over the limit. The
# GPU check needs none of the fixtures (validate's goldens are compiled into
# the binary), so for the duration of the device call they leave the index:
#
#   scripts/gpu-tree.sh size [CARRY...]   # MiB that would travel, against 64
#   scripts/gpu-tree.sh slim              # fixtures untracked and ignored (files stay on disk)
#   ... the device call ...
#   scripts/gpu-tree.sh restore           # back as they were
#
# While slim, a pre-commit hook refuses every commit (it would delete the
# fixtures from the repository); `restore` removes it. Nothing is committed
# or deleted by this script.
set -euo pipefail
cd "$(dirname "$0")/.."

fixtures=(crates/vivace-models/tests/fixtures crates/vivace/tests/fixtures crates/vivace-frontend/tests/fixtures)
# The files git reads in this worktree (a linked worktree has its own).
exclude=$(git rev-parse --git-path info/exclude)
marker=$(git rev-parse --git-path vivace-gpu-slim)
# Shared by every worktree of the repository: while slim, commits stop in all.
hook=$(git rev-parse --git-path hooks/pre-commit)

# Bytes of the files the device tool would send, plus the carried paths.
travelling_bytes() {
  {
    git ls-files -z --cached
    git ls-files -z --others --exclude-standard
  } | sort -zu | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

case "${1:-}" in
  size)
    shift
    tree=$(travelling_bytes)
    carried=0
    for path in "$@"; do
      [ -e "$path" ] || { echo "gpu-tree: no $path to carry" >&2; exit 1; }
      carried=$((carried + $(du -sb "$path" | cut -f1)))
    done
    awk -v t="$tree" -v c="$carried" 'BEGIN {
      total = (t + c) / 1048576
      printf "gpu-tree: tree %.1f MiB + carried %.1f MiB = %.1f MiB (limit 64)\n", t / 1048576, c / 1048576, total
      exit !(total <= 64)
    }'
    ;;
  slim)
    if [ -f "$marker" ]; then
      echo "gpu-tree: already slim (scripts/gpu-tree.sh restore undoes it)"
      exit 0
    fi
    if ! git diff --cached --quiet; then
      echo "gpu-tree: the index has staged changes: commit or unstage them first" >&2
      exit 1
    fi
    if [ -e "$hook" ]; then
      echo "gpu-tree: $hook exists: not replacing it, so nothing would stop a commit while slim" >&2
      exit 1
    fi
    mkdir -p "$(dirname "$hook")"
    printf '#!/bin/sh\necho "pre-commit: the test fixtures are untracked for a GPU call: run scripts/gpu-tree.sh restore first" >&2\nexit 1\n' > "$hook"
    chmod +x "$hook"
    : > "$marker"
    mkdir -p "$(dirname "$exclude")"
    # A last line without its newline would be glued to the first pattern.
    if [ -s "$exclude" ] && [ -n "$(tail -c1 "$exclude")" ]; then
      echo >> "$exclude"
    fi
    for dir in "${fixtures[@]}"; do
      [ -d "$dir" ] || continue
      git rm -r -q --cached -- "$dir"
      # The marker keeps the exclude lines added, for restore to take out.
      echo "/$dir/" >> "$marker"
      echo "/$dir/" >> "$exclude"
    done
    echo "gpu-tree: fixtures untracked and ignored for the device call; commits are refused (in every worktree) until scripts/gpu-tree.sh restore"
    ;;
  restore)
    if [ ! -f "$marker" ]; then
      echo "gpu-tree: not slim: nothing to restore"
      exit 0
    fi
    # The folders slim untracked, as it recorded them (`/DIR/`).
    while IFS= read -r pattern; do
      dir=${pattern#/}
      git reset -q -- "${dir%/}"
    done < "$marker"
    if [ -s "$marker" ]; then
      grep -v -x -F -f "$marker" "$exclude" > "$exclude.tmp" || true
      mv "$exclude.tmp" "$exclude"
    fi
    rm -f "$hook" "$marker"
    echo "gpu-tree: fixtures tracked again"
    ;;
  *)
    echo "usage: scripts/gpu-tree.sh size [CARRY...] | slim | restore" >&2
    exit 2
    ;;
esac
