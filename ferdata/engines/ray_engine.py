"""The Ray engine: the same per-chunk work as the local pool, spread over a Ray cluster
with Ray Data.

``RayExecutor().map_chunks(fn, items, initializer=..., initargs=...)`` cuts ``items`` into
the same chunks the local pool would, puts a few consecutive chunks into each block of a
Ray dataset and runs ``map_batches`` with a class: a pool of actors, each of which calls
``initializer(*initargs)`` once when it starts (a face detector, the descriptors) and then
``fn`` on each chunk of a block, sending every chunk's result back as soon as it is done.
Results reach the driver in input order (Ray Data's ``preserve_order``), so the step that
called it journals and writes exactly the tables it writes on the local pool.

Without an address, ``ray.init()`` starts a local cluster on this machine (and this
executor stops it again on :meth:`close`); ``address`` (``--ray-address`` or
``$RAY_ADDRESS``) joins a running cluster (``ray start --head`` on one machine, ``ray start
--address HEAD:6379`` on the others). Workers read inputs from, and write crops to, the
paths the driver gives them, so on more than one machine the manifests and the dataset
must sit on a filesystem every node mounts at the same path.

Ray is an optional extra (``pip install 'ferdata[ray]'``); without it, creating this engine
fails with one line that says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ferdata.engines._registry import register_engine
from ferdata.engines.base import Progress, R, T, default_chunksize
from ferdata.errors import FerdataError
from ferdata.quiet import stderr_silenced

RAY_REQUIREMENT = "ray[data]==2.60.0"
BLOCKS_PER_WORKER = 4
"""Blocks per actor a run is cut into (each block several of the step's chunks)."""
ACTOR_START_TIMEOUT_S = 600
"""How long the actor pool may take to start (each actor builds its detector first)."""
RAY_MISSING = (f"--engine ray needs Ray, which is not installed; install it with "
               f"pip install 'ferdata[ray]' ({RAY_REQUIREMENT}), or use --engine local")


def import_ray() -> Any:
    """The ``ray`` module with Ray Data loaded, or one line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the engine needs the Data library, not just core
    except ImportError:
        raise FerdataError(RAY_MISSING) from None
    return ray


class ChunkActor:
    """One actor of the pool: the step's per-worker state is built once, in ``__init__``.

    :func:`actor_class` binds the step's function and initializer as class attributes, so
    the class travels as one picklable object and its constructor takes no arguments.
    """

    fn: Callable[[list], list]
    initializer: Callable[..., Any] | None = None
    initargs: tuple = ()
    cwd: str | None = None
    """The driver's working folder: relative paths (``./manifests``) mean the same here."""

    def __init__(self) -> None:
        import ray

        if self.cwd:
            with contextlib.suppress(OSError):  # not mounted on this node: the paths say so later
                os.chdir(self.cwd)
        if self.initializer is not None:
            type(self).initializer(*self.initargs)
        self.node = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()

    def __call__(self, batch: Any) -> Iterator[Any]:
        """A block holds several of the step's chunks; each chunk's result is sent back as
        soon as it is done (the driver journals chunk by chunk, as on the local pool)."""
        import pyarrow as pa

        fn = type(self).fn
        for first, blob in zip(batch.column("first").to_pylist(), batch.column("chunks").to_pylist()):
            for k, chunk in enumerate(pickle.loads(blob)):
                result = pickle.dumps(fn(chunk), protocol=pickle.HIGHEST_PROTOCOL)
                yield pa.table({"seq": pa.array([first + k], pa.int64()), "result": pa.array([result], pa.binary()),
                                "node": pa.array([self.node], pa.string()), "pid": pa.array([self.pid], pa.int64())})


def actor_class(fn: Callable[[list], list], initializer: Callable[..., Any] | None, initargs: tuple) -> type:
    """A :class:`ChunkActor` bound to one step's function and per-worker initializer."""
    return type("ChunkActor", (ChunkActor,), {"fn": staticmethod(fn), "initializer": staticmethod(initializer)
                                              if initializer is not None else None, "initargs": tuple(initargs),
                                              "cwd": os.getcwd()})


@register_engine("ray")
class RayExecutor:
    """Runs the steps' chunks on a Ray cluster through Ray Data (see the module docstring).

    ``workers`` is the size of the actor pool (default: the cluster's CPUs, or its GPUs
    when each worker needs one). ``num_cpus`` limits a local cluster this executor starts
    (default: every core). After every :meth:`map_chunks`, :attr:`last_run` says how many
    chunks and items each node did.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, *, address: str | None = None, num_cpus: int | None = None,
                 num_gpus: int | None = None, object_store_memory: int | None = None) -> None:
        self._ray = import_ray()
        self._workers = workers
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.object_store_memory = object_store_memory
        self._started = False
        self.last_run: dict[str, Any] = {}

    # ---- cluster ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster at ``address``, or start a local one; a no-op when Ray is already up."""
        ray = self._ray
        if ray.is_initialized():
            return
        # Ray's own notices (token authentication, progress bars off) stay in its log files
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR, "configure_logging": True}
        if self.address:
            options["address"] = self.address
        else:
            options.update(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                           object_store_memory=self.object_store_memory)
        try:
            # joining: Ray's C++ client writes every failed retry to stderr (twenty lines for a
            # wrong address or a missing token); the one line raised below says what failed
            with stderr_silenced() if self.address else contextlib.nullcontext():
                ray.init(**options)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
            raise FerdataError(self._connect_error(exc)) from None
        self._started = not self.address

    def _connect_error(self, exc: BaseException) -> str:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not self.address:
            return (f"could not start a local Ray cluster ({detail}); check that this machine can run Ray "
                    "(free memory, /tmp writable), or use --engine local")
        fix = "start it with 'ray start --head' there, or check --ray-address / RAY_ADDRESS"
        if not os.environ.get("RAY_AUTH_MODE"):
            fix += ("; a cluster with token authentication (Ray's default) also needs RAY_AUTH_MODE=token here "
                    "and its token (ray get-auth-token on the head) in ~/.ray/auth_token")
        return f"could not reach the Ray cluster at {self.address} ({detail}); {fix}"

    def close(self) -> None:
        """Stop the local cluster this executor started (a joined cluster keeps running)."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cluster_resources(self) -> dict[str, float]:
        self.connect()
        return dict(self._ray.cluster_resources())

    @property
    def workers(self) -> int:
        """Actors in a pool of one-CPU workers (see :meth:`pool_size`)."""
        return self.pool_size(None)

    def pool_size(self, resources: Mapping[str, float] | None) -> int:
        """Actors for work whose workers each need ``resources``: as many as the cluster's
        GPUs (or CPUs) hold, or fewer when ``workers`` asks for fewer (the pool never asks for
        more than the cluster has: Ray would wait for it forever)."""
        gpus = float((resources or {}).get("GPU", 0) or 0)
        cluster = self.cluster_resources()
        if gpus > 0:
            fits = int(cluster.get("GPU", 0) // gpus)
        else:
            fits = int(cluster.get("CPU", 1) // float((resources or {}).get("CPU", 1) or 1))
        return max(1, min(self._workers or fits, fits))

    # ---- work ------------------------------------------------------------------------------

    def map_chunks(
        self,
        fn: Callable[[list[T]], list[R]],
        items: Sequence[T],
        *,
        chunksize: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple = (),
        progress: Progress | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> Iterator[R]:
        """Apply ``fn`` to consecutive chunks of ``items`` on the actor pool; yield every
        result in input order. ``resources`` is what one worker needs (``{"GPU": 1}``
        gives every actor a GPU; default one CPU)."""
        ray = self._ray
        self.connect()
        _quiet_ray_data()
        if not items:
            return
        pool = self.pool_size(resources)
        size = chunksize or default_chunksize(len(items), pool)
        chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
        pool = min(pool, len(chunks))
        # Ray Data's cost is per block (a task, its metadata, a round trip), so chunks travel
        # several to a block: BLOCKS_PER_WORKER blocks per actor keep the load balanced
        per_block = -(-len(chunks) // (pool * BLOCKS_PER_WORKER))
        rows = [{"first": k, "chunks": pickle.dumps(chunks[k : k + per_block], protocol=pickle.HIGHEST_PROTOCOL)}
                for k in range(0, len(chunks), per_block)]
        ctx = ray.data.DataContext.get_current()
        saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.enable_auto_log_stats,
                 ctx.wait_for_min_actors_s)
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.enable_auto_log_stats = False
        # every actor built (its detector loaded) before the first block is handed out, so
        # an actor that starts early does not take the blocks meant for the others
        ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
        try:
            with warnings.catch_warnings():  # max_restarts has no named parameter yet (Ray 2.60)
                warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
                actors = ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=2)
                ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                    actor_class(fn, initializer, initargs), batch_size=1, batch_format="pyarrow",
                    zero_copy_batch=True, compute=actors, **_remote_args(resources))
            # kept up to date chunk by chunk: a caller may stop reading after the last item
            run: dict[str, Any] = {"engine": "ray", "actors": 0, "chunks": len(chunks), "nodes": {}}
            self.last_run = run
            seen: set[tuple[str, int]] = set()
            expected = 0
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
                columns = (batch.column(c).to_pylist() for c in ("seq", "result", "node", "pid"))
                for seq, blob, node, pid in zip(*columns):
                    if seq != expected:  # preserve_order is what makes the tables equal: check it
                        raise RuntimeError(f"Ray returned chunk {seq} where chunk {expected} was due")
                    expected += 1
                    per_node = run["nodes"].setdefault(node, {"chunks": 0, "items": 0})
                    per_node["chunks"] += 1
                    per_node["items"] += len(chunks[seq])
                    seen.add((node, pid))
                    run["actors"] = len(seen)
                    yield from pickle.loads(blob)
                    if progress:
                        progress(len(chunks[seq]))
            if expected != len(chunks):
                raise RuntimeError(f"Ray returned {expected} of {len(chunks)} chunks")
        finally:
            (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.enable_auto_log_stats,
             ctx.wait_for_min_actors_s) = saved


def _remote_args(resources: Mapping[str, float] | None) -> dict[str, Any]:
    """Ray's per-actor resource request for what one worker needs (one CPU by default)."""
    resources = dict(resources or {})
    # No actor restarts: Ray Data keeps a restartable actor's arguments in the object store
    # and says so on stderr at every run. A lost actor fails the run instead; every step
    # keeps what finished (journal, cache) and a rerun does only the rest.
    args: dict[str, Any] = {"num_cpus": float(resources.pop("CPU", 1)), "max_restarts": 0}
    gpus = float(resources.pop("GPU", 0) or 0)
    if gpus:
        args["num_gpus"] = gpus
    if resources:
        args["resources"] = resources  # custom cluster resources, e.g. {"bigmem": 1}
    return args


def _quiet_ray_data() -> None:
    """The library never prints: Ray Data's per-dataset INFO lines go to its log file only."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)
