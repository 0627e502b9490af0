#!/usr/bin/env bash
# Installs (or finds cached) everything the test stack needs.
here="$(dirname "$0")"
source "$here/common.sh"
"$here/install-apt.sh"
"$here/install-kafka.sh"
"$here/install-tools.sh"
"$here/install-k8s.sh"
