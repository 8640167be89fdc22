"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok (simulated nodes and pods), all on 127.0.0.1 with ports chosen at runtime and all state in a temp dir
(etcd's data under /dev/shm when it is writable).

The binaries come from ``bash tools/k8s/build.sh`` (built once into the cache, minutes; afterwards instant).
``KubeCluster.start()`` builds (streaming the build's progress lines), starts each component in its own
process group with its own log file (``state_dir/logs``), waits for each to be ready, and registers one Node
that kwok manages (4-6 s with the binaries cached); ``stop()`` ends them all. The API server uses token auth
and RBAC: ``admin_token`` is in ``system:masters``; ``service_account_token()`` gets a ServiceAccount's token
through the TokenRequest API. kubectl and ``api_client()`` verify the API server's self-signed certificate
(``ca_file``, valid for 127.0.0.1), so no TLS warnings; the same file is the cluster's ``kube-root-ca.crt``.

kwok plays the kubelet: a pod bound to the kwok node is reported Running (with a pod IP from 10.244.0.0/16)
without any container being run: no image is pulled, no probe executed, no command, volume, NetworkPolicy or
security context (read-only root filesystem, user) enforced.

Crash loops: ``simulate_crashloop()`` annotates the pod ``kwok.x-k8s.io/status=custom`` and patches its
``status`` subresource so its containers are waiting in CrashLoopBackOff with ``lastState.terminated`` and a
``restartCount``. kwok is started with its own pod Stages (``--config``): kwok's default "fast" stages, except
that pod-ready and pod-complete skip pods carrying that annotation, so kwok never overwrites the simulated
status, while pod-delete still applies (deleting such a pod works; kwok v0.7.0's deprecated
``--disregard-status-with-annotation-selector`` would have left deleted pods Terminating forever).

Pod logs: kwok serves a kubelet-like API on the node's port (``/containerLogs/...``, from ``ClusterLogs`` in
its config); the API server reaches it at the node's InternalIP (127.0.0.1) and, given no
``--kubelet-certificate-authority``, does not verify kwok's self-signed certificate. One ``ClusterLogs`` maps
every container of every pod to one file: ``write_pod_log(text)`` sets what ``kubectl logs`` returns for any
pod (``previous=True``: what ``kubectl logs --previous`` returns). kwok reads ``--config`` once at start,
so per-pod logs would need its Logs CRDs installed and ``--enable-crds=Logs`` (not done: one file serves).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NODE_NAME = "kwok-node-0"
ISSUER = "https://kubernetes.default.svc"
CUSTOM_STATUS = "kwok.x-k8s.io/status"  # annotation value "custom": kwok leaves the pod's status alone
# a pod with this annotation is not deleted by kwok (it stays Terminating, as behind a slow kubelet) until
# the annotation is removed: kwok's delete stage also strips finalizers, so a finalizer cannot hold it
HOLD_DELETION = "highway.test/hold-deletion"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"

# kwok v0.7.0's default "fast" pod stages (kustomize/stage/pod/fast), with pod-ready and pod-complete skipping
# pods annotated kwok.x-k8s.io/status=custom, and pod-delete skipping pods annotated HOLD_DELETION.
# kwok deletes a terminating pod BY NAME, without a uid precondition, and may do it twice (once per event of
# the terminating pod): the second delete can hit the StatefulSet's replacement of the same name, which the
# controller then replaces again. A kubelet deletes by uid; tests allow for that extra replacement.
# Node stages are not given, so kwok uses its defaults.
_SKIP_CUSTOM = """
    - key: '.metadata.annotations["kwok.x-k8s.io/status"]'
      operator: 'NotIn'
      values:
      - 'custom'"""

_POD_STAGES = f"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.podIP'
      operator: 'DoesNotExist'{_SKIP_CUSTOM}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: ContainersReady
      {{{{ range .spec.readinessGates }}}}
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: {{{{ .conditionType | Quote }}}}
      {{{{ end }}}}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      initContainerStatuses:
      {{{{ range .spec.initContainers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: true
        restartCount: 0
        {{{{ if eq .restartPolicy "Always" }}}}
        started: true
        state:
          running:
            startedAt: {{{{ $now | Quote }}}}
        {{{{ else }}}}
        state:
          terminated:
            exitCode: 0
            finishedAt: {{{{ $now | Quote }}}}
            reason: Completed
            startedAt: {{{{ $now | Quote }}}}
        {{{{ end }}}}
      {{{{ end }}}}
      hostIP: {{{{ NodeIPWith .spec.nodeName | Quote }}}}
      podIP: {{{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}}}
      phase: Running
      startTime: {{{{ $now | Quote }}}}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'{_SKIP_CUSTOM}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      containerStatuses:
      {{{{ range $index, $item := .spec.containers }}}}
      - image: {{{{ $item.image | Quote }}}}
        name: {{{{ $item.name | Quote }}}}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{{{ $now | Quote }}}}
            reason: Completed
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  delay:  # coalesces the events of one terminating pod into one delete (see above)
    durationMilliseconds: 300
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '.metadata.annotations["{HOLD_DELETION}"]'
      operator: 'NotIn'
      values:
      - 'true'
  next:
    finalizers:
      empty: true
    delete: true
"""


class KubeClusterError(RuntimeError):
    """A component did not come up (the message carries the tail of its log)."""


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_ERROR_LINE = re.compile(r'^(Error:|[EF]\d{4} )|"level":"(error|fatal|panic)"|^panic:')


def _tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` of a log, after its last few error lines (a usage text can bury them)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"(no log: {e})"
    errors = [line for line in text[:-lines] if _ERROR_LINE.search(line)][-5:]
    return "\n".join(([*errors, "..."] if errors else []) + text[-lines:])


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


def _http_ok(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2, context=_INSECURE) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class _Component:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class KubeCluster:
    """A control plane for one test session; ``start()`` it, ``stop()`` it."""

    timeout: float = 90.0  # per readiness check
    progress: Callable[[str], None] = field(default=_stderr, repr=False)  # build progress lines go here
    build_seconds: float = field(default=0.0, init=False)
    start_seconds: float = field(default=0.0, init=False)  # start() without the build
    timings: dict[str, float] = field(default_factory=dict, init=False)  # seconds per readiness check
    _bin: Path | None = field(default=None, init=False)
    _dir: Path | None = field(default=None, init=False)
    _etcd_dir: Path | None = field(default=None, init=False, repr=False)
    _server: str = field(default="", init=False)
    _token: str = field(default="", init=False, repr=False)
    _components: list[_Component] = field(default_factory=list, init=False, repr=False)

    # ---- public properties ------------------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        assert self._bin is not None, "start() the cluster first"
        return self._bin

    @property
    def state_dir(self) -> Path:
        assert self._dir is not None, "start() the cluster first"
        return self._dir

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        """The API server's self-signed certificate and its CA (valid for 127.0.0.1)."""
        return self.state_dir / "certs" / "apiserver.crt"

    @property
    def server(self) -> str:
        return self._server

    @property
    def admin_token(self) -> str:
        return self._token

    @property
    def node_name(self) -> str:
        return NODE_NAME

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> KubeCluster:
        began = time.monotonic()
        self._bin = self._build()
        self.build_seconds = time.monotonic() - began
        began = time.monotonic()
        try:
            self._start_components()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every component's process group (etcd last), SIGKILL what is left after ``grace``."""
        etcd = [c for c in self._components if c.name == "etcd"]
        for batch in ([c for c in self._components if c.name != "etcd"], etcd):
            for component in batch:
                _signal_group(component.proc, signal.SIGTERM)
            deadline = time.monotonic() + grace
            for component in batch:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                _signal_group(component.proc, signal.SIGKILL)  # stragglers in the group too
                if component.proc.poll() is None:
                    component.proc.wait(timeout=10)
        self._components.clear()
        if os.environ.get("HIGHWAY_KEEP_TEST_STATE") == "1":
            if self._dir is not None:
                self.progress(f"kube: kept state in {self._dir} (etcd data: {self._etcd_dir})")
            return
        for directory in (self._etcd_dir, self._dir):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> KubeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- clients -----------------------------------------------------------------------------------------
    def kubectl(
        self, *args: str, token: str | None = None, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster (as admin, or as the bearer ``token``)."""
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig)]
        if token is not None:
            cmd += ["--token", token]
        cmd += list(args)
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def api_client(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for this cluster (admin, or the bearer ``token``)."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.server
        config.api_key = {"BearerToken": token or self.admin_token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        config.ssl_ca_cert = str(self.ca_file)  # the API server's self-signed CA: verified, no warnings
        return client.ApiClient(config)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A bound token of the ServiceAccount ``namespace/name`` (TokenRequest API)."""
        from kubernetes import client

        with self.api_client() as api:
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[ISSUER], expiration_seconds=seconds)
            )
            response = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
        return str(response.status.token)

    def kubeconfig_for(self, path: Path, token: str, namespace: str = "default") -> Path:
        """A kubeconfig at ``path`` that talks to this cluster with ``token`` (a client such as Airflow's)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [
                {"name": "ctx", "context": {"cluster": "test", "user": "user", "namespace": namespace}}
            ],
            "current-context": "ctx",
        }
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)  # it holds a token
        return path

    def write_pod_log(self, text: str, previous: bool = False, stream: str = "stdout") -> None:
        """Set what ``kubectl logs`` (``previous``: ``kubectl logs --previous``) returns, for any pod."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines = "".join(f"{now} {stream} F {line}\n" for line in text.splitlines())
        path = self.state_dir / "pod-logs" / ("previous.log" if previous else "current.log")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(lines)
        tmp.replace(path)

    # ---- internals ---------------------------------------------------------------------------------------
    def _build(self) -> Path:
        proc = subprocess.Popen(
            ["bash", "tools/k8s/build.sh"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None and proc.stdout is not None
        seen: list[str] = []
        for line in proc.stderr:  # progress lines ("k8s build: ...") while a first build compiles
            line = line.rstrip("\n")
            seen.append(line)
            self.progress(line)
        out = proc.stdout.read()
        if proc.wait() != 0:
            raise KubeClusterError(
                f"bash tools/k8s/build.sh failed (exit {proc.returncode}):\n" + "\n".join(seen[-40:])
            )
        return Path(out.strip().splitlines()[-1])

    def _spawn(self, name: str, *args: str) -> _Component:
        log = self.state_dir / "logs" / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as a whole by stop()
            )
        component = _Component(name, proc, log)
        self._components.append(component)
        return component

    def _wait(self, component: _Component, what: str, ready: Callable[[], bool]) -> None:
        began = time.monotonic()
        deadline = began + self.timeout
        while True:
            for running in self._components:
                code = running.proc.poll()
                if code is not None:
                    raise KubeClusterError(
                        f"{running.name} exited with code {code} while waiting for {what}; "
                        f"last lines of {running.log}:\n{_tail(running.log)}"
                    )
            if ready():
                self.timings[f"{component.name} {what}"] = round(time.monotonic() - began, 2)
                return
            if time.monotonic() > deadline:
                raise KubeClusterError(
                    f"{component.name}: {what} not within {self.timeout:.0f} s; "
                    f"last lines of {component.log}:\n{_tail(component.log)}"
                )
            time.sleep(0.1)

    def _prepare(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="highway-kube-"))
        shm = Path("/dev/shm")
        on_shm = shm.is_dir() and os.access(shm, os.W_OK)
        self._etcd_dir = Path(tempfile.mkdtemp(prefix="highway-kube-etcd-", dir=shm if on_shm else self._dir))
        for sub in ("logs", "certs", "pod-logs"):
            (self._dir / sub).mkdir()
        for name in ("current.log", "previous.log"):
            (self._dir / "pod-logs" / name).touch()
        self._token = secrets.token_hex(24)
        (self._dir / "tokens.csv").write_text(f'{self._token},admin,admin,"system:masters"\n')
        subprocess.run(
            ["openssl", "genrsa", "-out", str(self._dir / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )

    def _write_kubeconfig(self) -> None:
        self.kubeconfig_for(self.kubeconfig, self.admin_token)

    def _write_kwok_config(self) -> Path:
        logs = self.state_dir / "pod-logs"
        cluster_logs = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "all-pods"},
            "spec": {
                "selector": {},
                "logs": [
                    {
                        "logsFile": str(logs / "current.log"),
                        "previousLogsFile": str(logs / "previous.log"),
                        "follow": False,
                    }
                ],
            },
        }
        path = self.state_dir / "kwok.yaml"
        path.write_text(_POD_STAGES + "---\n" + json.dumps(cluster_logs) + "\n")
        return path

    def _start_components(self) -> None:
        self._prepare()
        d = self.state_dir
        kubeconfig = str(self.kubeconfig)

        etcd_port, etcd_peer = _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        etcd = self._spawn(
            "etcd",
            f"--data-dir={self._etcd_dir}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._wait(etcd, "/health", lambda: _http_ok(f"{etcd_url}/health"))

        api_port = _free_port()
        self._server = f"https://127.0.0.1:{api_port}"
        apiserver = self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={d / 'certs'}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            f"--service-account-key-file={d / 'sa.key'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            f"--service-account-issuer={ISSUER}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={d / 'tokens.csv'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",  # no Endpoints for the loopback address (refused)
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=true",
        )
        self._wait(apiserver, "/readyz", lambda: _http_ok(f"{self.server}/readyz", self.admin_token))
        self._write_kubeconfig()
        self._create_node()  # now: the controller manager lifts its not-ready taint once kwok reports Ready

        cm_port = _free_port()
        controller_manager = self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--controllers=*",
            f"--service-account-private-key-file={d / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",  # published as kube-root-ca.crt
            "--use-service-account-credentials",
            "--kube-api-qps=200",  # its ~40 controllers start (and sync caches) in ~1 s instead of ~5 s
            "--kube-api-burst=400",
            f"--secure-port={cm_port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={d / 'certs' / 'kube-controller-manager'}",
        )
        scheduler_port = _free_port()
        scheduler = self._spawn(
            "kube-scheduler",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            f"--secure-port={scheduler_port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={d / 'certs' / 'kube-scheduler'}",
        )
        kwok_port = _free_port()
        kwok = self._spawn(
            "kwok",
            f"--kubeconfig={kubeconfig}",
            f"--config={self._write_kwok_config()}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-ip=127.0.0.1",
            f"--node-port={kwok_port}",
            f"--cidr={POD_CIDR}",
        )
        self._wait(controller_manager, "/healthz", lambda: _http_ok(f"https://127.0.0.1:{cm_port}/healthz"))
        self._wait(scheduler, "/healthz", lambda: _http_ok(f"https://127.0.0.1:{scheduler_port}/healthz"))
        self._wait(kwok, "/healthz", lambda: _http_ok(f"http://127.0.0.1:{kwok_port}/healthz"))
        self._wait_node(kwok)

    def _create_node(self) -> None:
        from kubernetes import client

        resources = {"cpu": "32", "memory": "128Gi", "pods": "110"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": NODE_NAME,
                },
            },
            "spec": {},
            "status": {"capacity": resources, "allocatable": resources},
        }
        with self.api_client() as api:
            client.CoreV1Api(api).create_node(node)

    def _wait_node(self, kwok: _Component) -> None:
        from kubernetes import client

        with self.api_client() as api:
            core = client.CoreV1Api(api)

            def ready() -> bool:
                current = core.read_node(NODE_NAME)
                conditions = {c.type: c.status for c in current.status.conditions or []}
                # the node lifecycle controller's not-ready taint goes once kwok reports Ready
                return conditions.get("Ready") == "True" and not current.spec.taints

            self._wait(kwok, f"node {NODE_NAME} Ready and untainted", ready)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def simulate_crashloop(
    api_client: Any,
    namespace: str,
    pod_name: str,
    reason: str = "Error",
    exit_code: int = 1,
    restarts: int = 5,
    container: str | None = None,
) -> None:
    """Make the API report the pod's containers (or just ``container``) as crash-looping.

    Each is waiting in CrashLoopBackOff, with ``lastState.terminated`` (``reason``, ``exitCode``) and
    ``restartCount``; the pod stays phase Running, Ready and ContainersReady False. The pod is annotated
    ``kwok.x-k8s.io/status=custom`` first, so the harness's kwok stages leave its status alone from then on
    (deleting the pod still works; a recreated pod starts normally).
    """
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    core.patch_namespaced_pod(pod_name, namespace, {"metadata": {"annotations": {CUSTOM_STATUS: "custom"}}})
    pod = core.read_namespaced_pod(pod_name, namespace)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    started = (now - dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = {s.name: s for s in pod.status.container_statuses or []}
    statuses = []
    for spec in pod.spec.containers:
        old = previous.get(spec.name)
        if container is not None and spec.name != container:
            if old is not None:
                statuses.append(api_client.sanitize_for_serialization(old))
            continue
        statuses.append(
            {
                "name": spec.name,
                "image": spec.image,
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": restarts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 5m0s restarting failed container={spec.name} "
                        f"pod={pod_name}_{namespace}({pod.metadata.uid})",
                    }
                },
                "lastState": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": reason,
                        "startedAt": started,
                        "finishedAt": stamp,
                    }
                },
            }
        )
    conditions = [api_client.sanitize_for_serialization(c) for c in pod.status.conditions or []]
    for condition in conditions:
        if condition["type"] in ("Ready", "ContainersReady") and condition["status"] != "False":
            condition.update(status="False", reason="ContainersNotReady", lastTransitionTime=stamp)
            condition["message"] = (
                f"containers with unready status: [{' '.join(s['name'] for s in statuses)}]"
            )
    status = {"phase": "Running", "conditions": conditions, "containerStatuses": statuses}
    core.patch_namespaced_pod_status(
        pod_name, namespace, {"status": status}, _content_type="application/merge-patch+json"
    )


def wait_for(
    what: str, probe: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 60, every: float = 0.1
) -> Any:
    """Poll ``probe`` until ``ok`` holds for its value; fail the test naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not ok(value):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last: {value}"
        time.sleep(every)
        value = probe()
    return value
