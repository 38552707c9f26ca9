"""A RabbitMQ for tests: the one answering on 127.0.0.1:5672, or one started here with
`rabbitmq-server -detached` (Debian's package; `.ci/run` installs it). Never skips."""

from __future__ import annotations

import shutil
import socket
import subprocess

from support.waiting import wait_for

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def answers(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def rabbitmq_url() -> str:
    """The URL of a running RabbitMQ, starting one when none answers."""
    if answers():
        return RABBITMQ_URL
    server = shutil.which("rabbitmq-server")
    if server is None:
        raise RuntimeError("no RabbitMQ answers on 127.0.0.1:5672 and rabbitmq-server is absent")
    subprocess.run([server, "-detached"], check=True, timeout=60)
    wait_for(answers, timeout=120, interval=0.5, what="RabbitMQ to answer on 5672")
    return RABBITMQ_URL


def delete_queues(url: str, names: list[str]) -> None:
    """Delete `names` and dramatiq's delay (.DQ) and dead-letter (.XQ) queues of each."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in names:
            for queue in (name, f"{name}.DQ", f"{name}.XQ"):
                channel.queue_delete(queue)
    finally:
        connection.close()


class VirtualHost:
    """A vhost of this test's own (queues of concurrent tests never mix), made with
    `rabbitmqctl` and deleted on `close`; without `rabbitmqctl`, the default vhost, whose
    queues `close` deletes."""

    def __init__(self, name: str, queues: list[str]) -> None:
        self.ctl = shutil.which("rabbitmqctl")
        self.name = name if self.ctl else "/"
        self.queues = queues
        base = rabbitmq_url().rsplit("/", 1)[0]
        self.url = f"{base}/{name}" if self.ctl else RABBITMQ_URL
        if self.ctl:
            self._ctl("add_vhost", name)
            self._ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")

    def _ctl(self, *args: str) -> None:
        subprocess.run([self.ctl, "-q", *args], check=True, timeout=60, capture_output=True)

    def close(self) -> None:
        if self.ctl:
            self._ctl("delete_vhost", self.name)
        else:
            delete_queues(self.url, self.queues)
