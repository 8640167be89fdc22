"""Elasticsearch from its integ-test zip (Maven Central), one node, run as its own OS user.

The zip has no bundled JDK and only a few modules (no painless, no reindex); ES 9 needs Java 21+,
so ES_JAVA_HOME points at the newest JDK under /usr/lib/jvm. Elasticsearch refuses to run as root.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from highway.errors import StackError
from highway.stack.install import ensure_system_user, find_jdk, maven_artifact, unzip_once
from highway.stack.process import RunAs, read_pid, require_reachable, run_as, spawn
from highway.stack.render import ES_MIN_JAVA, ES_VERSION, elasticsearch_jvm_options, elasticsearch_yml
from highway.stack.service import Service, chown_tree, copy_tree_once, make_dir, write_file

OS_USER = "highway-es"
ES_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")  # the rest of our environment stays ours
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"


class Elasticsearch(Service):
    name = "elasticsearch"
    start_timeout = 180.0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_dir(self) -> Path:
        return self.dir / "config"

    @property
    def own_pid_file(self) -> Path:
        """Where Elasticsearch writes its pid (a directory it owns); copied to run/elasticsearch.pid."""
        return self.dir / "run" / "elasticsearch.pid"

    @property
    def user(self) -> RunAs | None:
        return run_as(OS_USER)

    @property
    def tmp_dir(self) -> Path:
        return self.dir / "tmp"

    def marker(self) -> str:
        # the node's command line has -Djava.io.tmpdir=<ES_TMPDIR>; its config path comes on stdin
        return str(self.tmp_dir)

    def install(self) -> None:
        downloads = self.ctx.cache / "downloads" / f"elasticsearch-{ES_VERSION}"
        downloads.mkdir(parents=True, exist_ok=True)
        archive = maven_artifact(ES_ARTIFACT, downloads, self.step)
        target = self.ctx.cache / "elasticsearch" / ES_VERSION
        make_dir(target.parent, None, 0o755)  # the node's user must reach its home whatever our umask
        self.es_home = unzip_once(archive, target, self.step)
        self.java_home = find_jdk(ES_MIN_JAVA)
        ensure_system_user(OS_USER)

    def prepare(self) -> None:
        user = self.user
        require_reachable(self.es_home / "bin", user, self.name)
        require_reachable(self.java_home / "bin", user, self.name)
        for sub in ("", "data", "logs", "tmp", "run"):
            make_dir(self.dir / sub, user, 0o750 if sub else 0o755)
        require_reachable(self.dir / "data", user, self.name)
        copy_tree_once(self.es_home / "config", self.config_dir)
        make_dir(self.config_dir / "jvm.options.d", None)
        write_file(self.config_dir / "elasticsearch.yml", self._yml(), None)
        write_file(self.config_dir / "jvm.options.d" / "highway.options", elasticsearch_jvm_options(), None)
        chown_tree(self.config_dir, user)
        self.own_pid_file.unlink(missing_ok=True)

    def _yml(self) -> str:
        return elasticsearch_yml(self.dir, self.port, self.ctx.ports["elasticsearch_transport"])

    def _env(self) -> dict[str, str]:
        """Only what the node needs: not our environment (which may hold highway's credentials)."""
        env = {key: os.environ[key] for key in ES_INHERITED_ENV if key in os.environ}
        env.update(
            ES_JAVA_HOME=str(self.java_home),
            ES_PATH_CONF=str(self.config_dir),
            ES_TMPDIR=str(self.tmp_dir),
            HOME=str(self.dir),
        )
        return env

    def launch(self) -> int:
        """``bin/elasticsearch -d`` returns once the node is up; the node's pid comes from its pid file."""
        argv = [str(self.es_home / "bin" / "elasticsearch"), "-d", "-p", str(self.own_pid_file)]
        self.step("starting the node (Elasticsearch takes 20-60 s)")
        launcher = spawn(argv, self.log_file, env=self._env(), cwd=self.dir, user=self.user)
        try:
            code = launcher.wait(timeout=self.start_timeout)
        except subprocess.TimeoutExpired as exc:
            launcher.kill()
            raise StackError(
                f"elasticsearch: the launcher did not finish in {self.start_timeout:.0f} s; "
                f"see {self.log_file} and {self.dir / 'logs'}"
            ) from exc
        pid = read_pid(self.own_pid_file)
        if code != 0 or pid is None:
            raise StackError(
                f"elasticsearch: failed to start (exit {code}); see {self.dir / 'logs'}\n{self.log_tail()}"
            )
        return pid

    def healthy(self) -> bool:
        url = f"{self.address}/_cluster/health?wait_for_status=yellow&timeout=1s"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def cleanup_after_stop(self) -> None:
        self.own_pid_file.unlink(missing_ok=True)
