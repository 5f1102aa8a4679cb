"""Check policy/tensorflow.toml against TensorFlow's op registry, without importing TensorFlow.

TensorFlow generates one Python wrapper per registered op (``tensorflow/**/gen_*_ops.py``,
each calling ``_op_def_library._apply_op_helper("OpName", ...)``). This script reads those
files straight out of a TensorFlow wheel (or an installed ``tensorflow`` directory) and:

* lists every op the policy names with the module that registers it, or ``NOT REGISTERED``
  (ops removed from TensorFlow, e.g. the 1.x contrib ``Rpc``/``TryRpc``, stay in the policy
  for old graphs);
* lists registered ops whose names match the data-movement patterns below but that the policy
  does not name, so a TensorFlow upgrade that adds a reader, writer or RPC op is noticed.

Usage: python tools/tensorflow_op_registry.py PATH_TO_tensorflow*.whl|tensorflow_dir
(``pip download tensorflow-cpu --no-deps`` fetches the wheel). Exit status 1 when the
registry has uncovered candidates.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import tomllib
import zipfile
from pathlib import Path

POLICY = Path(__file__).resolve().parents[1] / "src" / "hexscan" / "policy" / "tensorflow.toml"
_OP = re.compile(r'_apply_op_helper\(\s*"(\w+)"')
_GEN = re.compile(r"/gen_[a-z0-9_]+\.py$")
#: Name patterns of ops that may read, write, list or send data.
PATTERNS = ("*File*", "*Reader*", "*Record*", "Save*", "Restore*", "Load*Dataset*",
            "*Snapshot*", "Rpc*", "*DataService*", "RegisterDataset*", "*Summary*Writer*",
            "Write*", "Debug*", "Print*", "Py*", "EagerPyFunc", "*Proto*", "Matching*",
            "Immutable*", "*Checkpoint*", "*Sql*", "*LMDB*", "*CSVDataset*", "Collective*",
            "DistributedSave", "RemoteCall", "FileSystem*")
#: Registered ops matching a pattern that move no data outside the process.
NOT_DATA_MOVEMENT = frozenset({
    "TensorArrayWrite", "TensorArrayWriteV2", "TensorArrayWriteV3", "Snapshot",
    "DebugGradientIdentity", "DebugGradientRefIdentity", "IteratorGetModelProto",
    "ReaderNumRecordsProduced", "ReaderNumRecordsProducedV2", "ReaderNumWorkUnitsCompleted",
    "ReaderNumWorkUnitsCompletedV2", "ReaderRead", "ReaderReadUpTo", "ReaderReadUpToV2",
    "ReaderReadV2", "ReaderReset", "ReaderResetV2", "ReaderRestoreState",
    "ReaderRestoreStateV2", "ReaderSerializeState", "ReaderSerializeStateV2",
    "IdentityReader", "IdentityReaderV2", "ShardedFilename", "ShardedFilespec",
    "CloseSummaryWriter", "FlushSummaryWriter", "SummaryWriter",
    "StatsAggregatorSetSummaryWriter", "Print", "DecodeCSV", "WriteRawProtoSummary",
})


def registry(path: Path) -> dict[str, str]:
    """op name -> the gen_*.py module that registers it."""
    found: dict[str, str] = {}
    if path.is_file():
        with zipfile.ZipFile(path) as wheel:
            for name in wheel.namelist():
                if _GEN.search(name):
                    for op in _OP.findall(wheel.read(name).decode("utf-8", "replace")):
                        found.setdefault(op, name)
    else:
        for file in path.rglob("gen_*.py"):
            for op in _OP.findall(file.read_text("utf-8", "replace")):
                found.setdefault(op, str(file.relative_to(path)))
    return found


def policy_ops() -> set[str]:
    data = tomllib.loads(POLICY.read_text("utf-8"))
    return {op for key, value in data.items() if key.endswith("_ops") or key.endswith(
        "_checked") for op in value}


def main(argv: list[str]) -> int:
    ops = registry(Path(argv[1]))
    named = policy_ops()
    print(f"{len(ops)} registered ops")
    for op in sorted(named):
        print(f"policy  {op:40} {ops.get(op, 'NOT REGISTERED')}")
    missing = sorted(op for op in ops if op not in named and op not in NOT_DATA_MOVEMENT
                     and any(fnmatch.fnmatchcase(op, p) for p in PATTERNS))
    for op in missing:
        print(f"UNCOVERED {op:38} {ops[op]}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
