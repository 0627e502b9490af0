#!/usr/bin/env bash
# Stops every server of the test stack (reverse start order).
source "$(dirname "$0")/servers.sh"
for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do stop "${SERVERS[$i]}"; done
