"""A stand-in for a Kubernetes API server with the training operator, for tests on a machine with no cluster.

It answers the few calls `infra/pytorchjob.py` makes (ConfigMaps; PyTorchJob create and get) and, as an
operator and kubelet would, runs each created job's Master container command here: the ConfigMap mounted
at /config becomes a folder, /runs a scratch folder, and the container's plain env values are added to
this process's environment (the S3 Secret's values come from the test's own environment). The job's
conditions go Created -> Running -> Succeeded or Failed with the command's exit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONFIGMAPS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/configmaps(?:/(?P<name>[^/]+))?$")
JOBS = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/(?P<ns>[^/]+)/pytorchjobs(?:/(?P<name>[^/]+))?$")


class FakeCluster:
    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.config_maps: dict[tuple[str, str], dict] = {}
        self.jobs: dict[tuple[str, str], dict] = {}
        self.created_jobs = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
        return path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set_condition(self, key: tuple[str, str], kind: str, message: str = "") -> None:
        with self.lock:
            status = self.jobs[key].setdefault("status", {"conditions": []})
            for condition in status["conditions"]:
                condition["status"] = "False"
            status["conditions"].append({"type": kind, "status": "True", "message": message})

    def run_master(self, key: tuple[str, str]) -> None:
        job = self.jobs[key]
        container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
        root = self.scratch / key[1]
        config_dir, runs_dir = root / "config", root / "runs"
        config_dir.mkdir(parents=True, exist_ok=True)
        runs_dir.mkdir(parents=True, exist_ok=True)
        for file, text in self.config_maps[(key[0], key[1])]["data"].items():
            (config_dir / file).write_text(text)
        mounts = {"/config/": f"{config_dir}/", "/runs/": f"{runs_dir}/"}
        command = [sys.executable if part == "python" else
                   next((local + part[len(mount):] for mount, local in mounts.items() if part.startswith(mount)), part)
                   for part in container["command"]]
        env = os.environ | {e["name"]: e["value"] for e in container["env"] if "value" in e}
        self.set_condition(key, "Running")
        with (root / "master.log").open("w") as log:
            done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
        tail = (root / "master.log").read_text().splitlines()[-3:]
        self.set_condition(key, "Succeeded" if done.returncode == 0 else "Failed",
                           f"exit {done.returncode}: {' | '.join(tail)}")

    def handler(self):
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def do_GET(self):
                match = JOBS.match(self.path.split("?")[0])
                key = (match["ns"], match["name"]) if match else None
                if key in cluster.jobs:
                    with cluster.lock:
                        return self.reply(200, cluster.jobs[key])
                self.reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

            def do_POST(self):
                path, item = self.path.split("?")[0], self.body()
                if match := CONFIGMAPS.match(path):
                    key = (match["ns"], item["metadata"]["name"])
                    if key in cluster.config_maps:
                        return self.reply(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                    cluster.config_maps[key] = item
                    return self.reply(201, item)
                if match := JOBS.match(path):
                    key = (match["ns"], item["metadata"]["name"])
                    cluster.jobs[key] = item
                    cluster.created_jobs += 1
                    cluster.set_condition(key, "Created")
                    threading.Thread(target=cluster.run_master, args=(key,), daemon=True).start()
                    return self.reply(201, item)
                self.reply(404, {"kind": "Status", "code": 404})

            def do_PUT(self):
                match = CONFIGMAPS.match(self.path.split("?")[0])
                if not match:
                    return self.reply(404, {"kind": "Status", "code": 404})
                cluster.config_maps[(match["ns"], match["name"])] = self.body()
                self.reply(200, cluster.config_maps[(match["ns"], match["name"])])

        return Handler
