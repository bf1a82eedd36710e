"""Where training's map-reduce steps run: in this process, or on a Dask cluster.

Training is written as maps over batches whose results are small statistics
that add up (:class:`~vpcore.ubm.GmmStats`, :class:`~vpcore.ivector.TvStats`,
Baum-Welch sums). An executor runs those maps:

* :class:`LocalExecutor` runs them in this process (BLAS uses the cores);
* :class:`DaskExecutor` runs them on a ``dask.distributed`` cluster. Data made
  on workers (features, frame subsets, statistics) stays there as futures,
  so only parameters go out and partial sums come back.

Both apply the same functions to the same batches and sum the results in the
same order, so a model trained on a cluster equals the local one up to
floating-point reassociation inside BLAS.
"""

from .errors import ParameterError

__all__ = ["LocalExecutor", "DaskExecutor", "get_executor"]


class LocalExecutor:
    """Run maps in this process; handles are the objects themselves."""

    def scatter(self, items):
        return list(items)

    def map(self, func, handles, *shared):
        """``[func(h, *shared) for h in handles]``, keeping handles where they are."""
        return [func(h, *shared) for h in handles]

    def gather(self, handles):
        return list(handles)

    def close(self):
        pass


class DaskExecutor:
    """Run maps on a ``dask.distributed`` cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        A scheduler address such as ``"tcp://10.0.0.5:8786"``, or a client.
        Workers must be able to read the corpus paths given to training.
    """

    def __init__(self, scheduler):
        try:
            from distributed import Client
        except ImportError:
            raise ParameterError("scheduler needs dask.distributed: "
                                 "pip install dask distributed (from a vpcore checkout: "
                                 "pip install '.[dask]')") from None
        if isinstance(scheduler, Client):
            self.client, self._own = scheduler, False
        elif isinstance(scheduler, str) and scheduler:
            try:
                self.client, self._own = Client(scheduler, timeout="20s"), True
            except (OSError, TimeoutError) as exc:
                raise ParameterError(f"scheduler={scheduler!r} cannot be reached: {exc}") from None
        else:
            raise ParameterError(f"scheduler={scheduler!r} must be an address or a Client")

    def scatter(self, items):
        return self.client.scatter(list(items))

    def map(self, func, handles, *shared):
        """Submit ``func(h, *shared)`` per handle; results stay on the workers (futures)."""
        shared = [self.client.scatter(s, broadcast=True) for s in shared]
        # pure=False: the same function on equal-looking data must still run per batch.
        return [self.client.submit(func, h, *shared, pure=False) for h in handles]

    def gather(self, handles):
        return self.client.gather(list(handles))

    def close(self):
        if self._own:
            self.client.close()


def get_executor(scheduler=None):
    """An executor for ``scheduler``: None runs locally."""
    if scheduler is None:
        return LocalExecutor()
    if isinstance(scheduler, (LocalExecutor, DaskExecutor)):
        return scheduler
    return DaskExecutor(scheduler)
