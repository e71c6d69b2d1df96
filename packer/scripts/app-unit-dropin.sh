#!/usr/bin/env bash
# Prints the drop-in that gives app.service what the image build chose: its start command and default port.
# Usage: app-unit-dropin.sh START_COMMAND APP_PORT
# provision.sh installs the output as /etc/systemd/system/app.service.d/image.conf; tests render it the same way.
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 START_COMMAND APP_PORT" >&2
  exit 2
fi
start_command=$1
app_port=$2

if [[ "$start_command" != /* ]]; then
  echo "start command must begin with an absolute path, got: $start_command" >&2
  exit 2
fi
if [[ "$start_command" == *$'\n'* ]]; then
  echo "start command must be one line" >&2
  exit 2
fi
if ! [[ "$app_port" =~ ^[0-9]+$ ]] || ((app_port < 1 || app_port > 65535)); then
  echo "app port must be a number from 1 to 65535, got: $app_port" >&2
  exit 2
fi

# systemd expands %-specifiers in ExecStart; a literal % must be doubled. ${VAR} is left to systemd on purpose: it
# expands from the environment (app.env), e.g. --server.port=${APP_PORT}.
cat <<UNIT
# Written at image build by packer/scripts/provision.sh. Settings in /etc/app/app.env override this APP_PORT.
[Service]
Environment=APP_PORT=${app_port}
ExecStart=
ExecStart=${start_command//%/%%}
UNIT
