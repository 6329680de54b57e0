#!/bin/sh
# One shot, once the Temporal server answers: the namespace Tether's workers and gateway use.
set -eu
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" | grep -q SERVING; do
    sleep 2
done
temporal operator namespace describe -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 \
    || temporal operator namespace create -n "$NAMESPACE" --retention 30d --address "$TEMPORAL_ADDRESS"
echo "namespace $NAMESPACE is ready"
