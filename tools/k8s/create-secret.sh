#!/usr/bin/env bash
# Create the Secret every highway pod reads its credentials from (secretKeyRef only; nothing inline in the
# manifests): random S3 keys, PostgreSQL and Elasticsearch passwords, Airflow's metadata DB URL, admin password
# and signing key. Idempotent: an existing Secret is left as it is (its passwords are already in use).
#   bash tools/k8s/create-secret.sh [namespace]      (default: highway; uses kubectl's current context)
set -euo pipefail
ns="${1:-highway}"
name=highway-credentials
kubectl="${KUBECTL:-kubectl}"
if "$kubectl" get namespace "$ns" >/dev/null 2>&1; then :; else "$kubectl" create namespace "$ns" >/dev/null; fi
if "$kubectl" -n "$ns" get secret "$name" >/dev/null 2>&1; then
  echo "secret $ns/$name exists: left unchanged"
  exit 0
fi
rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }  # hex: safe inside URLs
pg_password="$(rand 18)"
# the values go to kubectl on stdin, never on its command line (any local user reads /proc/*/cmdline)
"$kubectl" -n "$ns" create -f - >/dev/null <<SECRET
apiVersion: v1
kind: Secret
metadata:
  name: $name
type: Opaque
stringData:
  s3-access-key: "highway$(rand 6)"
  s3-secret-key: "$(rand 24)"
  postgres-password: "$pg_password"
  elasticsearch-password: "$(rand 18)"
  airflow-db-url: "postgresql+psycopg2://highway:${pg_password}@postgres.${ns}.svc:5432/airflow"
  airflow-admin-password: "$(rand 12)"
  airflow-secret-key: "$(rand 32)"
SECRET
echo "secret $ns/$name created; Airflow login: admin / \$($kubectl -n $ns get secret $name -o jsonpath='{.data.airflow-admin-password}' | base64 -d)"
