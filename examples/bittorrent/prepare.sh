#!/bin/sh
# Makes the shared file of a BitTorrent experiment in the run directory: DIR/data.bin
# (BYTES random bytes), its torrent DIR/data.torrent announcing to TRACKER, and Debian
# opentracker's whitelist (it serves only whitelisted info hashes) and config.
# Usage: prepare.sh DIR BYTES TRACKER_URL [PIECE_LEN_LOG2]
set -eu
dir=$1 bytes=$2 tracker=$3 piece=${4:-16}
head -c "$bytes" /dev/urandom > "$dir/data.bin"
mktorrent -l "$piece" -a "$tracker" -o "$dir/data.torrent" "$dir/data.bin" > /dev/null
aria2c -S "$dir/data.torrent" | sed -n 's/^Info Hash: //p' > "$dir/whitelist"
test -s "$dir/whitelist"
echo "access.whitelist $dir/whitelist" > "$dir/opentracker.conf"
