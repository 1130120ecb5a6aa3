#!/bin/sh
# Rewrites testdata/golden/ruby-dotenv.jsonl.gz: the outputs of the real
# Ruby dotenv gems 3.2.0, 3.1.7 and 2.8.1 for the differential test's
# corpus, which TestDifferential compares envfile with.
#
#   internal/envfile/testdata/regen-golden.sh DOTENV_GIT_DIR
#
# DOTENV_GIT_DIR is a clone (bare or not) of https://github.com/bkeepers/dotenv
# holding the tags v3.2.0, v3.1.7 and v2.8.1. The gems' lib directories are
# taken from it into a temporary directory, never into this repository;
# testdata/readers/dotenv.rb runs them with the ruby on PATH (Debian's
# ruby works: apt-get install -y ruby). Run it again whenever the corpus
# generator (corpus_test.go) changes: the test refuses golden outputs made
# from another corpus.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DOTENV_GIT_DIR" >&2; exit 2; }
src=$1
cd "$(dirname "$0")/.."   # internal/envfile
gems=$(mktemp -d)
trap 'rm -rf "$gems"' EXIT
for tag in v3.2.0 v3.1.7 v2.8.1; do
	mkdir "$gems/$tag"
	git --git-dir="$(git -C "$src" rev-parse --absolute-git-dir)" archive "$tag" lib | tar -x -C "$gems/$tag"
done
go test -count=1 -run '^TestDifferential$' -golden-gems "$gems" -v . | grep -E '^(---|ok|FAIL|PASS)|wrote'
