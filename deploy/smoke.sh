#!/usr/bin/env bash
# Smoke test of a built image: `serve` in the container against a fake Bot API
# (cmd/fakebotapi) on this machine's loopback; users' messages go in through
# the webhook (or getUpdates with SMOKE_MODE=polling) and must be answered.
#   deploy/smoke.sh [IMAGE]        (default dialogbot:cpu)
# Env: MODEL_DIR (an exported model; default: ../shared/models/nano-ru exported
# with export.py into build/smoke-model), ENGINE (podman), SMOKE_MODE (webhook),
# PYTHON (a Python with torch, for the export), SMOKE_POSTGRES: auto (default:
# PostgreSQL from scripts/postgres-test-cluster.sh when the image knows
# storage.url and initdb is here, else SQLite), 1 (PostgreSQL or fail), 0 (SQLite).
# The container shares the host's network namespace and everything listens on
# 127.0.0.1 only. Exit status 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-dialogbot:cpu}
engine=${ENGINE:-podman}
mode=${SMOKE_MODE:-webhook}
wait_s=${SMOKE_WAIT:-300} # model load plus the first replies, on a busy 2-core machine
work=$(mktemp -d /var/tmp/dialogbot-smoke.XXXXXX)
name=dialogbot-smoke-$$
fake_pid="" pg_url=""
cleanup() {
  "$engine" rm -f "$name" >/dev/null 2>&1 || true
  if [ -n "$pg_url" ]; then scripts/postgres-test-cluster.sh stop "$pg_url" || true; fi
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "SMOKE FAIL: $*" >&2
  if "$engine" container exists "$name" 2>/dev/null; then "$engine" logs "$name" 2>&1 | tail -30 >&2; fi
  exit 1
}
step() { printf '%s  %s\n' "$(date -u +%T)" "$*" >&2; }

