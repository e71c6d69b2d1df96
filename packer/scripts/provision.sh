#!/usr/bin/env bash
# Turns a fresh Ubuntu LTS build server into the application image. Run by Packer as root (app-image.pkr.hcl) after
# it uploaded the artifact to /tmp/app-artifact, packer/files/ to /tmp/image-files and app-unit-dropin.sh to /tmp.
#
# The image gets no credentials and no per-environment value: each stack hands its settings to the server at boot in
# /etc/app/app.env (infra/user_data.py). To bake in one more file or unit, put it in packer/files/ and install it
# below next to app.service.
set -euo pipefail

: "${RUNTIME_PACKAGES:?space-separated Debian packages the app needs at run time}"
: "${APP_FILE_NAME:?file name of the artifact under /opt/app}"
: "${APP_START_COMMAND:?the systemd ExecStart of app.service}"
: "${APP_MIGRATE_COMMAND:?the schema migration command that app-migrate runs}"
: "${APP_PORT:?the default port of the app}"

export DEBIAN_FRONTEND=noninteractive
apt_get() {
  # The build server's first boot may still be running unattended-upgrades: wait for the dpkg lock, don't fail.
  apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"
}

# Let cloud-init finish its first boot (it writes apt sources and SSH keys) before touching packages.
cloud-init status --wait >/dev/null || true

echo "provision: OS updates"
apt_get update
apt_get -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade

read -r -a packages <<<"$RUNTIME_PACKAGES"
echo "provision: runtime ${packages[*]}"
apt_get install --no-install-recommends "${packages[@]}"

echo "provision: the app user and /opt/app"
if ! id app >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /opt/app --no-create-home --shell /usr/sbin/nologin app
fi
# The artifact is owned by root and only readable and runnable by the app: the app cannot rewrite its own code.
install -d -o root -g app -m 0750 /opt/app
install -o root -g app -m 0750 /tmp/app-artifact "/opt/app/${APP_FILE_NAME}"
# Filled at boot from the user data; root-only because later settings may name secrets.
install -d -o root -g root -m 0755 /etc/app

echo "provision: the boot helper that fetches the database password from KMS (app.service's ExecStartPre)"
apt_get install --no-install-recommends python3-venv
install -d -o root -g root -m 0755 /opt/app-secrets
python3 -m venv /opt/app-secrets/venv
/opt/app-secrets/venv/bin/pip install --no-cache-dir --disable-pip-version-check --quiet \
  -r /tmp/image-files/app-secrets-requirements.txt
install -o root -g root -m 0644 /tmp/image-files/app_secrets.py /opt/app-secrets/app_secrets.py
# The helper imports its SDKs only when it runs: check now that they load, not at the first boot of a server.
/opt/app-secrets/venv/bin/python -c 'import alibabacloud_credentials.client, alibabacloud_oos20190601.client'
/opt/app-secrets/venv/bin/python /opt/app-secrets/app_secrets.py --help >/dev/null

echo "provision: app.service"
install -o root -g root -m 0644 /tmp/image-files/app.service /etc/systemd/system/app.service
install -d -o root -g root -m 0755 /etc/systemd/system/app.service.d
bash /tmp/app-unit-dropin.sh "$APP_START_COMMAND" "$APP_PORT" >/etc/systemd/system/app.service.d/image.conf
chmod 0644 /etc/systemd/system/app.service.d/image.conf
systemd-analyze verify /etc/systemd/system/app.service
systemctl daemon-reload
systemctl enable app.service

echo "provision: app-migrate, the release's database step (runs migrate_command as the app user)"
if [[ "$APP_MIGRATE_COMMAND" == *$'\n'* ]]; then
  echo "the migrate command must be one line" >&2
  exit 2
fi
install -o root -g root -m 0755 /tmp/image-files/app-migrate /usr/local/bin/app-migrate
printf '%s\n' "$APP_MIGRATE_COMMAND" >/etc/app/migrate.command
chmod 0644 /etc/app/migrate.command
bash -n /usr/local/bin/app-migrate

echo "provision: clean up"
apt_get autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/app-artifact /tmp/image-files /tmp/app-unit-dropin.sh
# Nothing of this build server may reach the app servers: its settings file (there is none, but be sure), the SSH
# key Packer logged in with, its machine identity and cloud-init's record of it, so that every server made from the
# image runs its own user data and gets its own machine-id and SSH host keys.
rm -f /etc/app/app.env /root/.ssh/authorized_keys /etc/ssh/ssh_host_*
cloud-init clean --logs
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
journalctl --rotate >/dev/null && journalctl --vacuum-time=1s >/dev/null
