#!/usr/bin/env bash
# Every step of docs/deploy.md, on this Debian machine, as root: PostgreSQL and nginx from Debian's
# packages, the wuyiqu system user, the virtualenv and the project installed into it, the environment
# file, migrate / collectstatic / createcachetable / the first administrator, the two systemd units
# (deploy/wuyiqu-web.service, deploy/wuyiqu-worker.service) and the nginx site (deploy/nginx-wuyiqu.conf),
# a backup, then scripts/deploy_smoke.py through nginx. Safe to run again: what exists is kept (secrets,
# the database, the administrator), the code is installed again and the services restarted.
#
#   bash scripts/deploy-debian.sh [--python /usr/bin/python3] [--server-name localhost]
#                                 [--http-port 80] [--https-port 443] [--db-name wuyiqu_deploy]
#   bash scripts/deploy-debian.sh --teardown     stop everything it started and remove what it made
#                                                (database and backups included: for test machines)
#
# Without systemd as PID 1 (containers, this machine) PostgreSQL is started with pg_ctlcluster, nginx
# directly, and the two units by scripts/deploy_units.py, which runs the ExecStart, User, Group,
# WorkingDirectory, EnvironmentFile and Environment of the installed unit files. With systemd the same
# steps use systemctl (see docs/deploy.md).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
SERVER_NAME=localhost
HTTP_PORT=80
HTTPS_PORT=443
DB_NAME=wuyiqu_deploy
TEARDOWN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON=$2; shift 2 ;;
    --server-name) SERVER_NAME=$2; shift 2 ;;
    --http-port) HTTP_PORT=$2; shift 2 ;;
    --https-port) HTTPS_PORT=$2; shift 2 ;;
    --db-name) DB_NAME=$2; shift 2 ;;
    --teardown) TEARDOWN=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done

# The places of docs/deploy.md.
APP_USER=wuyiqu
OPT=/opt/wuyiqu
VENV=$OPT/venv
ETC=/etc/wuyiqu
ENV_FILE=$ETC/wuyiqu.env
ADMIN_PASSWORD_FILE=$ETC/deploy-admin-password  # this script's administrator, for the smoke test
DATA=/var/lib/wuyiqu
TLS=/etc/ssl/wuyiqu
UNITS=/etc/systemd/system
NGINX_SITE=/etc/nginx/sites-available/wuyiqu
ADMIN_WRAPPER=/usr/local/sbin/wuyiqu
UNIT_RUNNER=(python3 "$SRC/scripts/deploy_units.py")

