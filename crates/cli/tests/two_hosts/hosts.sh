# Two hosts in two network namespaces joined by a veth pair (172.31.9.1 and .2), each with
# `p2plab up` of one topology, its nodes placed by PLACE_A and PLACE_B (a-1 on host A, b-1
# on host B). Prints `key value` lines: the RTT from a-1 to b-1 and to a-2, a-1's
# download and upload rates with b-1, and whether each host looks after `down` as it did
# before `up`.
# Environment: P2PLAB, T (the topology), W (a work directory), HERE (this folder), PLACE_A
# and PLACE_B (each host's --local and --route options).
set -euf
A=p2plab-a-$$ B=p2plab-b-$$
cleanup() {
    for h in $A $B; do
        ip netns exec $h env P2PLAB_RUN_DIR=$W/$h "$P2PLAB" down hosts >/dev/null 2>&1 || true
        for p in $(ip netns pids $h 2>/dev/null); do kill -9 $p 2>/dev/null || true; done
        ip netns del $h 2>/dev/null || true
    done
}
trap cleanup EXIT
ip netns add $A
ip netns add $B
ip link add va netns $A type veth peer name vb netns $B
ip -n $A addr add 172.31.9.1/24 dev va
ip -n $B addr add 172.31.9.2/24 dev vb
for h in $A $B; do ip -n $h link set lo up; done
ip -n $A link set va up
ip -n $B link set vb up
snap() {
    ip netns exec $1 sh -c 'ip -4 -o addr show; ip -4 route show table all; tc qdisc show;
        for d in lo va vb; do ip link show $d >/dev/null 2>&1 && tc filter show dev $d egress && tc filter show dev $d ingress; done;
        iptables-save -t mangle | grep -v "^#"; ip -o link show | cut -d" " -f2,3,5;
        ip -d -o link show | grep -o "^[0-9]*: [a-z]*\|gso_max_s[a-z]* [0-9]*"'
}
before_a=$(snap $A) before_b=$(snap $B)
up() {
    ip netns exec $1 env P2PLAB_RUN_DIR=$W/$1 "$P2PLAB" up "$T" --name hosts --dev $2 $3 --shaping nfqueue >/dev/null
}
up $A va "$PLACE_A"
up $B vb "$PLACE_B"
size() { ip netns exec $A ip -d -o link show dev $1 | grep -o " mtu [0-9]*\| gso_max_size [0-9]*" | tr -d '\n'; }
echo "packets va$(size va) lo$(size lo)"
rtt() { ip netns exec $A ping -n -q -c 15 -i 0.2 -I $1 $2 | sed -n 's|.*= \([0-9.]*\)/.*|\1|p'; }
echo "rtt_ms $(rtt 10.91.1.1 10.91.2.1)"
echo "rtt_in_group_ms $(rtt 10.91.1.1 10.91.1.2)"
head -c 500000 /dev/urandom > $W/f
ip netns exec $B python3 -m http.server -d $W -b 10.91.2.1 8000 >/dev/null 2>&1 &
http=$!
ip netns exec $B python3 $HERE/sink.py 10.91.2.1 9000 > $W/up.txt &
sink=$!
sleep 1
echo "down_bytes_per_s $(ip netns exec $A curl -sS --interface 10.91.1.1 -o $W/got -w '%{speed_download}' http://10.91.2.1:8000/f)"
cmp -s $W/f $W/got && echo "download identical"
ip netns exec $A python3 $HERE/send.py 10.91.1.1 10.91.2.1 9000 250000
wait $sink
echo "up_bps $(cat $W/up.txt)"
kill $http
wait $http 2>/dev/null || true
ip netns exec $A env P2PLAB_RUN_DIR=$W/$A "$P2PLAB" down hosts >/dev/null
ip netns exec $B env P2PLAB_RUN_DIR=$W/$B "$P2PLAB" down hosts >/dev/null
for h in A B; do
    eval "ns=\$$h before=\$before_$(echo $h | tr AB ab)"
    if [ "$(snap $ns)" = "$before" ]; then
        echo "host $h as before"
    else
        echo "host $h differs after down:" >&2
        snap $ns | diff - "$(printf '%s\n' "$before" > $W/before && echo $W/before)" >&2 || true
    fi
done
