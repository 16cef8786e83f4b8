#!/usr/bin/env bash
# Regenerates the Go code of schemas/proto with pinned buf and protoc-gen-go,
# both built from the Go module proxy (no system protoc).
#   schemas/generate.sh            writes schemas/cratestreamv1/*.pb.go
#   schemas/generate.sh OUTDIR     writes OUTDIR/cratestreamv1/*.pb.go (the staleness test)
set -euo pipefail
BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tools="$root/.tools"
out="${1:-$here}"
mkdir -p "$tools" "$out"

install() { # name module@version
  local stamp="$tools/.$1-$3"
  if [ ! -x "$tools/$1" ] || [ ! -f "$stamp" ]; then
    echo "generate: installing $2@$3 into .tools/" >&2
    GOFLAGS= GOBIN="$tools" go install "$2@$3"
    rm -f "$tools/.$1-"*; touch "$stamp"
  fi
}
install buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"

cd "$here"
PATH="$tools:$PATH" "$tools/buf" lint
PATH="$tools:$PATH" "$tools/buf" generate -o "$out"

# The stamp make test checks without building buf: written only when the
# committed code was regenerated.
if [ -z "${1:-}" ]; then
  cd "$root" && go test ./schemas -run '^TestGeneratedStamp$' -count=1 -args -update-stamp >/dev/null
fi
