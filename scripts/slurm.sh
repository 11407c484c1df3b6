#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages, for the Slurm tests (`make slurm-up`).
#
#   scripts/slurm.sh up      install what is missing (slurmctld slurmd slurmdbd slurm-client munge mariadb-server),
#                            write the configuration for this machine's cores and memory, start the daemons that
#                            are not running (munged, mariadbd, slurmdbd, slurmctld, slurmd, in that order) and
#                            wait until the node is idle and sacct answers; each step has a deadline, and a
#                            failure names the daemon and prints the end of its log
#   scripts/slurm.sh down    stop the daemons this script starts (reverse order), waiting for each to exit
#   scripts/slurm.sh status  sinfo and the accounting cluster, or why not
#
# Needs root and Debian 12 (Slurm 22.05) without systemd: the daemons are started directly. Accounting (slurmdbd with
# MariaDB on localhost) is what makes `sacct` work, and sacct is the only way submitit learns a job's state.
# Settings: SLURM_UP_TIMEOUT (seconds per daemon, default 60), SLURM_CLUSTER (default phenomena).
set -euo pipefail

CLUSTER=${SLURM_CLUSTER:-phenomena}
DEADLINE=${SLURM_UP_TIMEOUT:-60}
ETC=/etc/slurm
LOGS=/var/log/slurm
RUN=/run/slurm
SPOOL=/var/spool/slurm
DB_SOCKET=/run/mysqld/mysqld.sock
DB_LOG=/var/log/mysql/phenomena-slurm.err
MUNGE_PID=/run/munge/munged.pid
DB_PID=/run/mysqld/mysqld.pid
PACKAGES=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server)

say() { echo "slurm: $*" >&2; }

# die DAEMON LOG MESSAGE: the failure, naming the daemon, with the end of its log
die() {
  say "ERROR: $1: $3"
  if [[ -n $2 && -f $2 ]]; then
    say "last lines of $2:"
    tail -n 30 "$2" | sed 's/^/    /' >&2
  fi
  exit 1
}

# wait_for DAEMON LOG COMMAND...: run COMMAND every half second until it succeeds, or fail after DEADLINE seconds
wait_for() {
  local daemon=$1 log=$2 started=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - started < DEADLINE)) || die "$daemon" "$log" "not ready after ${DEADLINE}s (waited for: $*)"
    sleep 0.5
  done
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return
  say "installing ${missing[*]}"
  apt-get update -qq
  # policy-rc.d keeps the packages' init scripts from starting daemons: this script starts them itself
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure() {
  local cpus mem
  cpus=$(nproc)
  # the memory slurmd sees, less 512 MiB for the daemons and the test process
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=$((mem > 1024 ? mem - 512 : mem))
  mkdir -p "$ETC" "$LOGS" "$RUN" "$SPOOL/ctld" "$SPOOL/d"
  chown slurm:slurm "$LOGS" "$RUN" "$SPOOL/ctld"
  cat >"$ETC/slurm.conf" <<EOF
# written by scripts/slurm.sh: a one-node cluster on localhost ($cpus CPUs, $mem MiB)
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# notebook kernels leave their process group: track by parent pid; no cgroups in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# cores are the consumable; with memory consumable too, each job would get the whole node by default
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=5
MailProg=/bin/true
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$ETC/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
EOF
  cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm "$ETC/slurmdbd.conf"
  chmod 0600 "$ETC/slurmdbd.conf"
}

start_munge() {
  alive "$MUNGE_PID" && return
  mkdir -p /run/munge /var/log/munge && chown munge:munge /run/munge /var/log/munge
  [[ -s /etc/munge/munge.key ]] || { mungekey --create >/dev/null && chown munge:munge /etc/munge/munge.key; }
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged || die munged /var/log/munge/munged.log "failed to start"
  wait_for munged /var/log/munge/munged.log bash -c "munge -n | unmunge"
}

start_db() {
  if ! alive "$DB_PID"; then
    mkdir -p /run/mysqld /var/log/mysql && chown mysql:mysql /run/mysqld /var/log/mysql
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
    say "starting mariadbd"
    setsid /usr/sbin/mariadbd --user=mysql --socket="$DB_SOCKET" --pid-file="$DB_PID" --log-error="$DB_LOG" \
      --skip-networking </dev/null >/dev/null 2>&1 &
    wait_for mariadbd "$DB_LOG" mariadb-admin --socket="$DB_SOCKET" ping
  fi
  mariadb --socket="$DB_SOCKET" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || die mariadbd "$DB_LOG" "cannot create the slurm user"
}

start_slurmdbd() {
  if ! alive "$RUN/slurmdbd.pid"; then
    say "starting slurmdbd"
    /usr/sbin/slurmdbd || die slurmdbd "$LOGS/slurmdbd.log" "failed to start"
  fi
  wait_for slurmdbd "$LOGS/slurmdbd.log" sacctmgr -n list cluster
  if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die slurmdbd "$LOGS/slurmdbd.log" "cannot add the cluster"
  fi
}

start_slurmctld() {
  if ! alive "$RUN/slurmctld.pid"; then
    say "starting slurmctld"
    /usr/sbin/slurmctld || die slurmctld "$LOGS/slurmctld.log" "failed to start"
  fi
  wait_for slurmctld "$LOGS/slurmctld.log" scontrol ping
}

start_slurmd() {
  if ! alive "$RUN/slurmd.pid"; then
    say "starting slurmd"
    /usr/sbin/slurmd -N localhost || die slurmd "$LOGS/slurmd.log" "failed to start"
  fi
  node_idle() { [[ $(sinfo -h -N -n localhost -o %T) == idle* || $(sinfo -h -N -n localhost -o %T) == mix* ]]; }
  wait_for slurmd "$LOGS/slurmd.log" node_idle
}

up() {
  [[ $(id -u) == 0 ]] || { say "ERROR: needs root (it installs packages and starts daemons)"; exit 1; }
  local started=$SECONDS
  install_packages
  configure
  start_munge
  start_db
  start_slurmdbd
  start_slurmctld
  start_slurmd
  wait_for slurmctld "$LOGS/slurmctld.log" sacct -n -X -S now-1minutes
  say "up in $((SECONDS - started)) s: $(sinfo -h -N -o '%N %T %c CPUs %m MiB')"
}

# stop NAME PIDFILE: SIGTERM, then wait up to DEADLINE seconds for the process to exit (SIGKILL after that)
stop() {
  local name=$1 pidfile=$2 pid started=$SECONDS
  alive "$pidfile" || return 0
  pid=$(cat "$pidfile")
  say "stopping $name ($pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - started >= DEADLINE)); then
      say "$name ($pid) still running after ${DEADLINE}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
}

down() {
  stop slurmd "$RUN/slurmd.pid"
  stop slurmctld "$RUN/slurmctld.pid"
  stop slurmdbd "$RUN/slurmdbd.pid"
  stop mariadbd "$DB_PID"
  stop munged "$MUNGE_PID"
  say "down"
}

status() {
  sinfo -N -o '%N %T %c %m' && sacctmgr -n -P list cluster format=cluster,controlhost
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
