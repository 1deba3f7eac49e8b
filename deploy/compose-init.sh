#!/usr/bin/env bash
# Creates what deploy/docker-compose.yml mounts as secrets, where missing: a random API
# token (the daemon refuses to start without one, or with a short or placeholder one) and
# an age identity (printing its recipient for the drills). Never overwrites a file.
#
#   cd deploy && ./compose-init.sh && printf '%s' 'the-db-password' > secrets/db-password.txt
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
if [ ! -s secrets/api-token.txt ]; then
  head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_' > secrets/api-token.txt
  echo "secrets/api-token.txt: a new API token (curl -H \"Authorization: Bearer \$(cat secrets/api-token.txt)\" …)"
fi
if [ ! -s secrets/age-identity.txt ]; then
  if command -v firedrill >/dev/null; then
    firedrill keygen --output secrets/age-identity.txt
  elif command -v age-keygen >/dev/null; then
    age-keygen -o secrets/age-identity.txt
  else
    docker run --rm --network none -v "$PWD/secrets:/out" --user "$(id -u)" firedrill:latest \
      keygen --output /out/age-identity.txt
  fi
fi
[ -s secrets/db-password.txt ] || echo "still missing: secrets/db-password.txt (the source database's password)"
echo "uid 10001 reads them in the container: sudo chown 10001 secrets/*"
