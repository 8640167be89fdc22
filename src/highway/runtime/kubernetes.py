"""The Kubernetes adapter of the AppRuntime port: one driver StatefulSet (``replicas: 1``) per catalog app.

It speaks to the API server through an injected ``kubernetes.client.ApiClient`` (built by
``from_kubeconfig``/``in_cluster`` without touching the client library's global configuration) and reads
and writes plain JSON dicts:

- deploy: validates, then server-side applies ``core.k8s.apps.app_objects`` (field manager ``highway``,
  force), in order; applying the same spec again changes nothing.
- restart: deletes the driver pod (uid precondition) and waits for the StatefulSet controller to replace
  it; the controller creates ``<driver>-0`` only after the old pod object is gone, so two drivers never
  share a checkpoint. The runtime never creates a pod itself.
- stop/start: the StatefulSet's ``scale`` subresource (0 / 1).

Every API call it makes is listed in ``API_CALLS`` (verb, resource): the Airflow service account's Role
(``core.k8s.base.RUNTIME_RULES``) must grant exactly these. Errors become ``RuntimeTransient`` or
``RuntimeTerminal`` with one line naming the action, the object and the API server's reason.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from highway.catalog.model import AppSpec
from highway.core.k8s import common as k
from highway.core.k8s.apps import app_objects
from highway.core.k8s.status import DRIVER_CONTAINER, AppStatus, interpret
from highway.runtime.base import DEFAULT_TIMEOUT, RuntimeTerminal, RuntimeTransient

# (verb, API group, resource[/subresource]) of every request this runtime sends; RBAC must allow each
API_CALLS: tuple[tuple[str, str, str], ...] = (
    ("patch", "", "configmaps"),  # deploy: server-side apply (PATCH; it creates a missing object)
    ("patch", "", "services"),
    ("patch", "apps", "statefulsets"),
    ("patch", "networking.k8s.io", "networkpolicies"),
    ("get", "apps", "statefulsets"),  # status, restart, stop, start
    ("get", "", "pods"),  # status, restart, stop
    ("delete", "", "pods"),  # restart
    ("patch", "apps", "statefulsets/scale"),  # stop, start
    ("get", "", "pods/log"),  # logs
)
# server-side apply creating an object is authorized as "create" as well as "patch"
APPLY_CREATES: tuple[tuple[str, str, str], ...] = tuple(
    ("create", group, resource) for _verb, group, resource in API_CALLS[:4]
)

# kind -> plural, for the kinds app_objects renders
PLURALS = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "StatefulSet": "statefulsets",
    "NetworkPolicy": "networkpolicies",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_STATEFULSET_NAME = 52  # the controller adds "-<10-char hash>" to it in a label value (<= 63)
MAX_CONFIG_BYTES = 900_000  # a ConfigMap holds at most 1 MiB
TRANSIENT_STATUS = {408, 409, 410, 429}  # timeout, conflict, expired version, throttled (and every 5xx)
REQUEST_TIMEOUT = (10.0, 60.0)  # seconds: connect, read

Json = dict[str, Any]


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _api_message(error: ApiException) -> str:
    """The API server's own message (its ``Status`` body), else the HTTP reason."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            return _one_line(body)
        if isinstance(data, dict) and data.get("message"):
            return _one_line(data["message"])
    return _one_line(str(error.reason or "no reason given"))


def _connection_cause(error: BaseException) -> str:
    """``[Errno 111] Connection refused`` / ``timed out`` out of urllib3's nested wrappers."""
    cause: BaseException = getattr(error, "reason", None) or error
    text = str(cause)
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if match:
        return match.group(0).strip()
    if "timed out" in text.lower() or "timeout" in type(cause).__name__.lower():
        return "timed out"
    return _one_line(f"{type(cause).__name__}: {text}", 160)


