"""The engine past one machine, on a Dask cluster (``pip install 'activeprop[distributed]'``).

The same steps as the single-process engine, with the pool and its graph held by Dask
workers as row blocks that never meet on one machine:

* :mod:`.cluster`: ``--cluster ADDRESS`` or ``local:N`` -> a ``dask.distributed.Client``;
* :mod:`.layout`: which block each item belongs to (the pool ordered by coarse clusters,
  so that a block's edges mostly stay inside it);
* :mod:`.knn`: the kNN graph, each row chunk searched against every chunk with faiss,
  symmetrised and kept on the workers as row blocks;
* :mod:`.halo`: a block's product with a block of columns, receiving only the rows of the
  other blocks its edges reach (its halo);
* :mod:`.solve`: conjugate gradients for spreading and Poisson learning on those blocks;
* :mod:`.lone`: a graph in one block (one worker): the single engine's fit in that worker;
* :mod:`.model`: what the active learner drives, with queries scored per block.
"""
