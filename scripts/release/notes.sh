#!/usr/bin/env bash
# The release notes of VERSION: its section of CHANGELOG.md, without the heading.
#
#   scripts/release/notes.sh VERSION
set -euo pipefail
version=${1:?usage: scripts/release/notes.sh VERSION}
notes=$(awk -v want="## $version" '
    $0 == want { on = 1; next }
    on && /^## / { exit }
    on { print }
' "$(dirname "$0")/../../CHANGELOG.md" | sed -e '/./,$!d')
if [ -z "$(printf '%s' "$notes" | tr -d '[:space:]')" ]; then
    echo "scripts/release/notes.sh: CHANGELOG.md has no section \"## $version\" (or it is empty)" >&2
    exit 1
fi
printf '%s\n' "$notes"
