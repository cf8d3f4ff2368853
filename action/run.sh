#!/usr/bin/env bash
# The dhow action, step 2: turn the action's inputs into dhow's command line and environment, then
# exec dhow, so that the runner's SIGINT/SIGTERM on cancellation reach dhow itself (it releases the
# deploy lock and reports the deployment as cancelled) and its exit status is the step's.
#
# Environment (mapped in action.yml; nothing is interpolated into the script):
#   DHOW_BIN                 the binary from step 1
#   INPUT_COMMAND            deploy | rollback | redeploy | preview | preview-remove | sweep | badge,
#                            or any dhow command line (split into words like a shell does: quotes
#                            and backslashes, no expansion). preview = `preview deploy` (the
#                            rails, the sticky comment), preview-remove = `preview remove`, both
#                            with DHOW_PREVIEW_PR (the event's pull request); sweep = `preview sweep`
#   INPUT_PULL_REQUEST       github.event.pull_request.number (for the preview shorthands)
#   INPUT_CONFIG_FILE        --config-file
#   INPUT_DESTINATION        --destination
#   INPUT_VERSION            --version (the app version)
#   INPUT_SSH_PRIVATE_KEY    DHOW_SSH_PRIVATE_KEY
#   INPUT_KNOWN_HOSTS        known_hosts lines (or the path of a known_hosts file) -> DHOW_KNOWN_HOSTS
#   INPUT_SSH_FINGERPRINT    DHOW_SSH_FINGERPRINTS
#   INPUT_GITHUB_TOKEN       GITHUB_TOKEN
#   INPUT_ENVIRONMENT        DHOW_ENVIRONMENT
#   INPUT_ENVIRONMENT_URL    DHOW_ENVIRONMENT_URL
#   INPUT_LOCK_WAIT          DHOW_LOCK_WAIT, in seconds (the input also takes 90s, 10m, 1h)
#   INPUT_JOB_CHECK_RUN_ID   DHOW_JOB_CHECK_RUN_ID (the job's check run id, for the job page link)
#   INPUT_WORKING_DIRECTORY  the directory dhow runs in
set -euo pipefail

