"""The implementation under `utils.horovod_keras`, as `horovod/_keras/` is under Horovod's layer.

- `collectives`: Horovod's collectives on Keras tensors and variables, variable broadcasts.
- `optimizer`: what a DistributedOptimizer does to the gradients (reduction, local variables,
  local aggregation over `backward_passes_per_step`), grafted on a Keras 3 optimizer.
- `callbacks`: momentum correction for the learning-rate callbacks.
- `elastic`: the state of an elastic job (model, optimizer, counters) and its `run` loop.

Nothing here is public API: `utils.horovod_keras`, `.callbacks` and `.elastic` are.
"""
