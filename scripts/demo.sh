#!/usr/bin/env bash
# make demo: build, start keymint, apply examples/quickstart, verify the keys.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/.demo
step=""
server_pid=""

# The terraform make found (TERRAFORM=/path/to/terraform, else the one on PATH).
terraform() { "${TERRAFORM:-terraform}" "$@"; }
say()  { printf '\n==> %s\n' "$*"; }
begin() { step=$1; say "$1"; }
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
on_exit() {
  status=$?
  stop_server
  if [ $status -ne 0 ]; then
    printf '\nDEMO FAILED at step: %s (exit %d)\n' "$step" "$status" >&2
    [ -f "$work/keymint.log" ] && { echo "--- last server log lines:" >&2; tail -n 20 "$work/keymint.log" >&2; }
  fi
}
trap on_exit EXIT

begin "1/6 build keymint and terraform-provider-keymint"
make --no-print-directory build VERSION=0.1.0

begin "2/6 start keymint serve (SQLite in .demo/, a generated root token, a free loopback port)"
rm -rf "$work"
mkdir -p "$work"
export KEYMINT_ROOT_TOKEN="demo_root_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$root/bin/keymint" serve --addr 127.0.0.1:0 --addr-file "$work/addr" --db "sqlite:$work/keymint.db" \
  >"$work/keymint.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "keymint exited early" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/addr" ] || { echo "keymint did not start listening" >&2; exit 1; }
export KEYMINT_ENDPOINT="http://$(cat "$work/addr")"
export KEYMINT_TOKEN="$KEYMINT_ROOT_TOKEN"
echo "keymint listening on $KEYMINT_ENDPOINT (log: .demo/keymint.log); its portal is $KEYMINT_ENDPOINT/ui/ while it runs"

begin "3/6 install the provider and hashicorp/time into a local filesystem mirror"
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(go run ./tools/tfmirror -dir "$root/.tfmirror" -provider "$root/bin/terraform-provider-keymint" -version 0.1.0)
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
echo "TF_CLI_CONFIG_FILE=$TF_CLI_CONFIG_FILE"

begin "4/6 terraform init and apply examples/quickstart"
cp -r examples/quickstart "$work/quickstart"
cd "$work/quickstart"
terraform init -input=false -no-color >/dev/null
terraform apply -input=false -auto-approve -no-color | grep -E '^Apply complete' || true
for name in reader writer rotated; do
  printf '%-14s %s...\n' "$name" "$(terraform output -raw ${name}_start)"
done

begin "5/6 verify the keys against the running server"
verify() { # output-name scopes resource expected
  terraform output -raw "$1_secret" | "$root/bin/keymint" verify --scopes "$2" ${3:+--resource "$3"} --expect "$4"
}
verify reader  read:data             ""      VALID
verify reader  write:data            ""      INSUFFICIENT_SCOPE
verify writer  read:data,write:data  vault-1 VALID
verify writer  write:data            vault-2 FORBIDDEN_RESOURCE
verify rotated read:data             ""      VALID

say "a second terraform plan must have no changes"
set +e
terraform plan -input=false -detailed-exitcode -no-color >"$work/plan.txt" 2>&1
plan_status=$?
set -e
case $plan_status in
  0) echo "No changes: the infrastructure matches the configuration." ;;
  2) cat "$work/plan.txt"; echo "the second plan is not empty" >&2; exit 1 ;;
  *) cat "$work/plan.txt"; exit "$plan_status" ;;
esac

begin "6/6 stop the server"
cd "$root"
stop_server
grep -q 'msg=stopped' "$work/keymint.log" || { echo "keymint did not shut down cleanly" >&2; exit 1; }
echo "keymint stopped cleanly. State and database are in .demo/ (git-ignored)."
say "demo complete"