def classify(where: str, error: ApiException, host: str) -> RuntimeTransient | RuntimeTerminal:
    """An API error as one line: transient (5xx, 408/409/410/429, no answer) or terminal (other 4xx, TLS)."""
    status = int(error.status or 0)
    if status == 0:  # no HTTP answer (TLS failure): a certificate problem will not go away
        reason = _one_line(str(error.reason), 200)
        cls: type[RuntimeTransient | RuntimeTerminal] = (
            RuntimeTerminal if "CERTIFICATE_VERIFY_FAILED" in reason else RuntimeTransient
        )
        return cls(f"{where}: no answer from {host}: {reason}")
    message = f"{where}: HTTP {status} {_one_line(str(error.reason or ''), 60)}: {_api_message(error)}"
    if status >= 500 or status in TRANSIENT_STATUS:
        return RuntimeTransient(message)
    if status == 401:
        return RuntimeTerminal(f"{message} (the credentials were refused)")
    if status == 403:
        return RuntimeTerminal(f"{message} (the service account's Role does not allow it)")
    return RuntimeTerminal(message)


def unreachable(where: str, error: BaseException, host: str) -> RuntimeTransient:
    return RuntimeTransient(f"{where}: cannot reach the API server at {host}: {_connection_cause(error)}")


class KubernetesRuntime:
    """Runs catalog apps as driver StatefulSets in ``namespace``.

    ``clock``/``sleep``/``poll`` pace the waits of restart and stop (injected for tests).
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str = k.NAMESPACE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 0.5,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        if not DNS_LABEL.match(namespace) or len(namespace) > 63:
            raise RuntimeTerminal(
                f"namespace {namespace!r} is not a Kubernetes namespace name; "
                "allowed: lower-case letters, digits and '-', at most 63 characters"
            )
        self.api = api_client
        self.namespace = namespace
        self.clock = clock
        self.sleep = sleep
        self.poll = poll
        self.request_timeout = request_timeout
        host = getattr(getattr(api_client, "configuration", None), "host", None)
        self.host = str(host) if host else "the API server"

    # ---- the port -----------------------------------------------------------------------------------------
    def deploy(self, spec: AppSpec, catalog_text: str, image: str | None = None) -> AppStatus:
        self._validate(spec, catalog_text, image)
        for obj in app_objects(spec, catalog_text, image=image, namespace=self.namespace):
            self._apply(spec.name, obj)
        return self.status(spec.name)

    def status(self, app: str) -> AppStatus:
        statefulset = self._get_statefulset(f"status {app}", app)
        pod = self._get_pod(f"status {app}", app) if statefulset is not None else None
        return interpret(app, statefulset, pod)

    def restart(self, app: str, timeout: float = DEFAULT_TIMEOUT) -> AppStatus:
        action = f"restart {app}"
        statefulset = self._require_statefulset(action, app)
        if _replicas(statefulset) == 0:
            raise RuntimeTerminal(
                f"{action}: the app is stopped (StatefulSet {self._ref(app)} has 0 replicas); start it"
            )
        deadline = self.clock() + timeout
        pod = self._get_pod(action, app)
        if pod is not None:
            uid = str(pod["metadata"]["uid"])
            self._delete_pod(action, app, uid)
            self._wait(
                action,
                deadline,
                timeout,
                f"the old driver pod {self.namespace}/{k.driver_pod(app)} (uid {uid}) to be gone",
                lambda: _uid(self._get_pod(action, app)) != uid,
            )
        else:
            uid = ""
        self._wait(
            action,
            deadline,
            timeout,
            f"the StatefulSet {self._ref(app)} to create its new driver pod {k.driver_pod(app)}",
            lambda: _uid(self._get_pod(action, app)) not in ("", uid),
        )
        return self.status(app)

    def stop(self, app: str, timeout: float = DEFAULT_TIMEOUT) -> AppStatus:
        action = f"stop {app}"
        self._require_statefulset(action, app)
        deadline = self.clock() + timeout
        self._scale(action, app, 0)
        self._wait(
            action,
            deadline,
            timeout,
            f"the driver pod {self.namespace}/{k.driver_pod(app)} to be gone",
            lambda: self._get_pod(action, app) is None,
        )
        return self.status(app)

    def start(self, app: str) -> AppStatus:
        action = f"start {app}"
        self._require_statefulset(action, app)
        self._scale(action, app, 1)
        return self.status(app)

    def logs(self, app: str, tail: int = 200) -> str:
        action = f"logs of {app}"
        if tail < 1:
            raise RuntimeTerminal(f"{action}: tail must be 1 or more lines, not {tail}")
        self._check_app(action, app)
        name = k.driver_pod(app)
        path = f"/api/v1/namespaces/{self.namespace}/pods/{name}/log"
        query = [("container", DRIVER_CONTAINER), ("tailLines", str(tail))]
        try:
            return self._request("GET", path, query=query, accept="*/*", parse=False) or ""
        except ApiException as error:
            if error.status == 404:
                raise RuntimeTerminal(
                    f"{action}: no driver pod {self.namespace}/{name} (the app is stopped or not deployed): "
                    f"{_api_message(error)}"
                ) from None
            if error.status == 400:  # the container has not started (or is waiting to restart)
                raise RuntimeTransient(
                    f"{action}: pod {self.namespace}/{name} has no log yet: {_api_message(error)}"
                ) from None
            raise self._error(action, "Pod", name, error) from None
        except (HTTPError, OSError) as error:
            raise self._unreachable(action, "Pod", name, error) from None

    # ---- requests -----------------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        parse: bool = True,
    ) -> Any:
        """One HTTP request through the injected ApiClient; the JSON reply as a dict (or text)."""
        response = self.api.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=self.request_timeout,
        )
        data = response.data.decode("utf-8", "replace")
        return json.loads(data) if parse else data

    def _call(
        self,
        action: str,
        kind: str,
        name: str,
        method: str,
        path: str,
        missing_ok: bool = False,
        tolerate: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Json | None:
        """One request; a 404 with ``missing_ok`` or a ``tolerate``d status gives None; errors wrapped."""
        try:
            result: Json = self._request(method, path, **kwargs)
            return result
        except ApiException as error:
            if (missing_ok and error.status == 404) or error.status in tolerate:
                return None
            raise self._error(action, kind, name, error) from None
        except (HTTPError, OSError) as error:
            raise self._unreachable(action, kind, name, error) from None

    def _error(
        self, action: str, kind: str, name: str, error: ApiException
    ) -> RuntimeTransient | RuntimeTerminal:
        return classify(f"{action}: {kind} {self.namespace}/{name}", error, self.host)

    def _unreachable(self, action: str, kind: str, name: str, error: BaseException) -> RuntimeTransient:
        return unreachable(f"{action}: {kind} {self.namespace}/{name}", error, self.host)

    # ---- objects ------------------------------------------------------------------------------------------
    def _ref(self, app: str) -> str:
        return f"{self.namespace}/{k.driver_name(app)}"

    def _path(self, api_version: str, plural: str, name: str) -> str:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return f"{prefix}/namespaces/{self.namespace}/{plural}/{name}"

    def _validate(self, spec: AppSpec, catalog_text: str, image: str | None) -> None:
        """Refuse what the API server would refuse (or what would clash) before anything is changed."""
        action = f"deploy {spec.name}"
        if image is not None and not k.is_image(image):
            raise RuntimeTerminal(f"{action}: key 'image' has value {image!r}; allowed: {k.IMAGE_HELP}")
        if not k.is_image(spec.image):
            raise RuntimeTerminal(
                f"{action}: catalog key 'image' has value {spec.image!r}; allowed: {k.IMAGE_HELP}"
            )
        self._check_app(action, spec.name)
        size = len(catalog_text.encode())
        if size > MAX_CONFIG_BYTES:
            raise RuntimeTerminal(
                f"{action}: the catalog text is {size} bytes; "
                f"allowed: at most {MAX_CONFIG_BYTES} (it travels in a ConfigMap)"
            )

    def _apply(self, app: str, obj: Json) -> None:
        kind = str(obj["kind"])
        name = str(obj["metadata"]["name"])
        plural = PLURALS.get(kind)
        if plural is None:
            raise RuntimeTerminal(f"deploy {app}: no API path known for kind {kind} ({name})")
        self._call(
            f"deploy {app}",
            kind,
            name,
            "PATCH",
            self._path(str(obj["apiVersion"]), plural, name),
            query=[("fieldManager", k.FIELD_MANAGER), ("force", "true")],
            body=obj,
            content_type="application/apply-patch+yaml",  # the client sends JSON, a subset of YAML
        )

    def _check_app(self, action: str, app: str) -> None:
        """An app name whose StatefulSet name Kubernetes accepts (checked before any request)."""
        name = k.driver_name(app)
        if not DNS_LABEL.match(name) or len(name) > MAX_STATEFULSET_NAME:
            raise RuntimeTerminal(
                f"{action}: key 'name' has value {app!r}, whose StatefulSet name {name!r} is not allowed; "
                "allowed: a catalog app name (lower-case letters, digits and '_'), "
                f"at most {MAX_STATEFULSET_NAME - len('-driver')} characters"
            )

    def _get_statefulset(self, action: str, app: str) -> Json | None:
        self._check_app(action, app)
        name = k.driver_name(app)
        return self._call(
            action, "StatefulSet", name, "GET", self._path("apps/v1", "statefulsets", name), True
        )

    def _require_statefulset(self, action: str, app: str) -> Json:
        statefulset = self._get_statefulset(action, app)
        if statefulset is None:
            raise RuntimeTerminal(f"{action}: the app is not deployed (no StatefulSet {self._ref(app)})")
        return statefulset

    def _get_pod(self, action: str, app: str) -> Json | None:
        name = k.driver_pod(app)
        return self._call(action, "Pod", name, "GET", self._path("v1", "pods", name), True)

    def _delete_pod(self, action: str, app: str, uid: str) -> None:
        """Delete the driver pod, only if it is still the one with ``uid`` (gone or replaced: done)."""
        name = k.driver_pod(app)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        # 404: already gone; 409: already replaced (the uid precondition failed)
        self._call(
            action, "Pod", name, "DELETE", self._path("v1", "pods", name), tolerate=(404, 409), body=body
        )

    def _scale(self, action: str, app: str, replicas: int) -> None:
        name = k.driver_name(app)
        self._call(
            action,
            "StatefulSet",
            f"{name}/scale",
            "PATCH",
            self._path("apps/v1", "statefulsets", name) + "/scale",
            body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    def _wait(
        self, action: str, deadline: float, timeout: float, what: str, done: Callable[[], bool]
    ) -> None:
        while not done():
            if self.clock() >= deadline:
                raise RuntimeTransient(f"{action}: timed out after {timeout:g} s waiting for {what}")
            self.sleep(self.poll)


def _replicas(statefulset: Json) -> int:
    replicas = statefulset.get("spec", {}).get("replicas", 1)
    return replicas if isinstance(replicas, int) else 1


def _uid(obj: Json | None) -> str:
    return str(obj["metadata"]["uid"]) if obj is not None else ""


# ---- factories: an ApiClient of its own, the library's default configuration untouched -------------------
def from_kubeconfig(
    path: str | Path | None = None, context: str | None = None, namespace: str = k.NAMESPACE, **kwargs: Any
) -> KubernetesRuntime:
    """A runtime for the cluster of ``context`` in the kubeconfig at ``path`` (default: ``$KUBECONFIG``/~)."""
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=str(path) if path is not None else None,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError, ValueError, TypeError) as error:
        where = f"kubeconfig {path}" if path is not None else "the default kubeconfig"
        ctx = f" (context {context})" if context else ""
        raise RuntimeTerminal(f"cannot load {where}{ctx}: {_one_line(str(error), 200)}") from None
    return KubernetesRuntime(client.ApiClient(configuration), namespace=namespace, **kwargs)


def in_cluster(namespace: str = k.NAMESPACE, **kwargs: Any) -> KubernetesRuntime:
    """A runtime for the cluster this pod runs in, as the pod's service account (Airflow's)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as error:
        raise RuntimeTerminal(f"not running in a Kubernetes pod: {_one_line(str(error), 200)}") from None
    return KubernetesRuntime(client.ApiClient(configuration), namespace=namespace, **kwargs)
