#!/bin/bash
# Runs a p2plab experiment over the nodes of an OAR job.
#
#   oarsub -S "./cluster/oar.sh path/to/experiment.yaml [p2plab run options...]"
#
# (`-S` makes oarsub read the #OAR lines below; the script must be executable.)
#
# OAR runs this script on the job's first node, which is then the controller: it writes an
# inventory whose hosts are the job's nodes (`hosts: {from: oar}`: p2plab reads
# $OAR_NODEFILE, one line per core, repeats dropped) and runs `p2plab run EXPERIMENT
# --hosts INVENTORY`. The controller reaches every node, itself included, with plain SSH
# (not oarsh), so each node must accept the controller's key (ssh-agent or
# P2PLAB_SSH_IDENTITY) for P2PLAB_SSH_USER (root by default: p2plab needs root, or
# passwordless sudo, on every host; on Grid'5000 that means a deployed environment,
# `oarsub -t deploy`, or `sudo-g5k`), and list the nodes' host keys in known_hosts.
# `p2plab` must be on the controller's PATH; it copies itself to the other hosts.
# Results land in the directory the job was submitted from.
#
# Settings (environment, all optional):
#   P2PLAB_DEV           the interface experiment traffic uses on the nodes (default eth0)
#   P2PLAB_PLACEMENT     round_robin (default), by_group or fill
#   P2PLAB_SSH_USER      the login on the nodes (default root)
#   P2PLAB_SSH_IDENTITY  a private key file (default: the keys of ssh-agent)
#   P2PLAB_KNOWN_HOSTS   the known-hosts file (default ~/.ssh/known_hosts)
#
#OAR -n p2plab
#OAR -l nodes=4,walltime=01:00:00
#OAR -O p2plab-%jobid%.out
#OAR -E p2plab-%jobid%.err

set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: oarsub -S \"$0 EXPERIMENT.yaml [p2plab run options...]\"" >&2
    exit 2
fi
experiment=$1
shift

cd "${OAR_WORKDIR:-.}"
inventory="p2plab-hosts-${OAR_JOB_ID:-$$}.yaml"
{
    echo "ssh:"
    echo "  user: ${P2PLAB_SSH_USER:-root}"
    echo "  dev: ${P2PLAB_DEV:-eth0}"
    if [ -n "${P2PLAB_SSH_IDENTITY:-}" ]; then
        echo "  identity_file: '${P2PLAB_SSH_IDENTITY}'"
    fi
    if [ -n "${P2PLAB_KNOWN_HOSTS:-}" ]; then
        echo "  known_hosts: '${P2PLAB_KNOWN_HOSTS}'"
    fi
    echo "hosts: {from: oar}"
    echo "placement: ${P2PLAB_PLACEMENT:-round_robin}"
} > "$inventory"
echo "p2plab: inventory $inventory, hosts $(uniq "$OAR_NODEFILE" | paste -sd ' ')"

exec p2plab run "$experiment" --hosts "$inventory" "$@"
