"""FLOP counting of the scan operators with mmengine's ``FlopAnalyzer``.

mmengine's complexity analysis (``FlopAnalyzer``, also behind
``get_model_complexity_info``) traces the model with ``torch.jit`` and counts
each node of the graph with a handle chosen by the node's kind. Each call of
one of our scan operators is one node ``prim::PythonOp.<Function class>``
(the Functions keep their inner ops out of the trace, see ``._tracing``), for
which mmengine has no handle: it would count 0 and warn "Unsupported
operator". :func:`scan_flop_handles` supplies the handles, and
:func:`flop_analyzer` builds a ``FlopAnalyzer`` that uses them.

Selective scan: the rule of the VMamba release (``flops_selective_scan_fn``
in ``classification/models/vmamba.py`` of github.com/MzeroMiko/VMamba, after
state-spaces/mamba#110), for ``u`` of shape ``(B, D, L)`` and ``A`` of
``(D, N)``::

    9 * B * L * D * N     the recurrence and the read-out C_t . h_t
    + B * D * L           when the skip weight D is given
    + B * D * L           when the gate z is given

Like the release it leaves out the softplus, the bias and dtype casts, and
it does not depend on grouped ``B``/``C``. The release's handle always passes
"with D, without z", which is what its SS2D calls are; here both terms follow
what the call passes, so VMamba's scans get the release's count.

The scan orders (``cross_scan``, ``cross_merge``, ``bidirectional_scan``,
``bidirectional_merge``) count 0, as in the release: they move data and add
element-wise, which mmengine leaves out for every op.

As everywhere in mmengine's counter, one multiply-add is one FLOP, so the
totals are MACs.

Usage::

    from mmmamba.ops.flops import flop_analyzer
    flops = flop_analyzer(model, (inputs, ))   # mmengine FlopAnalyzer
    flops.total(), flops.by_operator()         # {'selective_scan': ..., 'conv': ...}

or, on an analyzer built elsewhere, ``analyzer.set_op_handle(**scan_flop_handles())``.
"""
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple, Union

from torch import Tensor, nn

from .cross_scan import _BidirectionalMerge, _BidirectionalScan, _CrossMerge, _CrossScan
from .selective_scan_torch import SelectiveScanTorch

if TYPE_CHECKING:
    from mmengine.analysis import FlopAnalyzer

__all__ = ['selective_scan_flops', 'scan_flop_handles', 'flop_analyzer', 'SELECTIVE_SCAN_OPS',
           'SCAN_ORDER_OPS']

# Graph node kinds of a selective-scan call: our torch backend, and mamba-ssm's
# Function (the "cuda" backend, when forced under tracing). Both take
# (u, delta, A, B, C, D, z, delta_bias, ...) in this order.
SELECTIVE_SCAN_OPS = ('prim::PythonOp.' + SelectiveScanTorch.__name__,
                      'prim::PythonOp.SelectiveScanFn')
SCAN_ORDER_OPS = tuple('prim::PythonOp.' + f.__name__
                       for f in (_CrossScan, _CrossMerge, _BidirectionalScan, _BidirectionalMerge))
# argument positions in the Functions' apply()
_ARG_D, _ARG_Z = 5, 6


def selective_scan_flops(batch: int,
                         dim: int,
                         length: int,
                         state: int,
                         with_D: bool = True,
                         with_z: bool = False) -> int:
    """FLOPs (MACs) of one selective scan by the VMamba release's rule.

    Args:
        batch (int): ``B``, the batch size of ``u``.
        dim (int): ``D``, the channels of ``u`` (all directions of a cross scan).
        length (int): ``L``, the sequence length.
        state (int): ``N``, the state size (columns of ``A``).
        with_D (bool): the skip weight ``D`` is given. Defaults to True.
        with_z (bool): the gate ``z`` is given. Defaults to False.

    Returns:
        int: ``9 B L D N``, plus ``B D L`` for each of ``D`` and ``z`` given.
    """
    flops = 9 * batch * length * dim * state
    if with_D:
        flops += batch * dim * length
    if with_z:
        flops += batch * dim * length
    return flops


def _sizes(value: Any, what: str) -> Tuple[int, ...]:
    sizes = value.type().sizes() if value.isCompleteTensor() else None
    if sizes is None:
        raise ValueError(f'cannot count the FLOPs of a selective scan: the traced {what} has no '
                         f'known shape (type {value.type()}); trace with concrete tensors')
    return tuple(sizes)


def _selective_scan_handle(inputs: List[Any], outputs: List[Any]) -> Counter:
    """Handle of a selective-scan node: its tensor inputs start with ``u, delta, A``."""
    batch, dim, length = _sizes(inputs[0], 'u')
    state = _sizes(inputs[2], 'A')[1]
    # one letter per argument of apply(): 'd' a tensor, 'c' anything else (None, flags),
    # so a missing D or z shows, although the node's inputs hold only the tensors
    arg_kinds = outputs[0].node().cconv()
    flops = selective_scan_flops(batch, dim, length, state, with_D=arg_kinds[_ARG_D] == 'd',
                                 with_z=arg_kinds[_ARG_Z] == 'd')
    return Counter({'selective_scan': flops})


def _no_flops(inputs: List[Any], outputs: List[Any]) -> Counter:
    """Handle of an op that moves data only."""
    return Counter()


def scan_flop_handles() -> Dict[str, Callable[[List[Any], List[Any]], Counter]]:
    """Op handles for ``FlopAnalyzer.set_op_handle(**handles)``.

    Returns:
        dict[str, Callable]: graph node kind -> handle, for every scan operator
        of :mod:`mmmamba.ops` (see the module docstring for the rules).
    """
    handles = {name: _selective_scan_handle for name in SELECTIVE_SCAN_OPS}
    handles.update({name: _no_flops for name in SCAN_ORDER_OPS})
    return handles


def flop_analyzer(model: nn.Module, inputs: Union[Tensor, Tuple[Any, ...]]) -> 'FlopAnalyzer':
    """mmengine's ``FlopAnalyzer`` of ``model`` with the scan handles set.

    Args:
        model (nn.Module): the model; traced as ``model(*inputs)``.
        inputs (Tensor | tuple): its inputs.

    Returns:
        mmengine.analysis.FlopAnalyzer: lazily traced on the first query.
    """
    from mmengine.analysis import FlopAnalyzer

    return FlopAnalyzer(model, inputs).set_op_handle(**scan_flop_handles())
