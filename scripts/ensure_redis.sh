#!/usr/bin/env bash
# Make sure a Redis answers at REDIS_URL: use a running one, else start the local redis-server,
# else install it (Debian, as root), else say what to install.
set -euo pipefail
url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
py="${PYTHON:-.venv/bin/python}"

ping() { "$py" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$url" 2>/dev/null; }

ping && exit 0

read -r host port < <("$py" -c 'import sys; from urllib.parse import urlparse; u = urlparse(sys.argv[1]); print(u.hostname or "127.0.0.1", u.port or 6379)' "$url")
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "Redis does not answer at $url (a remote host): start it there, or fix REDIS_URL." >&2; exit 1 ;;
esac

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing redis-server (Debian package)…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "Redis is not running at $url and redis-server is not installed." >&2
    echo "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)," >&2
    echo "or point REDIS_URL at a running Redis." >&2
    exit 1
  fi
fi

mkdir -p .data/redis
redis-server --daemonize yes --bind "$host" --port "$port" --dir "$PWD/.data/redis" \
  --save "" --appendonly no --logfile "$PWD/.data/redis/redis.log"
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "redis-server did not start: see .data/redis/redis.log" >&2
exit 1
