#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A throwaway single-node Ceph cluster with a RADOS Gateway (S3 API), for
# the remote-store tests: one monitor, one OSD on the memstore object store
# (RAM, nothing on disk), radosgw's beast frontend on 127.0.0.1, no
# authentication inside the cluster, one S3 user. Everything lives in DIR;
# stop kills exactly the daemons start started (their pids are in DIR).
#
#   ceph-cluster.sh start DIR [PORT [TLS_PORT]]
#                                      start it; prints the S3 settings
#                                      (also in DIR/s3.env) on standard output;
#                                      with TLS_PORT radosgw also serves https
#                                      there, with a certificate for localhost
#                                      from a CA of its own (S3_TEST_HTTPS_ENDPOINT,
#                                      S3_TEST_CA_BUNDLE in the settings)
#   ceph-cluster.sh stop DIR           stop it and remove DIR
#
# Settings that matter for a fast start on a small machine: the messenger in
# crc mode with auth none, paxos proposing every 10 ms, tcp_nodelay on the
# beast frontend. Needs root and Debian 12's ceph-mon, ceph-osd, radosgw and
# ceph-common (scripts/install-deps.sh test).
set -euo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 dir=$2 port=${3:-7480} tls_port=${4:-}

# true once pid has exited (a zombie waiting for init counts as gone).
gone() {
	[[ ! -e /proc/$1 ]] || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

stop() {
	local pidfile pid pids=()
	for pidfile in "$dir"/pids/*.pid; do
		[[ -f $pidfile ]] && pids+=("$(cat "$pidfile")")
	done
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	# Nothing to keep (memstore): 2 s to go, then SIGKILL.
	for _ in $(seq 20); do
		local alive=0
		for pid in "${pids[@]}"; do gone "$pid" || alive=1; done
		[[ $alive == 1 ]] || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do gone "$pid" && break; sleep 0.1; done
	done
	rm -rf "$dir"
}

start() {
	local fsid osd_uuid conf mon_port=$((port + 1))
	[[ ! -e $dir ]] || { echo "$0: '$dir' exists: stop it first" >&2; exit 1; }
	mkdir -p "$dir"/{mon/a,osd/0,run,log,pids}
	fsid=$(cat /proc/sys/kernel/random/uuid)
	conf=$dir/ceph.conf
	tls=
	if [[ -n $tls_port ]]; then
		# A CA of the test's own, and a certificate for localhost signed
		# by it: a client trusts it only when told to (AWS_CA_BUNDLE).
		mkdir -p "$dir/tls"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=snapfs test CA" \
			-keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
			-keyout "$dir/tls/key.pem" -out "$dir/tls/req.pem" 2>/dev/null
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/tls/ext"
		openssl x509 -req -in "$dir/tls/req.pem" -CA "$dir/tls/ca.pem" \
			-CAkey "$dir/tls/ca.key" -CAcreateserial -days 2 -extfile "$dir/tls/ext" \
			-out "$dir/tls/cert.pem" 2>/dev/null
		tls=" ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$dir/tls/cert.pem"
		tls+=" ssl_private_key=$dir/tls/key.pem"
	fi
	cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = 127.0.0.1:$mon_port
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
paxos propose interval = 0.01
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/pids/\$name.pid
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon/a
[osd.0]
osd data = $dir/osd/0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1$tls
rgw data = $dir/rgw
CONF
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	monmaptool --create --add a "127.0.0.1:$mon_port" --fsid "$fsid" "$dir/monmap" >/dev/null
	ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
	ceph-mon -c "$conf" -i a
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	ceph -c "$conf" osd new "$osd_uuid" >/dev/null
	ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>/dev/null
	ceph-osd -c "$conf" -i 0
	radosgw -c "$conf" -n client.rgw.a
	for _ in $(seq 300); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.1
	done
	curl -s -o /dev/null "http://127.0.0.1:$port/" || {
		echo "$0: radosgw did not answer on 127.0.0.1:$port (logs in $dir/log)" >&2; exit 1; }
	radosgw-admin -c "$conf" user create --uid=snapfs --display-name=snapfs \
		--access-key=SNAPFSTESTKEY --secret-key=snapfs-test-secret >/dev/null
	cat >"$dir/s3.env" <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$port
AWS_ACCESS_KEY_ID=SNAPFSTESTKEY
AWS_SECRET_ACCESS_KEY=snapfs-test-secret
AWS_DEFAULT_REGION=us-east-1
ENV
	if [[ -n $tls_port ]]; then
		echo "S3_TEST_HTTPS_ENDPOINT=https://localhost:$tls_port" >>"$dir/s3.env"
		echo "S3_TEST_CA_BUNDLE=$dir/tls/ca.pem" >>"$dir/s3.env"
	fi
	cat "$dir/s3.env"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
