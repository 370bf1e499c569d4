"""The proxies of the load comparison (benches/compare.py), configured alike: least
connections with weights 3/3/2, upstream keep-alive, forwarded headers, no access log."""

WEIGHTS = [3, 3, 2]

NGINX_CONF = """
worker_processes {workers};
daemon off;
error_log {dir}/error.log crit;
pid {dir}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
    uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
    upstream app {{
        least_conn;
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""

HAPROXY_CONF = """
global
    nbthread {workers}
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option forwardfor
    http-reuse always
    retries 2
    option redispatch
frontend fe
    bind 127.0.0.1:{port}
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Proto http
    default_backend app
backend app
    balance leastconn
{servers}
"""

# Caddy 2: least_conn ignores weights; X-Forwarded-For/-Proto/-Host are set by default. Run with
# GOMAXPROCS = workers (Go's runtime uses every core otherwise).
CADDY_CONF = """
{{
    admin off
    auto_https off
}}
http://127.0.0.1:{port} {{
    reverse_proxy {servers} {{
        lb_policy least_conn
{failure}
        header_up X-Real-IP {{remote_host}}
        transport http {{
            keepalive 60s
            keepalive_idle_conns 64
        }}
    }}
}}
"""

CADDY_FAILURE = """        lb_retries 2
        fail_duration 30s
        max_fails 5
        unhealthy_status 5xx"""

SWITCHYARD_CONF = """
listen: ["127.0.0.1:{port}"]
admin: {{listen: "127.0.0.1:{admin}"}}
threads: {workers}
access_log: off
watch: false
upstreams:
  app:
    balance: least_conn
    servers:
{servers}
"""
