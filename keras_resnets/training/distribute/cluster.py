"""The cluster of a multi-worker job, from the environment or from TensorFlow's resolver.

One launch script serves both backends: `TF_CONFIG` (TensorFlow's) configures JAX too where
`KERAS_DISTRIBUTION_*` (Keras's) is not set.
"""

import json
import os

TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


def require_tf_config():
    """Raise ValueError unless `TF_CONFIG` describes the cluster."""
    if not os.environ.get("TF_CONFIG"):
        raise ValueError(
            "distribute='multi_worker' needs the cluster in the TF_CONFIG environment variable "
            f"(see docs/distributed.md), e.g. {TF_CONFIG_EXAMPLE}. Received: TF_CONFIG unset"
        )


def require_jax_cluster():
    """Raise ValueError unless KERAS_DISTRIBUTION_JOB_ADDRESSES or TF_CONFIG is set."""
    if not (os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or os.environ.get("TF_CONFIG")):
        raise ValueError(
            "distribute='multi_worker' on JAX needs the cluster in "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and "
            "KERAS_DISTRIBUTION_PROCESS_ID, or in TF_CONFIG (see docs/distributed.md). "
            "Received: neither set"
        )


def jax_cluster_from_env():
    """keras.distribution.initialize's arguments: from KERAS_DISTRIBUTION_* when set (Keras
    reads them itself), else from TF_CONFIG."""
    if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or not os.environ.get("TF_CONFIG"):
        return {}
    config = json.loads(os.environ["TF_CONFIG"])
    cluster, task = config["cluster"], config["task"]
    addresses = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
    index = int(task.get("index", 0))
    if task["type"] == "worker":
        index += len(cluster.get("chief", []))
    return {
        "job_addresses": ",".join(addresses),
        "num_processes": len(addresses),
        "process_id": index,
    }


def workers_of(resolver):
    """(number of workers, this worker's index) from a tf.distribute cluster resolver: the
    chief, if any, is worker 0; (1, 0) without a cluster."""
    if resolver is None or not resolver.cluster_spec().jobs:
        return 1, 0
    spec = resolver.cluster_spec().as_dict()
    chiefs = len(spec.get("chief", []))
    index = chiefs + int(resolver.task_id) if resolver.task_type == "worker" else 0
    return chiefs + len(spec.get("worker", [])), index