fail() {
  local message=${1//%/%25}
  message=${message//$'\n'/%0A}
  printf '::error title=dhow action::%s\n' "$message"
  exit 1
}

dhow=${DHOW_BIN:-}
[[ -n $dhow && -x $dhow ]] || fail "the dhow binary is missing (DHOW_BIN='$dhow'): the setup step did not run or failed"

# The command line, split into words without any expansion (xargs honours quotes and backslashes).
command_line=${INPUT_COMMAND:-}
[[ -n ${command_line//[[:space:]]/} ]] || command_line=deploy
words_file=$(mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/dhow-command.XXXXXX")
if ! printf '%s\n' "$command_line" | xargs printf '%s\0' >"$words_file" 2>"$words_file.err"; then
  fail "cannot split the command input into words: $(cat "$words_file.err")"
fi
words=()
while IFS= read -r -d '' word; do
  words+=("$word")
done <"$words_file"
rm -f "$words_file" "$words_file.err"
# `dhow deploy` and `deploy` mean the same.
if [[ ${#words[@]} -gt 0 && ${words[0]} == dhow ]]; then
  words=("${words[@]:1}")
fi
[[ ${#words[@]} -gt 0 ]] || words=(deploy)

# The preview shorthands act on the pull request of the event (docs/previews.md): dhow's
# `--preview N` is taken from DHOW_PREVIEW_PR. Words after the shorthand are kept.
case ${words[0]} in
  preview | preview-remove)
    pull_request=${DHOW_PREVIEW_PR:-${INPUT_PULL_REQUEST:-}}
    [[ $pull_request =~ ^[0-9]+$ ]] ||
      fail "command '${words[0]}' needs a pull_request event (or DHOW_PREVIEW_PR set to the pull request number)"
    export DHOW_PREVIEW_PR=$pull_request
    if [[ ${words[0]} == preview ]]; then
      words=(preview deploy "${words[@]:1}")
    else
      words=(preview remove "${words[@]:1}")
    fi
    ;;
  sweep) words=(preview sweep "${words[@]:1}") ;;
esac

# Global options go before the subcommand, so they can never end up in a command's trailing words.
globals=()
[[ -z ${INPUT_CONFIG_FILE:-} ]] || globals+=(--config-file "$INPUT_CONFIG_FILE")
[[ -z ${INPUT_DESTINATION:-} ]] || globals+=(--destination "$INPUT_DESTINATION")
[[ -z ${INPUT_VERSION:-} ]] || globals+=(--version "$INPUT_VERSION")

# Secrets and host keys travel in the environment, never in argv.
: "${INPUT_SSH_PRIVATE_KEY:=}" "${INPUT_KNOWN_HOSTS:=}" "${INPUT_SSH_FINGERPRINT:=}"
if [[ -n ${INPUT_SSH_PRIVATE_KEY//[[:space:]]/} ]]; then
  export DHOW_SSH_PRIVATE_KEY=$INPUT_SSH_PRIVATE_KEY
fi
if [[ -n ${INPUT_KNOWN_HOSTS//[[:space:]]/} ]]; then
  if [[ $INPUT_KNOWN_HOSTS != *$'\n'* && -f $INPUT_KNOWN_HOSTS ]]; then
    known_hosts=$INPUT_KNOWN_HOSTS
  else
    known_hosts=$(mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/dhow-known-hosts.XXXXXX")
    chmod 0600 "$known_hosts"
    printf '%s\n' "$INPUT_KNOWN_HOSTS" >"$known_hosts"
  fi
  export DHOW_KNOWN_HOSTS=$known_hosts
fi
if [[ -n ${INPUT_SSH_FINGERPRINT//[[:space:]]/} ]]; then
  export DHOW_SSH_FINGERPRINTS=$INPUT_SSH_FINGERPRINT
fi
[[ -z ${INPUT_GITHUB_TOKEN:-} ]] || export GITHUB_TOKEN=$INPUT_GITHUB_TOKEN
[[ -z ${INPUT_ENVIRONMENT:-} ]] || export DHOW_ENVIRONMENT=$INPUT_ENVIRONMENT
[[ -z ${INPUT_ENVIRONMENT_URL:-} ]] || export DHOW_ENVIRONMENT_URL=$INPUT_ENVIRONMENT_URL
# lock-wait: seconds, or a number with s, m or h; dhow reads seconds.
lock_wait=${INPUT_LOCK_WAIT:-}
lock_wait=${lock_wait//[[:space:]]/}
if [[ -n $lock_wait ]]; then
  case $lock_wait in
    *[0-9]) seconds=$lock_wait ;;
    *s) seconds=${lock_wait%s} ;;
    *m) seconds=${lock_wait%m}; [[ $seconds =~ ^[0-9]+$ ]] && seconds=$((10#$seconds * 60)) ;;
    *h) seconds=${lock_wait%h}; [[ $seconds =~ ^[0-9]+$ ]] && seconds=$((10#$seconds * 3600)) ;;
    *) seconds='' ;;
  esac
  [[ $seconds =~ ^[0-9]+$ ]] ||
    fail "lock-wait must be a number of seconds, or a number with s, m or h (e.g. 600, 10m), got '$INPUT_LOCK_WAIT'"
  export DHOW_LOCK_WAIT=$((10#$seconds))
fi
[[ -z ${INPUT_JOB_CHECK_RUN_ID:-} ]] || export DHOW_JOB_CHECK_RUN_ID=$INPUT_JOB_CHECK_RUN_ID

if [[ -n ${INPUT_WORKING_DIRECTORY:-} ]]; then
  cd "$INPUT_WORKING_DIRECTORY" || fail "working-directory '$INPUT_WORKING_DIRECTORY' does not exist"
fi

# The inputs have been handed over: don't pass a second copy of the key or token to dhow.
unset INPUT_SSH_PRIVATE_KEY INPUT_GITHUB_TOKEN DHOW_BIN

exec "$dhow" ${globals[@]+"${globals[@]}"} "${words[@]}"
