#!/bin/sh
# The shell of the gitgate GitHub Action (action.yml at the repository root): installs a
# released gitgate for the runner's platform, unless INPUT_BINARY names one, then runs
# `gitgate check` and keeps its exit code (0 passes, 1 rejected, 2 could not be checked).
# With the sarif format the report goes to INPUT_SARIF_FILE for the upload step that follows.
#
# Read from the environment (action.yml sets them from its inputs; tests set them directly):
#   INPUT_VERSION     release to install: latest (default), 0.1.0 or v0.1.0
#   INPUT_BINARY      a gitgate binary to run instead (nothing is downloaded)
#   INPUT_BASE        --base (default: origin/$GITHUB_BASE_REF on a pull request, else the
#                     configuration's protected branch)
#   INPUT_CONFIG      --config
#   INPUT_FORMAT      -o: sarif (default), text, json, junit, github
#   INPUT_ARGS        more arguments, split on white space (--repo DIR, --fail-on-warn, ...)
#   INPUT_SARIF_FILE  where the sarif report is written (default gitgate.sarif)
#   GITGATE_RELEASES  where releases are downloaded from (default
#                     https://github.com/gitgate/gitgate/releases)
# Writes `exit-code` and `sarif-file` (empty unless a report was written) to $GITHUB_OUTPUT.
set -eu

version=${INPUT_VERSION:-latest}
binary=${INPUT_BINARY:-}
base=${INPUT_BASE:-}
config=${INPUT_CONFIG:-}
format=${INPUT_FORMAT:-sarif}
args=${INPUT_ARGS:-}
sarif_file=${INPUT_SARIF_FILE:-gitgate.sarif}
releases=${GITGATE_RELEASES:-https://github.com/gitgate/gitgate/releases}

say() { printf 'gitgate action: %s\n' "$*" >&2; }

output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
}

# The Rust target of the release archive for this runner.
target() {
  os=$(uname -s)
  arch=$(uname -m)
  case "$arch" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) say "no gitgate release for the architecture $arch (set the binary input)"; exit 2 ;;
  esac
  case "$os" in
    Linux) echo "$arch-unknown-linux-gnu" ;;
    Darwin) echo "$arch-apple-darwin" ;;
    *) say "no gitgate release for $os (set the binary input)"; exit 2 ;;
  esac
}

install() {
  target=$(target)
  version=${version#v}
  if [ "$version" = latest ]; then
    url="$releases/latest/download/gitgate-$target.tar.gz"
  else
    url="$releases/download/v$version/gitgate-$target.tar.gz"
  fi
  dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/gitgate-$version-$target"
  mkdir -p "$dir"
  say "installing $url"
  if ! curl --fail --silent --show-error --location --retry 3 --output "$dir/gitgate.tar.gz" "$url"; then
    say "cannot download $url"
    exit 2
  fi
  tar -xzf "$dir/gitgate.tar.gz" -C "$dir"
  rm -f "$dir/gitgate.tar.gz"
  found=$(find "$dir" -type f -name gitgate | head -n 1)
  if [ -z "$found" ]; then
    say "$url holds no gitgate binary"
    exit 2
  fi
  chmod +x "$found"
  # Later steps of the job can run gitgate too.
  if [ -n "${GITHUB_PATH:-}" ]; then
    dirname "$found" >>"$GITHUB_PATH"
  fi
  binary=$found
}

if [ -z "$binary" ]; then
  install
elif [ ! -x "$binary" ]; then
  say "the binary input $binary is not an executable file"
  exit 2
fi

if [ -z "$base" ] && [ -n "${GITHUB_BASE_REF:-}" ]; then
  base="origin/$GITHUB_BASE_REF"
fi

set -- check -o "$format"
if [ -n "$base" ]; then
  set -- "$@" --base "$base"
fi
if [ -n "$config" ]; then
  set -- "$@" --config "$config"
fi
# INPUT_ARGS is split on white space, as a shell would without quotes (no globbing).
set -f
# shellcheck disable=SC2086
set -- "$@" $args
set +f

say "$binary $*"
code=0
if [ "$format" = sarif ]; then
  "$binary" "$@" >"$sarif_file" || code=$?
  if [ -s "$sarif_file" ]; then
    output sarif-file "$sarif_file"
    say "SARIF report written to $sarif_file"
  else
    rm -f "$sarif_file"
    output sarif-file ""
  fi
else
  "$binary" "$@" || code=$?
  output sarif-file ""
fi
output exit-code "$code"
case "$code" in
  0) say "passed" ;;
  1) say "rejected (exit 1)" ;;
  *) say "could not be checked (exit $code)" ;;
esac
exit "$code"
