"""Dev/test launcher: real Apache Kafka (KRaft, jars from Maven Central) and a moto S3 server,
as local processes on 127.0.0.1 — no Docker. See ``up``/``down``/``status`` and
``pipeline.dev.cli``.
"""

from pipeline.dev.cluster import down, kill_node, start_node, status, up
from pipeline.dev.libs import ensure_kafka_libs, find_repo_root
from pipeline.dev.model import BrokerInfo, ClusterInfo, DevClusterError, SaslInfo, TlsInfo

__all__ = [
    "BrokerInfo",
    "ClusterInfo",
    "DevClusterError",
    "SaslInfo",
    "TlsInfo",
    "down",
    "ensure_kafka_libs",
    "find_repo_root",
    "kill_node",
    "start_node",
    "status",
    "up",
]
