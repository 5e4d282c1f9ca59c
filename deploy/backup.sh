#!/usr/bin/env bash
# Scheduled backups: one `simutrador-gateway admin backup` into BACKUP_DIR, named by
# the UTC time, then the oldest beyond KEEP are removed. Run it as the user that runs
# the gateway, with the same configuration (it reads the database URL and data_dir
# from it). Safe while the gateway serves. Exits non-zero when the backup failed, so
# cron mail or the systemd unit's state shows it.
#
#   deploy/backup.sh
#
# Environment (defaults in brackets):
#   GATEWAY     the gateway binary [simutrador-gateway on PATH]
#   CONFIG      its --config file [none: defaults and SIMUTRADOR__* variables]
#   BACKUP_DIR  where backups go, created mode 0700 [/var/backups/simutrador]
#   KEEP        backups kept in BACKUP_DIR [14]
#   UPLOAD      a command run with the new file as its last argument, to copy it off
#               this host (e.g. a small script around scp, rclone or aws s3 cp) [none]
#
# Postgres needs pg_dump on this host (Debian: postgresql-client), of the server's
# major version or newer.
#
# cron (hourly, at minute 17):
#   17 * * * * CONFIG=/etc/simutrador/gateway.toml /opt/simutrador/deploy/backup.sh
# systemd: simutrador-backup.service (Type=oneshot, User=simutrador,
#   Environment=CONFIG=/etc/simutrador/gateway.toml,
#   ExecStart=/opt/simutrador/deploy/backup.sh) and simutrador-backup.timer
#   (OnCalendar=hourly, Persistent=true; WantedBy=timers.target).

set -euo pipefail

GATEWAY=${GATEWAY:-simutrador-gateway}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/simutrador}
KEEP=${KEEP:-14}
CONFIG=${CONFIG:-}
UPLOAD=${UPLOAD:-}

if ! [[ $KEEP =~ ^[1-9][0-9]*$ ]]; then
    echo "backup.sh: KEEP must be a positive number, not \`$KEEP'" >&2
    exit 2
fi

# Backups hold secrets: nothing created here is readable by others.
umask 077
mkdir -p "$BACKUP_DIR"
chmod 700 "$BACKUP_DIR"

# One run at a time (a slow dump must not overlap the next one).
exec 9>"$BACKUP_DIR/.lock"
if ! flock -n 9; then
    echo "backup.sh: another backup into $BACKUP_DIR is still running" >&2
    exit 1
fi

file="$BACKUP_DIR/simutrador-$(date -u +%Y%m%dT%H%M%SZ).tar"
args=()
if [[ -n $CONFIG ]]; then
    args+=(--config "$CONFIG")
fi
"$GATEWAY" "${args[@]}" admin backup --to "$file"

if [[ -n $UPLOAD ]]; then
    # Word-split on purpose: UPLOAD is a command with its options.
    # shellcheck disable=SC2086
    $UPLOAD "$file"
fi

# Names sort by time; keep the newest KEEP.
mapfile -t old < <(find "$BACKUP_DIR" -maxdepth 1 -name 'simutrador-*.tar' -type f | sort | head -n -"$KEEP")
if ((${#old[@]} > 0)); then
    rm -f -- "${old[@]}"
fi
