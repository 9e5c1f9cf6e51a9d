#!/bin/sh
# Validate the deployment files. Run from the repository root: deploy/check.sh
# Needs promtool (Debian: apt-get install prometheus) and python3; the console's nginx
# site is checked only where nginx is installed (with openssl).
set -eu

command -v promtool >/dev/null 2>&1 || { echo "check.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "check.sh: python3 not found" >&2; exit 1; }

promtool check config deploy/prometheus/prometheus.yml
promtool check config deploy/prometheus/federation.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
python3 -m json.tool deploy/grafana/gatewatch-dashboard.json >/dev/null
echo "deploy/grafana/gatewatch-dashboard.json: valid JSON"

# The console's nginx site, inside a throw-away nginx.conf: its certificate paths
# (/etc/nginx/tls/) point at a self-signed pair made here, pid and temp files stay in it.
if command -v nginx >/dev/null 2>&1; then
    command -v openssl >/dev/null 2>&1 || { echo "check.sh: openssl not found (needed with nginx)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=console.example \
        -keyout "$tmp/console.example.key" -out "$tmp/console.example.crt" 2>/dev/null
    # nginx -t binds the listen ports: unless root, 80 and 443 become 1080 and 10443 (one in
    # use is fine for -t); on a host without IPv6 the [::] ones are left out.
    ports=""
    [ "$(id -u)" -eq 0 ] || ports='s/^\( *listen [^0-9]*\)\([0-9]\)/\110\2/'
    v6=""
    [ -e /proc/net/if_inet6 ] || v6='/^ *listen \[::\]/d'
    sed -e "s#/etc/nginx/tls/#$tmp/#g" -e "$ports" -e "$v6" deploy/console/nginx.conf >"$tmp/site.conf"
    cat >"$tmp/nginx.conf" <<EOF
pid $tmp/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    include $tmp/site.conf;
}
EOF
    nginx -q -t -p "$tmp" -c "$tmp/nginx.conf"
    echo "deploy/console/nginx.conf: nginx -t OK"
else
    echo "deploy/console/nginx.conf: skipped: nginx not installed"
fi
echo "check.sh: all deployment files OK"