model_dir() {
  if [ -n "${MODEL_DIR:-}" ]; then echo "$MODEL_DIR"; return; fi
  local shared=${DIALOGBOT_SHARED:-../shared} py=${PYTHON:-/usr/bin/python3}
  if [ ! -f build/smoke-model/dialogbot.json ]; then
    [ -d "$shared/models/nano-ru" ] || { echo "SKIP: no MODEL_DIR and no $shared/models/nano-ru to export" >&2; exit 0; }
    (cd / && "$py" -c 'import torch') || { echo "SKIP: $py cannot import torch (set PYTHON or MODEL_DIR)" >&2; exit 0; }
    "$py" model/python/export.py --hf "$shared/models/nano-ru" --out build/smoke-model >&2
  fi
  echo build/smoke-model
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_fake() {
  go build -o bin/fakebotapi ./cmd/fakebotapi
  bin/fakebotapi >"$work/fake.out" 2>"$work/fake.err" &
  fake_pid=$!
  for _ in $(seq 50); do grep -q '^token=' "$work/fake.out" 2>/dev/null && break; sleep 0.1; done
  api_url=$(sed -n 's/^api_url=//p' "$work/fake.out")
  ctl=$(sed -n 's/^control_url=//p' "$work/fake.out")
  token=$(sed -n 's/^token=//p' "$work/fake.out")
  [ -n "$token" ] || fail "fakebotapi did not start: $(cat "$work/fake.err")"
}

# write_config writes the container's config.toml; [ops] only where the image's
# own config example has that section (the /healthz listener).
write_config() {
  hook_port=$(free_port) ops_port=$(free_port)
  mkdir -p "$work/etc" "$work/state"
  cat >"$work/etc/config.toml" <<EOF
[telegram]
api_url = "$api_url"
mode = "$mode"
webhook_listen = "127.0.0.1:$hook_port"
webhook_path = "/telegram"
webhook_url = "http://127.0.0.1:$hook_port/telegram"
webhook_secret = "smoke-$$-$RANDOM"
greeting = "smoke greeting"
[model]
path = "/models"
device = "cpu"
threads = 2
slots = 6
max_context = 256
[generation]
seed = 1
timeout = "120s"
[storage]
path = "/var/lib/dialogbot/dialogbot.db"
EOF
  if [ -n "$pg_url" ]; then printf 'url = "%s"\n' "$pg_url" >>"$work/etc/config.toml"; fi
  if [ "$has_ops" = 1 ]; then printf '[ops]\nlisten = "127.0.0.1:%s"\n' "$ops_port" >>"$work/etc/config.toml"; fi
  chmod 755 "$work/etc" && chmod 644 "$work/etc/config.toml"
  chown 10001:10001 "$work/state" # the image's user
}

say() { # chat text
  curl -fsS -X POST "$ctl/message" -d "{\"chat_id\": $1, \"text\": \"$2\"}" >/dev/null || fail "POST /message to chat $1"
}

wait_sent() { # chat count
  local deadline=$((SECONDS + wait_s)) n=0
  while [ $SECONDS -lt $deadline ]; do
    n=$(curl -fsS "$ctl/sent?chat_id=$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [ "$n" -ge "$2" ] && return 0
    running || fail "the container stopped"
    sleep 1
  done
  fail "chat $1: $n of $2 replies within ${wait_s}s"
}

running() { [ "$("$engine" inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; }

wait_webhook() {
  local deadline=$((SECONDS + wait_s))
  until [ "$(curl -fsS "$ctl/webhook")" != "null" ]; do
    [ $SECONDS -lt $deadline ] || fail "no setWebhook within ${wait_s}s"
    running || fail "the container stopped"
    sleep 1
  done
}

model=$(cd "$(model_dir)" && pwd)
{ read -r global; read -r local; } < <(ENGINE=$engine deploy/runtime-args.sh "$image")
# image_has REGEX: the image's own config example has a line matching REGEX
# (what this build of dialogbot knows).
image_has() {
  # shellcheck disable=SC2086 # the flags hold no spaces
  "$engine" $global run --rm --network=none $local --entrypoint grep "$image" -q "$1" /etc/dialogbot/config.toml.example 2>/dev/null
}

# start_postgres sets pg_url to a throwaway cluster, when asked and possible.
start_postgres() {
  local want=${SMOKE_POSTGRES:-auto} why=""
  [ "$want" = 0 ] && return 0
  if ! image_has '^url = '; then
    why="the image has no storage.url"
  elif ! pg_url=$(scripts/postgres-test-cluster.sh start); then
    pg_url="" why="no PostgreSQL cluster (scripts/postgres-test-cluster.sh)"
  fi
  if [ -n "$why" ]; then
    [ "$want" = 1 ] && fail "SMOKE_POSTGRES=1, but $why"
    step "storage: SQLite ($why)"
  fi
}

has_ops=0
image_has '^\[ops\]' && has_ops=1
start_postgres
start_fake
write_config
step "start $image ($mode mode, model $model, storage $([ -n "$pg_url" ] && echo PostgreSQL || echo SQLite), /healthz: $([ $has_ops = 1 ] && echo yes || echo 'not in this build'))"
t0=$SECONDS
# shellcheck disable=SC2086
"$engine" $global run -d --name "$name" --network=host $local \
  -v "$model:/models:ro" -v "$work/etc:/etc/dialogbot:ro" -v "$work/state:/var/lib/dialogbot" \
  -e TELEGRAM_BOT_TOKEN="$token" -e DIALOGBOT_HEALTH_URL="http://127.0.0.1:$ops_port/healthz" "$image" \
  >/dev/null 2>"$work/podman.err" || fail "podman run: $(cat "$work/podman.err")"
[ "$mode" = webhook ] && { wait_webhook; step "webhook set after $((SECONDS - t0)) s"; }
say 1001 "/start"
say 1001 "Привет! Как дела?"
say 1002 "Что ты делаешь вечером?"
wait_sent 1001 2
wait_sent 1002 1
step "3 answers after $((SECONDS - t0)) s"
curl -fsS "$ctl/sent" | python3 -c '
import json, sys
for m in json.load(sys.stdin): print("  chat %d <- %r" % (m["ChatID"], m["Text"]))' >&2
[ "$(curl -fsS "$ctl/sent?chat_id=1001" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Text"])')" = "smoke greeting" ] ||
  fail "the first answer to chat 1001 is not the /start greeting"
curl -fsS "$ctl/sent" | grep -q 'что-то пошло не так' && fail "the bot sent its apology: generation failed"
[ "$(curl -fsS "$ctl/errors")" = "[]" ] || fail "the fake Bot API saw calls it could not answer: $(curl -fsS "$ctl/errors")"
uid=$("$engine" exec "$name" id -u)
[ "$uid" = 10001 ] || fail "runs as uid $uid, want 10001"
if [ -z "$pg_url" ]; then
  [ -s "$work/state/dialogbot.db" ] || fail "no SQLite file in the state volume"
else
  [ ! -e "$work/state/dialogbot.db" ] || fail "a SQLite file in the state volume, though storage.url is set"
  tables=$(psql "$pg_url" -Atc "select count(*) from information_schema.tables where table_schema = 'public'")
  [ "$tables" -gt 0 ] || fail "storage.url is set, but PostgreSQL has no tables"
  step "PostgreSQL holds $tables tables; no SQLite file"
fi
if [ "$has_ops" = 1 ]; then
  curl -fsS "http://127.0.0.1:$ops_port/healthz" >/dev/null || fail "/healthz is not ready"
  "$engine" healthcheck run "$name" >/dev/null 2>&1 || fail "the image's HEALTHCHECK fails"
  curl -fsS "http://127.0.0.1:$ops_port/metrics" | grep -q '^# TYPE' || fail "/metrics has no Prometheus text"
  step "/healthz ready, /metrics served"
fi
blas=$("$engine" logs "$name" 2>&1 | grep -o 'BLAS: [^;]*' | head -1)
case "$blas" in *openblas*) step "$blas" ;; *) fail "libtorch does not use OpenBLAS: ${blas:-no BLAS line in the log}" ;; esac
"$engine" stop -t 20 "$name" >/dev/null 2>&1
code=$("$engine" inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit status $code after SIGTERM"
step "stopped by SIGTERM, exit status 0; runs as uid 10001"
echo "SMOKE OK: $image answered 3 messages in $mode mode"
