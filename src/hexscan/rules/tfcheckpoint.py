"""HEX-TCK: TensorFlow checkpoint bundles (``.index`` table and ``.data-*`` shards)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_REFS = (
    "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/util/"
    "tensor_bundle/tensor_bundle.proto",
    "https://github.com/google/leveldb/blob/main/doc/table_format.md",
)

MALFORMED_INDEX = Rule(
    id="HEX-TCK-001",
    title="Malformed TensorFlow checkpoint index",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The .index table's footer, block handles, restart arrays, checksums, "
            "compression or protobuf values are broken.",
    doc=(
        "A TF checkpoint .index file is a LevelDB-format table: a footer with two block "
        "handles and a magic number, an index block pointing at data blocks, and in every "
        "block prefix-compressed keys with a restart array and a crc32c trailer. The values "
        "are BundleHeaderProto and BundleEntryProto messages. hex found a block handle "
        "outside the file, a restart array that does not fit its block, keys out of order, a "
        "checksum mismatch, a snappy block that does not decode, a missing bundle header or "
        "an undecodable protobuf value. TensorFlow refuses such files, but other readers may "
        "interpret them differently, which is how a file shows one thing to a scanner and "
        "another to a loader."
    ),
    remediation=(
        "Obtain an intact copy of the checkpoint from its publisher and verify checksums; "
        "re-save it with tf.train.Checkpoint if you produced it."
    ),
    references=_REFS,
)

ENTRY_OUTSIDE_SHARD = Rule(
    id="HEX-TCK-002",
    title="TF checkpoint entry points outside its data shard",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-125", "CWE-20"),
    summary="A BundleEntryProto names a shard the header does not declare, or an "
            "offset/size beyond the end of the shard file.",
    doc=(
        "Every BundleEntryProto says in which shard (shard_id), at which offset and with how "
        "many bytes a tensor is stored. The header's num_shards says how many "
        "<prefix>.data-NNNNN-of-MMMMM files exist. An entry with a negative or too large "
        "shard id, or whose offset plus size runs past the end of the shard file on disk, "
        "asks the reader for bytes that are not part of the checkpoint: native readers that "
        "trust the entry read out of bounds, and the mismatch is a sign of a hand-edited "
        "file. hex compares the entries with the shard sizes (os.stat only; it never opens "
        "the shards)."
    ),
    remediation=(
        "Do not restore the checkpoint. Re-download it, or re-save the variables with "
        "TensorFlow so that index and shards agree."
    ),
    references=_REFS,
)

OVERLAPPING_ENTRIES = Rule(
    id="HEX-TCK-003",
    title="TF checkpoint entries overlap in one shard",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="Two tensors claim overlapping byte ranges of the same data shard.",
    doc=(
        "TensorFlow's BundleWriter appends every tensor to its shard once, so the byte ranges "
        "of the entries in one shard never overlap. Overlapping ranges mean the index was "
        "edited or crafted: one tensor's bytes are reinterpreted as another's, which can "
        "smuggle values past a review of one of them and makes the checkpoint's contents "
        "depend on which entry a reader trusts."
    ),
    remediation=(
        "Treat the checkpoint as tampered with; obtain it again from a trusted source or "
        "re-save it with TensorFlow."
    ),
    references=_REFS,
)

SIZE_MISMATCH = Rule(
    id="HEX-TCK-004",
    title="TF checkpoint entry size disagrees with its dtype and shape",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20", "CWE-130"),
    summary="An entry's stored byte size is not dtype width times the number of elements.",
    doc=(
        "For fixed-width types a tensor of shape [d1, ..., dn] needs exactly "
        "width(dtype) * d1 * ... * dn bytes, and TensorFlow writes exactly that. An entry "
        "whose size is larger stores bytes no tensor uses (room for a payload); a smaller "
        "one makes readers that trust the shape read past the tensor. Variable-width types "
        "(strings, resources, variants) and sliced partitions are not checked."
    ),
    remediation=(
        "Do not restore the checkpoint; obtain an intact copy or re-save the variables with "
        "TensorFlow."
    ),
    references=_REFS,
)

MISSING_SHARD = Rule(
    id="HEX-TCK-005",
    title="TF checkpoint data shard is missing",
    type="malformed_file",
    severity=Severity.LOW,
    cwe=("CWE-20",),
    summary="A shard the index refers to is not next to the .index file.",
    doc=(
        "The index declares num_shards data files named <prefix>.data-NNNNN-of-MMMMM beside "
        "it. A missing shard makes the checkpoint unrestorable and means hex could not check "
        "the entries stored in it against the file. This is usually an incomplete download "
        "or copy rather than an attack, hence the low severity."
    ),
    remediation=(
        "Copy or download the complete checkpoint (every .data shard and the .index) and "
        "scan it again."
    ),
    references=_REFS,
)

UNACCOUNTED_BYTES = Rule(
    id="HEX-TCK-006",
    title="TF checkpoint data shard holds bytes no entry accounts for",
    type="hidden_data",
    severity=Severity.MEDIUM,
    cwe=("CWE-506",),
    summary="A data shard is larger than, or has gaps between, the tensors the index lists.",
    doc=(
        "TensorFlow writes the tensors of a shard back to back, so the entries of the index "
        "cover the whole shard. Bytes that no entry accounts for (a gap between tensors or a "
        "tail after the last one) are never read by TensorFlow and are therefore a place to "
        "hide a payload that a second-stage loader extracts, invisible to anyone who only "
        "inspects the restored variables. Gaps shorter than 64 bytes are treated as "
        "alignment padding."
    ),
    remediation=(
        "Inspect the unaccounted byte ranges, and re-save the checkpoint with TensorFlow to "
        "drop them before distributing it."
    ),
    references=_REFS + ("https://cwe.mitre.org/data/definitions/506.html",),
)

UNINSPECTED_BLOCK = Rule(
    id="HEX-TCK-007",
    title="TF checkpoint index block compressed with an unsupported codec",
    type="coverage",
    severity=Severity.LOW,
    cwe=("CWE-20",),
    summary="A table block uses a compression type hex does not decode; it was not inspected.",
    doc=(
        "LevelDB-format tables mark each block with a compression type: 0 (none) and 1 "
        "(snappy) are what TensorFlow writes and hex decodes. A block with another type "
        "(zstd and others from related table formats, or an unknown value) was not "
        "inspected, so the entries in it were not checked against the data shards; "
        "TensorFlow itself rejects such a block."
    ),
    remediation=(
        "Re-save the checkpoint with TensorFlow, or check the entries of the block with "
        "another tool before trusting the checkpoint."
    ),
    references=_REFS,
)

SHARD_SYMLINK_ESCAPE = Rule(
    id="HEX-TCK-008",
    title="TF checkpoint data shard is a symbolic link out of its directory",
    type="path_traversal",
    severity=Severity.MEDIUM,
    cwe=("CWE-59",),
    summary="A .data shard beside the index is a symlink to a file outside the checkpoint "
            "directory.",
    doc=(
        "TensorFlow opens <prefix>.data-NNNNN-of-MMMMM beside the index and follows symbolic "
        "links, so a shard that is a link to another place makes restoring the checkpoint "
        "read an arbitrary file into a variable (for example a key or a credentials file "
        "that a later save or export publishes). hex resolves the link without opening or "
        "measuring its target."
    ),
    remediation=(
        "Replace the link with the real shard file; do not restore checkpoints whose shards "
        "point elsewhere."
    ),
    references=_REFS + ("https://cwe.mitre.org/data/definitions/59.html",),
)
