#!/bin/sh
# `wuyiqu` for the administrator: the installed command, run as the wuyiqu user with the services'
# environment file, in their working directory. Install as /usr/local/sbin/wuyiqu (docs/deploy.md):
#     wuyiqu migrate        wuyiqu createsuperuser        wuyiqu supervise --date 2022-11-20
set -eu
ENV_FILE=${WUYIQU_ENV_FILE:-/etc/wuyiqu/wuyiqu.env}
VENV=${WUYIQU_VENV:-/opt/wuyiqu/venv}
if [ "$(id -u)" != 0 ]; then
    echo "run as root (sudo wuyiqu ...): it reads $ENV_FILE and becomes the wuyiqu user" >&2
    exit 2
fi
set -a
. "$ENV_FILE"
set +a
cd "${WUYIQU_DATA_DIR:-/var/lib/wuyiqu}"
case "${1:-}" in
    collectstatic) umask 0022 ;;  # nginx (www-data) serves these files
    *) umask 0027 ;;  # uploads, backups: personal data, for the wuyiqu user and group only
esac
exec runuser -u wuyiqu -- "$VENV/bin/wuyiqu" "$@"
