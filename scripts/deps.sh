#!/bin/sh
# Installs what fediops's tests and demo run: Debian packages, node's dotenv
# from npm, statsd_exporter from the Go module proxy. As root it installs
# what is missing; as another user it only names what to install.
set -eu
# ruby-dotenv (with ruby) and node with npm run the real .env readers in
# internal/envfile's differential test; prometheus-node-exporter and
# prometheus serve the deploy tests; dnsmasq-base serves the tunnel's
# failover test its DNS; systemd-analyze (systemd) checks the rendered units.
PKGS="systemd postgresql pgbouncer redis-server redis-tools stunnel4 dnsmasq-base mariadb-server mariadb-client rclone age zstd prometheus prometheus-pushgateway prometheus-node-exporter ruby-dotenv"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# A node installed another way (NodeSource) is kept.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "fediops needs these Debian packages:$missing" >&2
		echo "install them with: sudo apt-get install -y$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# The packages' own services are not wanted: the tests start their own servers.
	# (A policy-rc.d the machine already has is left as it is.)
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# statsd_exporter (the deploy tests feed it Mastodon 4.2's StatsD) is not in
# Debian: it builds from the Go module proxy.
STATSD_EXPORTER=github.com/prometheus/statsd_exporter@v0.31.0
if ! command -v statsd_exporter >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v go >/dev/null 2>&1; then
		GOBIN=/usr/local/bin go install "$STATSD_EXPORTER"
	else
		echo "fediops needs statsd_exporter: install it with: GOBIN=/usr/local/bin go install $STATSD_EXPORTER" >&2
		exit 1
	fi
fi

# node's dotenv from npm, pinned by its package-lock.json, for
# internal/envfile's differential test (what the streaming server reads).
readers="$(dirname "$0")/../internal/envfile/testdata/readers"
if [ ! -d "$readers/node_modules/dotenv" ] || [ "$readers/package-lock.json" -nt "$readers/node_modules/.package-lock.json" ]; then
	npm ci --prefix "$readers" --no-audit --no-fund --loglevel=error >/dev/null
fi
