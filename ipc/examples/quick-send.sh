#!/bin/sh
# Send an SMS through glosmsd with socat: quick-send.sh NUMBER-OR-NAME TEXT
# Prints the daemon's reply line (the stored message, state "sending", or an error).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 NUMBER-OR-NAME TEXT" >&2; exit 2; }
sock="${GLOSMSD_SOCKET:-${XDG_RUNTIME_DIR:-/tmp/glosmsd-$(id -u)}/glosmsd/socket}"
# JSON-escape with python3 if present; a plain text without quotes or backslashes also works.
json() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
printf '{"jsonrpc":"2.0","id":1,"method":"send","params":{"to":%s,"text":%s}}\n' \
  "$(json "$1")" "$(json "$2")" | socat -t 10 - "UNIX-CONNECT:$sock"
