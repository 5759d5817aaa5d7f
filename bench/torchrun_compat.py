"""bench/torchrun_compat.py: `torchrun` for Debian's PyTorch 1.13 on Python 3.11.

There, torchrun fails before starting anything: Std.from_str("0") (the default
of --redirects and --tee) returns None, because iterating an IntFlag no longer
yields its zero member in Python 3.11. This runs torchrun's own main() with
that one function mended; nothing else changes.
    python3 torchrun_compat.py [torchrun arguments]
"""
import sys

from torch.distributed.elastic.multiprocessing import api

_from_str = api.Std.from_str.__func__


def _mended(cls, vm):
    std = _from_str(cls, vm)
    return api.Std.NONE if std is None else std


api.Std.from_str = classmethod(_mended)

from torch.distributed.run import main  # noqa: E402

sys.exit(main())
