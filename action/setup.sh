#!/usr/bin/env bash
# The dhow action, step 1: mask the secrets it was given, then provide the dhow binary:
#   - the released static binary for the runner's OS/arch, downloaded once, verified against the
#     sha256 pinned in action/checksums.txt (never against anything fetched with it) and kept in
#     the tool cache ($RUNNER_TOOL_CACHE/dhow/<version>/<arch>/dhow, re-verified on every use);
#   - or, for `dhow-version: source`, a download that is not possible, or an action version with
#     no release yet, a `cargo build --release --locked` of the action's own source.
# Writes `path` (the binary), `version` and `origin` (cache|download|source) to $GITHUB_OUTPUT.
#
# Inputs arrive through the environment (action.yml maps them; nothing is interpolated into the
# script): INPUT_DHOW_VERSION, and INPUT_SSH_PRIVATE_KEY / INPUT_GITHUB_TOKEN / INPUT_KNOWN_HOSTS
# for masking only. Runner variables: RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP,
# GITHUB_ACTION_PATH, GITHUB_OUTPUT, GITHUB_ACTION_REPOSITORY, GITHUB_SERVER_URL.
# DHOW_RELEASE_BASE_URL replaces https://github.com/<owner>/<repo>/releases/download (the asset
# URL is <base>/<version>/<asset>).
set -euo pipefail

# Masks first, before anything else is printed: each line of a multi-line secret separately.
mask() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -n ${line//[[:space:]]/} ]] || continue
    line=${line//%/%25}
    printf '::add-mask::%s\n' "$line"
  done <<<"$1"
}
mask "${INPUT_SSH_PRIVATE_KEY:-}"
mask "${INPUT_GITHUB_TOKEN:-}"

fail() {
  local message=${1//%/%25}
  message=${message//$'\n'/%0A}
  printf '::error title=dhow action::%s\n' "$message"
  exit 1
}
notice() { printf '::notice title=dhow action::%s\n' "$1"; }
warning() { printf '::warning title=dhow action::%s\n' "$1"; }
output() { printf '%s=%s\n' "$1" "$2" >>"${GITHUB_OUTPUT:-/dev/null}"; }

action_path=${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
checksums=$action_path/action/checksums.txt

sha256_of() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

build_from_source() {
  local why=$1 target
  command -v cargo >/dev/null ||
    fail "cannot build dhow from source ($why): cargo is not installed on this runner (add dtolnay/rust-toolchain or actions-rust-lang/setup-rust-toolchain before this step)"
  notice "building dhow from the action's source: $why"
  echo "::group::cargo build --release --locked (dhow from source)"
  (cd "$action_path" && cargo build --release --locked -p dhow --bin dhow) ||
    { echo "::endgroup::"; fail "cargo build --release --locked of dhow failed (see the log above)"; }
  echo "::endgroup::"
  target=${CARGO_TARGET_DIR:-target}
  [[ $target == /* ]] || target=$action_path/$target
  [[ -x $target/release/dhow ]] || fail "cargo build finished but $target/release/dhow is missing"
  output path "$target/release/dhow"
  output version source
  output origin source
  echo "dhow: built from source at $target/release/dhow"
  exit 0
}

# The release asset for this runner.
runner_os=${RUNNER_OS:-$(uname -s)}
runner_arch=${RUNNER_ARCH:-$(uname -m)}
case $runner_arch in
  X64 | x86_64 | amd64) arch=x86_64 cache_arch=x64 ;;
  ARM64 | aarch64 | arm64) arch=aarch64 cache_arch=arm64 ;;
  *) fail "dhow has no build for runner architecture $runner_arch (supported: X64, ARM64)" ;;
esac
case $runner_os in
  Linux) asset=dhow-$arch-unknown-linux-musl ;;
  macOS | Darwin) asset=dhow-$arch-apple-darwin ;;
  *) fail "dhow runs on Linux and macOS runners, not on $runner_os" ;;
esac

# The version: the input, else the version of the action's own source (its Cargo.toml).
requested=${INPUT_DHOW_VERSION:-}
requested=${requested//[[:space:]]/}
[[ $requested != source ]] || build_from_source "dhow-version is 'source'"
if [[ -n $requested ]]; then
  version=$requested
  [[ $version == v* ]] || version=v$version
else
  version=v$(sed -n 's/^version = "\(.*\)"$/\1/p' "$action_path/Cargo.toml" | head -n1)
fi
[[ $version =~ ^v[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] ||
  fail "dhow-version must be a release tag such as v1.2.3, or 'source' (got '$requested')"

[[ -f $checksums ]] || fail "action/checksums.txt is missing from the action ($checksums)"
expected=$(awk -v want="$version/$asset" '$1 !~ /^#/ && $2 == want { print $1 }' "$checksums" | head -n1)
if [[ -z $expected ]]; then
  if [[ -z $requested ]]; then
    build_from_source "no released $asset is pinned for this action version ($version)"
  fi
  fail "no sha256 is pinned for $version/$asset in action/checksums.txt: refusing to run an unverified binary. Use a dhow-version this action's checksums list, or 'source'."
fi
[[ $expected =~ ^[0-9a-f]{64}$ ]] || fail "action/checksums.txt: malformed sha256 for $version/$asset"

cache_root=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}
dir=$cache_root/dhow/${version#v}/$cache_arch
bin=$dir/dhow

# The cached binary, re-verified (a tampered or truncated cache entry is replaced).
if [[ -f $dir.complete && -x $bin ]]; then
  if [[ $(sha256_of "$bin") == "$expected" ]]; then
    echo "dhow $version ($asset): cached at $bin, sha256 $expected verified"
    output path "$bin"
    output version "$version"
    output origin cache
    exit 0
  fi
  warning "the cached $bin does not match its pinned sha256; downloading it again"
  rm -f "$dir.complete" "$bin"
fi

base=${DHOW_RELEASE_BASE_URL:-}
if [[ -n $base ]]; then
  protocols='=https,http'
else
  repository=${GITHUB_ACTION_REPOSITORY:-}
  [[ -n $repository ]] || repository=dhow-deploy/dhow
  base=${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download
  protocols='=https'
fi
url=${base%/}/$version/$asset

mkdir -p "$dir"
partial=$(mktemp "$dir/.dhow.download.XXXXXX")
trap 'rm -f "$partial"' EXIT
echo "dhow $version ($asset): downloading $url"
if command -v curl >/dev/null; then
  fetched() { curl --proto "$protocols" --tlsv1.2 -fsSL --retry 3 --connect-timeout 20 -o "$partial" "$url"; }
else
  fetched() { wget -q -O "$partial" "$url"; }
fi
if ! fetched; then
  rm -f "$partial"
  warning "downloading $url failed"
  build_from_source "the download of $version/$asset failed"
fi
actual=$(sha256_of "$partial")
if [[ $actual != "$expected" ]]; then
  rm -f "$partial"
  fail "sha256 mismatch for $url: got $actual, action/checksums.txt pins $expected. The binary was deleted and not run."
fi
chmod 0755 "$partial"
mv -f "$partial" "$bin"
touch "$dir.complete"
echo "dhow $version ($asset): sha256 $actual verified, cached at $bin"
output path "$bin"
output version "$version"
output origin download
