#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the tests, the benchmark and for trying the Slurm scheduler.
#
#   scripts/local-slurm.sh start    write slurm.conf, start munged (if needed), slurmctld and slurmd, wait until idle
#   scripts/local-slurm.sh stop     stop the daemons this script started
#   scripts/local-slurm.sh status   exit 0 when the node is up (prints sinfo), 3 when the cluster is not running
#   scripts/local-slurm.sh env      print `export SLURM_CONF=...` (use: eval "$(scripts/local-slurm.sh env)")
#
# Needs Debian's (or any) slurmctld, slurmd, slurm-client and munge packages, and root: slurmd starts jobs as
# their submitting user. Everything lives under $DSHPC_SLURM_DIR (default /tmp/dshpc-slurm): the config, the
# controller's state, logs and pid files; nothing under /etc is changed, so every Slurm command needs
# SLURM_CONF pointing at the config (see `env`). Settings read from the environment at `start`:
#   DSHPC_SLURM_MAX_ARRAY_SIZE  MaxArraySize (default 1001; the tests lower it to exercise splitting)
#   DSHPC_SLURM_CPUS            CPUs the node offers (default: this machine's count)
#   DSHPC_SLURM_KILL_WAIT       seconds between SIGTERM and SIGKILL at a time limit or cancel (default 5)
#   DSHPC_SLURM_PORT            slurmctld's port; slurmd gets the next one (default 6817)
# `start` is idempotent: with the same settings and running daemons it only waits for the node; with other
# settings it restarts the cluster from a clean state.
set -euo pipefail

DIR=${DSHPC_SLURM_DIR:-/tmp/dshpc-slurm}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
WAIT_S=${DSHPC_SLURM_WAIT:-60}
export SLURM_CONF=$CONF

die() { echo "local-slurm: $*" >&2; exit 1; }

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    local cpus=${DSHPC_SLURM_CPUS:-$(nproc)}
    local mem_mb
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    local port=${DSHPC_SLURM_PORT:-6817}
    local user
    user=$(id -un)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF.new" <<EOF
# Written by scripts/local-slurm.sh: a single-node cluster on $NODE (no cgroups, no accounting).
ClusterName=dshpc-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MaxArraySize=${DSHPC_SLURM_MAX_ARRAY_SIZE:-1001}
MinJobAge=300
KillWait=${DSHPC_SLURM_KILL_WAIT:-5}
OverTimeLimit=0
InactiveLimit=0
SchedulerParameters=${DSHPC_SLURM_SCHEDULER_PARAMETERS:-batch_sched_delay=0}
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    munge_ok && return 0
    [[ $(id -u) == 0 ]] || die "munged is not running and only root can start it"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    # Debian's package makes the key when it installs; an image that skipped that still gets one
    [[ -f /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/munged.ours"
    for _ in $(seq 50); do munge_ok && return 0; sleep 0.1; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1; }

wait_idle() {
    local deadline=$((SECONDS + WAIT_S)) state=""
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        case $state in
            idle | mix | alloc) return 0 ;;
            down* | drain* | drng*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    echo "--- slurmctld.log" >&2; tail -n 20 "$DIR/log/slurmctld.log" >&2 || true
    echo "--- slurmd.log" >&2; tail -n 20 "$DIR/log/slurmd.log" >&2 || true
    die "node $NODE not idle after ${WAIT_S}s (state: ${state:-unknown})"
}

stop_daemons() {
    if pid_alive "$DIR/slurmctld.pid"; then scontrol shutdown >/dev/null 2>&1 || true; fi
    local deadline=$((SECONDS + 15))
    while ((SECONDS < deadline)) && { pid_alive "$DIR/slurmctld.pid" || pid_alive "$DIR/slurmd.pid"; }; do sleep 0.2; done
    for name in slurmd slurmctld; do
        if pid_alive "$DIR/$name.pid"; then kill -TERM "$(cat "$DIR/$name.pid")" 2>/dev/null || true; fi
        rm -f "$DIR/$name.pid"
    done
}

start() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null ||
        die "slurmctld, slurmd and sbatch are needed (Debian: apt-get install slurmctld slurmd slurm-client munge)"
    [[ $(id -u) == 0 ]] || die "slurmd must run as root (it starts jobs as their users): run this as root"
    mkdir -p "$DIR"
    write_conf
    if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" && cmp -s "$CONF" "$CONF.new"; then
        rm -f "$CONF.new"
    else
        stop_daemons
        mv "$CONF.new" "$CONF"
        rm -rf "$DIR/state" "$DIR/spool" && mkdir -p "$DIR/state" "$DIR/spool"
        start_munge
        slurmctld -c -f "$CONF"
        slurmd -c -f "$CONF"
    fi
    wait_idle
    echo "local Slurm is up: node $NODE idle; export SLURM_CONF=$CONF"
}

stop() {
    stop_daemons
    if [[ -f $DIR/munged.ours ]]; then
        [[ -f /run/munge/munged.pid ]] && kill -TERM "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        rm -f "$DIR/munged.ours"
    fi
    echo "local Slurm stopped"
}

status() {
    if ! pid_alive "$DIR/slurmctld.pid" || ! pid_alive "$DIR/slurmd.pid"; then
        echo "local Slurm is not running (config: $CONF)"
        return 3
    fi
    sinfo
    case $(node_state || true) in idle | mix | alloc) return 0 ;; *) return 3 ;; esac
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
