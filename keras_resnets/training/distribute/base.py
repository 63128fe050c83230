"""`Distribution`: the interface `train` runs through, and its one-device implementation.

Its two engines subclass it: `StrategyDistribution` (TensorFlow's `tf.distribute`, in
`strategy.py`) and `KerasDistribution` (`keras.distribution` on JAX, in
`keras_distribution.py`). What every engine shares lives here: the global batch check, the
chief's run folder and the other workers' temporary copies, the resume check and the summary.
"""

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

# The run folder's entries that BackupAndRestore reads back on a restart: a non-chief worker
# starts from a copy of the chief's, so that every worker restores the same state.
BACKUP_DIR = "backup"


class Distribution:
    """How `train` runs: the engine, the replicas, and whether this process is the chief.

    This class is the one-device case (`distribute="none"`) and the interface of the engines;
    `resolve` builds the right one. Attributes:
        name: "none", "mirrored", "multi_worker" or "custom".
        engine: the `tf.distribute.Strategy` or `keras.distribution` object, else None.
        strategy: the `tf.distribute.Strategy` (TensorFlow backend), else None.
        distribution: the `keras.distribution` DataParallel or ModelParallel (JAX), else None.
        num_replicas: replicas taking part in each step (each gets a slice of the batch).
        num_workers: processes taking part.
        worker_index: this process's index; the chief is 0.
        is_chief: whether this process writes the run folder.
    """

    engine = strategy = distribution = None

    def __init__(
        self, name="none", *, num_replicas=1, num_workers=1, worker_index=0, is_chief=True
    ):
        self.name = name
        self.num_replicas = num_replicas
        self.num_workers = num_workers
        self.worker_index = worker_index
        self.is_chief = is_chief
        self._temp_dir = None

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name!r}, num_replicas={self.num_replicas}, "
            f"num_workers={self.num_workers}, worker_index={self.worker_index})"
        )

    # --- what each engine does its own way -----------------------------------------------

    def scope(self):
        """The context to build, compile, fit and evaluate in."""
        return contextlib.nullcontext()

    def distribute_datasets(self, *datasets):
        """The datasets, set up to be split between the replicas and workers (one device:
        unchanged). Returns one dataset for one, else a tuple."""
        return datasets if len(datasets) > 1 else datasets[0]

    def callbacks(self):
        """Callbacks `fit` needs under this distribution, to be run before any checkpoint."""
        return []

    def _all_gather(self, value):
        """Every worker's integer `value`, worker 0 first."""
        if self.num_workers == 1:
            return [value]
        raise NotImplementedError(f"{type(self).__name__} cannot gather across workers.")

    # --- the same for every engine --------------------------------------------------------

    def check_batch_size(self, batch_size):
        """The global batch must split evenly: Keras averages the per-replica losses with equal
        weights, which is the global mean only if the replicas' batches are equal."""
        if batch_size % self.num_replicas:
            raise ValueError(
                f"The global batch size must be a multiple of the number of replicas "
                f"({self.num_replicas}). Received: batch_size={batch_size}"
            )

    def writable_run_folder(self, out):
        """The folder this process writes its run folder into.

        The chief writes `out` itself. Every other worker must still run the same saves (with
        MultiWorkerMirroredStrategy reading some variables is a collective op), so it writes into
        a fresh temporary folder, deleted by `close` (or at exit), holding a copy of the chief's
        `backup/`: every worker then restores the same epoch and weights on a restart. This needs
        `out` on a file system all workers see (NFS, GCS, ...), as TensorFlow's BackupAndRestore
        does; `check_same` catches a worker that does not see it.
        """
        out = Path(out)
        if self.is_chief:
            out.mkdir(parents=True, exist_ok=True)
            return out
        prefix = f"keras_resnets_worker{self.worker_index}_"
        self._temp_dir = Path(tempfile.mkdtemp(prefix=prefix))
        atexit.register(shutil.rmtree, self._temp_dir, ignore_errors=True)
        if (out / BACKUP_DIR).is_dir():
            shutil.copytree(out / BACKUP_DIR, self._temp_dir / BACKUP_DIR)
        return self._temp_dir

    def check_same(self, value, what):
        """Raise ValueError unless every worker passes the same integer `value`."""
        if self.num_workers == 1:
            return
        values = self._all_gather(int(value))
        if len(set(values)) > 1:
            raise ValueError(
                f"The workers disagree on {what}: {values} (worker 0 first). Every worker must "
                f"see the chief's run folder (a shared file system), so that all of them "
                f"resume from the same backup."
            )

    def close(self):
        """Delete a non-chief worker's temporary folder."""
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def describe(self):
        """A JSON-able summary for summary.json."""
        return {
            "name": self.name,
            "engine": type(self.engine).__name__ if self.engine is not None else None,
            "num_replicas": self.num_replicas,
            "num_workers": self.num_workers,
            "worker_index": self.worker_index,
            "is_chief": self.is_chief,
        }