started=$(date +%s)
step() { echo; echo "[deploy] === $* ($(( $(date +%s) - started )) s)"; }
say() { echo "[deploy] $*"; }
have_systemd() { [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

nginx_running() { [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; }

service_do() {  # service_do start|stop|restart UNIT_NAME
  if have_systemd; then systemctl "$1" "$2"; else "${UNIT_RUNNER[@]}" "$1" "$UNITS/$2.service"; fi
}

# --- teardown --------------------------------------------------------------------------------------
if [ "$TEARDOWN" = 1 ]; then
  step "teardown"
  for unit in wuyiqu-worker wuyiqu-web; do
    [ -f "$UNITS/$unit.service" ] && service_do stop "$unit" || true
    rm -f "$UNITS/$unit.service"
  done
  rm -f /etc/nginx/sites-enabled/wuyiqu "$NGINX_SITE"
  if [ -f /etc/nginx/sites-available/default ] && [ ! -e /etc/nginx/sites-enabled/default ]; then
    ln -s /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default  # Debian's, as it was
  fi
  if nginx_running; then nginx -s reload; fi
  if command -v psql >/dev/null && runuser -u postgres -- psql -XtAc 'select 1' >/dev/null 2>&1; then
    runuser -u postgres -- dropdb --if-exists "$DB_NAME"
    if [ -z "$(runuser -u postgres -- psql -XtAc "select 1 from pg_database d join pg_roles r on r.oid = d.datdba where r.rolname = '$APP_USER'")" ]; then
      runuser -u postgres -- dropuser --if-exists "$APP_USER"
    fi
  fi
  rm -rf "$OPT" "$ETC" "$DATA" "$TLS" "$ADMIN_WRAPPER" /var/log/wuyiqu /run/wuyiqu-units /var/backups/wuyiqu
  if id "$APP_USER" >/dev/null 2>&1; then userdel "$APP_USER"; fi
  getent group "$APP_USER" >/dev/null && groupdel "$APP_USER" || true
  say "removed (PostgreSQL and nginx stay installed and running)"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

# --- 1. Debian packages ----------------------------------------------------------------------------
step "1. Debian packages: postgresql, nginx, python3-venv, openssl"
missing=()
for pkg in postgresql nginx python3-venv openssl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "already installed: postgresql $(pg_version), $(nginx -v 2>&1 | cut -d/ -f2), $($PYTHON --version)"
fi

# --- 2. PostgreSQL running -------------------------------------------------------------------------
step "2. PostgreSQL"
version=$(pg_version)
if have_systemd; then
  systemctl enable --now postgresql
elif ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
  say "starting cluster $version/main (no systemd: pg_ctlcluster)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 30); do runuser -u postgres -- psql -XtAc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
say "$(runuser -u postgres -- psql -XtAc 'show server_version')"

# --- 3. the system user and its directories --------------------------------------------------------
step "3. system user $APP_USER, $OPT (code, root's), $DATA (data, $APP_USER's), $ETC (secrets)"
if ! id "$APP_USER" >/dev/null 2>&1; then
  adduser --system --group --home "$DATA" --no-create-home --shell /usr/sbin/nologin \
    --gecos "wuyiqu 无疫区" "$APP_USER"
fi
install -d -o root -g root -m 0755 "$OPT"
install -d -o "$APP_USER" -g "$APP_USER" -m 0711 "$DATA"  # nginx may pass through to static/ only
install -d -o "$APP_USER" -g "$APP_USER" -m 0755 "$DATA/static"
install -d -o root -g "$APP_USER" -m 0750 "$ETC"
say "$(id "$APP_USER")"

# --- 4. database and role --------------------------------------------------------------------------
step "4. PostgreSQL role $APP_USER and database $DB_NAME"
if [ -z "$(runuser -u postgres -- psql -XtAc "select 1 from pg_roles where rolname = '$APP_USER'")" ]; then
  runuser -u postgres -- createuser "$APP_USER"
fi
if [ -z "$(runuser -u postgres -- psql -XtAc "select 1 from pg_database where datname = '$DB_NAME'")" ]; then
  runuser -u postgres -- createdb -O "$APP_USER" -E UTF8 -T template0 "$DB_NAME"
fi
say "$(runuser -u "$APP_USER" -- psql -h /var/run/postgresql -d "$DB_NAME" -XtAc 'select current_user || '' on '' || current_database()')"

# --- 5. virtualenv and the project -----------------------------------------------------------------
step "5. virtualenv $VENV ($PYTHON) and pip install of the project"
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print(sys.version_info[:2])')" != "$("$PYTHON" -c 'import sys; print(sys.version_info[:2])')" ]; then
  say "the virtualenv was made with another Python: making it again"
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# A release is what is committed: `git archive` of HEAD (docs/deploy.md installs a release the same way).
release=$(mktemp -d /tmp/wuyiqu-release.XXXXXX)
trap 'rm -rf "$release"' EXIT
if git -C "$SRC" rev-parse HEAD >/dev/null 2>&1; then
  git -C "$SRC" archive --format=tar HEAD | tar -x -C "$release"
  say "release: $(git -C "$SRC" log -1 --format='%h %s' | cut -c1-100)"
else
  tar -C "$SRC" --exclude=.venv --exclude=var --exclude='*.egg-info' -cf - . | tar -x -C "$release"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$release" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
say "installed: $("$VENV/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -Ei '^(wuyiqu|django|gunicorn|django-tasks[a-z-]*|whitenoise) ' | tr -s ' ' | paste -sd, -)"
install -o root -g root -m 0755 "$SRC/deploy/wuyiqu-admin.sh" "$ADMIN_WRAPPER"

# --- 6. the environment file -----------------------------------------------------------------------
step "6. environment file $ENV_FILE"
if [ ! -f "$ENV_FILE" ]; then
  secret_key=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(50))')
  data_key=$("$PYTHON" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
  sed -e "s|^DATABASE_URL=.*|DATABASE_URL=postgres://$APP_USER@%2Fvar%2Frun%2Fpostgresql/$DB_NAME|" \
      -e "s|^WUYIQU_ALLOWED_HOSTS=.*|WUYIQU_ALLOWED_HOSTS=$SERVER_NAME|" \
      -e "s|^WUYIQU_SECRET_KEY=.*|WUYIQU_SECRET_KEY=$secret_key|" \
      -e "s|^WUYIQU_DATA_KEY=.*|WUYIQU_DATA_KEY=$data_key|" \
      "$SRC/deploy/wuyiqu.env.example" > "$ENV_FILE.new"
  chown root:"$APP_USER" "$ENV_FILE.new"
  chmod 0640 "$ENV_FILE.new"
  mv "$ENV_FILE.new" "$ENV_FILE"
  say "written with new secrets"
else
  say "kept (its secrets encrypt the data already stored)"
fi
grep -v -E '^(WUYIQU_SECRET_KEY|WUYIQU_DATA_KEY|WUYIQU_OLD_DATA_KEYS|WUYIQU_LOOKUP_KEY)=' "$ENV_FILE" | grep -v '^#' | sed 's/^/[deploy]   /'

# --- 7. database schema, static files, cache table, checks ------------------------------------------
step "7. wuyiqu migrate, collectstatic, createcachetable, check --deploy"
wuyiqu() { "$ADMIN_WRAPPER" "$@"; }
wuyiqu migrate --noinput | tail -n 3
wuyiqu collectstatic --noinput | tail -n 1
wuyiqu createcachetable
wuyiqu check --deploy --fail-level WARNING

# --- 8. the district's divisions and the first administrator ---------------------------------------
step "8. divisions (the packaged 綦江区 list) and the first administrator"
divisions=$("$VENV/bin/python" -c 'import pathlib, wuyiqu; print(pathlib.Path(wuyiqu.__file__).parent / "data" / "qijiang-divisions-2023.csv")')
wuyiqu import units "$divisions" | tail -n 2
ADMIN_CREATED=0
if wuyiqu shell -c "from wuyiqu.accounts.models import User; raise SystemExit(0 if User.objects.filter(username='admin').exists() else 1)"; then
  say "administrator 'admin' exists"
else
  # The product's own command (audited like the web's account page): it prints a one-time password as its
  # last line, which the smoke test (step 12) uses and changes; the operator gets a new one-time password
  # at the end (reset-password), to be changed at their first sign-in.
  (umask 077; wuyiqu user create --username admin --name 系统管理员 --role admin | tail -n 1 > "$ADMIN_PASSWORD_FILE")
  chmod 0600 "$ADMIN_PASSWORD_FILE"
  ADMIN_CREATED=1
fi

# --- 9. the systemd units ---------------------------------------------------------------------------
step "9. systemd units wuyiqu-web and wuyiqu-worker (from deploy/)"
for unit in wuyiqu-web wuyiqu-worker; do
  install -o root -g root -m 0644 "$SRC/deploy/$unit.service" "$UNITS/$unit.service"
done
if have_systemd; then
  systemctl daemon-reload
  systemctl enable wuyiqu-web wuyiqu-worker
fi
for unit in wuyiqu-web wuyiqu-worker; do
  cmp -s "$SRC/deploy/$unit.service" "$UNITS/$unit.service"  # what runs is the committed unit
  service_do restart "$unit"
done

# --- 10. nginx in front ------------------------------------------------------------------------------
step "10. nginx site $NGINX_SITE (TLS on $HTTPS_PORT, redirect on $HTTP_PORT)"
if [ ! -f "$TLS/fullchain.pem" ]; then
  # This machine has no certificate from a CA: a self-signed one the smoke test trusts (docs: TLS).
  install -d -m 0755 "$TLS"
  openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes -subj "/CN=$SERVER_NAME" \
    -addext "subjectAltName=DNS:$SERVER_NAME,IP:127.0.0.1" \
    -keyout "$TLS/privkey.pem" -out "$TLS/fullchain.pem" 2>/dev/null
  chmod 0600 "$TLS/privkey.pem"
  say "self-signed certificate for $SERVER_NAME made in $TLS"
fi
redirect_port=$([ "$HTTPS_PORT" = 443 ] && echo "" || echo ":$HTTPS_PORT")
sed -e "s/wuyiqu\.example\.gov\.cn/$SERVER_NAME/g" \
    -e "s/listen 80;/listen $HTTP_PORT;/; s/listen \[::\]:80;/listen [::]:$HTTP_PORT;/" \
    -e "s/listen 443 ssl/listen $HTTPS_PORT ssl/; s/listen \[::\]:443 ssl/listen [::]:$HTTPS_PORT ssl/" \
    -e "s|return 301 https://\$host\$request_uri;|return 301 https://\$host$redirect_port\$request_uri;|" \
    "$SRC/deploy/nginx-wuyiqu.conf" > "$NGINX_SITE"
ln -sfn "$NGINX_SITE" /etc/nginx/sites-enabled/wuyiqu
if [ -L /etc/nginx/sites-enabled/default ] && [ "$HTTP_PORT" = 80 ]; then
  rm /etc/nginx/sites-enabled/default  # Debian's placeholder site also wants port 80
  say "disabled Debian's default site"
fi
nginx -t 2>&1 | sed 's/^/[deploy]   /'
if have_systemd; then systemctl enable nginx; systemctl reload-or-restart nginx
elif nginx_running; then nginx -s reload
else nginx
fi
for _ in $(seq 20); do
  (exec 3<>"/dev/tcp/127.0.0.1/$HTTPS_PORT") 2>/dev/null && break
  sleep 0.5
done

# --- 11. a backup -----------------------------------------------------------------------------------
step "11. wuyiqu backup (docs: Backups)"
install -d -o "$APP_USER" -g "$APP_USER" -m 0700 /var/backups/wuyiqu
wuyiqu backup "/var/backups/wuyiqu/deploy-$(date +%Y%m%d-%H%M%S)"

# --- 12. smoke test through nginx ---------------------------------------------------------------------
step "12. smoke test through nginx (scripts/deploy_smoke.py)"
https_base="https://$SERVER_NAME$([ "$HTTPS_PORT" = 443 ] || echo ":$HTTPS_PORT")"
http_base="http://$SERVER_NAME$([ "$HTTP_PORT" = 80 ] || echo ":$HTTP_PORT")"
python3 "$SRC/scripts/deploy_smoke.py" --https "$https_base" --http "$http_base" --cafile "$TLS/fullchain.pem" \
  --username admin --password-file "$ADMIN_PASSWORD_FILE" --db-name "$DB_NAME"

if [ "$ADMIN_CREATED" = 1 ]; then
  # The smoke test picked admin's password: the operator gets a one-time one, changed at the first sign-in.
  (umask 077; wuyiqu user reset-password admin | tail -n 1 > "$ADMIN_PASSWORD_FILE")
fi

step "done: $https_base/ (admin's password in $ADMIN_PASSWORD_FILE; logs in /var/log/wuyiqu/)"
