"""Scan operators: the selective scan (with backend dispatch), scan orders, and their FLOPs."""
from .cross_scan import bidirectional_merge, bidirectional_scan, cross_merge, cross_scan
from .flops import flop_analyzer, scan_flop_handles, selective_scan_flops
from .selective_scan import (BACKEND_ENV, BACKENDS, available_backends, last_backend,
                             selective_scan, selective_scan_reference)

__all__ = [
    'selective_scan', 'selective_scan_reference', 'available_backends', 'last_backend',
    'BACKENDS', 'BACKEND_ENV', 'cross_scan', 'cross_merge', 'bidirectional_scan',
    'bidirectional_merge', 'selective_scan_flops', 'scan_flop_handles', 'flop_analyzer'
]
