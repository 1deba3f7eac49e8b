#!/usr/bin/env bash
# Creates what deploy/docker-compose.yml mounts as secrets, where missing: a random API
# token (the daemon refuses to start without one, or with a short or placeholder one), an
# age identity (printing its recipient for the drills) and an evidence signing key (the
# daemon signs every report with it). Never overwrites a file. As root, it hands them to
# uid 10001, the daemon's user in the image.
#
#   cd deploy && ./compose-init.sh && printf '%s' 'the-db-password' > secrets/db-password.txt
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets

# firedrill, from PATH, this checkout's build, or the image.
fd() {
  if command -v firedrill >/dev/null; then
    firedrill "$@"
  elif [ -x ../target/release/firedrill ]; then
    ../target/release/firedrill "$@"
  elif [ -x ../target/debug/firedrill ]; then
    ../target/debug/firedrill "$@"
  else
    docker run --rm --network none -v "$PWD/secrets:/out" --user "$(id -u)" \
      --entrypoint firedrill firedrill:latest "${@//secrets\//\/out\/}"
  fi
}

if [ ! -s secrets/api-token.txt ]; then
  head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_' > secrets/api-token.txt
  echo "secrets/api-token.txt: a new API token (curl -H \"Authorization: Bearer \$(cat secrets/api-token.txt)\" …)"
fi
if [ ! -s secrets/age-identity.txt ]; then
  echo "secrets/age-identity.txt: a new age identity; its recipient, for the drills' [encryption] recipients:"
  fd keygen --output secrets/age-identity.txt 2>/dev/null
fi
if [ ! -s secrets/evidence-key.pem ]; then
  echo "secrets/evidence-key.pem: a new evidence signing key; its public key, for \`firedrill evidence verify\`:"
  fd evidence keygen --output secrets/evidence-key.pem 2>/dev/null
fi
[ -s secrets/db-password.txt ] || echo "still missing: secrets/db-password.txt (the source database's password)"
if [ "$(id -u)" = 0 ]; then
  chown 10001 secrets/*
else
  echo "uid 10001 reads them in the container: sudo chown 10001 secrets/*"
fi
