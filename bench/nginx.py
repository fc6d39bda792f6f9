"""nginx as the peer reverse proxy: one worker, keep-alive pool to the upstream, no access log."""

from __future__ import annotations

from pathlib import Path

from bench import tools
from bench.procs import LOOPBACK, Proc, free_port, wait_port

CONFIG = """
worker_processes 1;
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream echo {{ server {host}:{upstream}; keepalive 64; }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def available() -> bool:
    return tools.which("nginx") is not None


def missing_reason() -> str:
    return "not installed (the bench setup could not install it): the proxy/nginx ratio is not measured"


def start(cpus: set[int], work_dir: Path, upstream_port: int) -> tuple[Proc, int]:
    folder = work_dir / "nginx"
    folder.mkdir(exist_ok=True)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(CONFIG.format(dir=folder, host=LOOPBACK, upstream=upstream_port, port=port))
    binary = tools.which("nginx")
    assert binary is not None
    proc = Proc("nginx", [binary, "-p", str(folder), "-c", str(config)], cpus, work_dir)
    wait_port(port, proc)
    return proc, port
