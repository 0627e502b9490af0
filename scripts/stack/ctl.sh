#!/usr/bin/env bash
# Fault injection for tests: ctl.sh ACTION SERVER
#   stop | start | restart : graceful (SIGTERM), start waits for health
#   kill9                  : SIGKILL, no clean-up (simulates a crash)
#   crash-restart          : SIGKILL, then start again and wait for health
#   pause | resume         : SIGSTOP / SIGCONT (frozen: connections held
#                            open, nothing done: a link that lags)
source "$(dirname "$0")/servers.sh"
action=${1:?usage: ctl.sh stop|start|restart|kill9|crash-restart|pause|resume SERVER}
name=${2:?usage: ctl.sh ACTION SERVER}
[[ " ${SERVERS[*]} " == *" $name "* ]] || die "unknown server '$name' (known: ${SERVERS[*]})"
case "$action" in
  stop) stop "$name" ;;
  start) start_server "$name" ;;
  restart) stop "$name" && start_server "$name" ;;
  kill9) stop "$name" KILL ;;
  crash-restart) stop "$name" KILL && start_server "$name" ;;
  pause) signal "$name" STOP ;;
  resume) signal "$name" CONT ;;
  *) die "unknown action '$action'" ;;
esac
