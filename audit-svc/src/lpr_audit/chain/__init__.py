"""Tamper-evident hash chain: canonical encoding, linking, signed checkpoints, verification.

Pure code with no database: the appender calls :func:`link_batch` under a lock on the tail,
the checkpointer calls :func:`sign_checkpoint`, and ``lprctl audit verify`` calls
:func:`verify_chain` or :func:`verify_bundle`.
"""

from lpr_audit.chain.bundle import (
    BUNDLE_FORMAT_VERSION,
    Bundle,
    BundleError,
    RecordsFormat,
    build_bundle,
    read_bundle,
    verify_bundle,
)
from lpr_audit.chain.canonical import (
    EXACT_INTEGER_LIMIT,
    CanonicalEncodingError,
    JsonValue,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    to_json_value,
)
from lpr_audit.chain.checkpoints import (
    Checkpoint,
    KeyFileError,
    key_id,
    load_or_create_checkpoint_key,
    load_public_keys_pem,
    public_keys_pem,
    sign_checkpoint,
    verify_checkpoint,
)
from lpr_audit.chain.records import (
    GENESIS_HASH,
    GENESIS_HEAD,
    ChainHead,
    ChainRecord,
    LinkedHash,
    SealedRecord,
    link_batch,
    link_encoded,
    record_hash,
)
from lpr_audit.chain.verify import (
    ChainBreak,
    CheckpointProblem,
    CheckpointProblemKind,
    TamperKind,
    VerificationReport,
    verify_chain,
)

__all__ = [
    "BUNDLE_FORMAT_VERSION",
    "EXACT_INTEGER_LIMIT",
    "GENESIS_HASH",
    "GENESIS_HEAD",
    "Bundle",
    "BundleError",
    "CanonicalEncodingError",
    "ChainBreak",
    "ChainHead",
    "ChainRecord",
    "Checkpoint",
    "CheckpointProblem",
    "CheckpointProblemKind",
    "JsonValue",
    "KeyFileError",
    "LinkedHash",
    "RecordsFormat",
    "SealedRecord",
    "TamperKind",
    "VerificationReport",
    "build_bundle",
    "canonical_json",
    "format_timestamp",
    "key_id",
    "link_batch",
    "link_encoded",
    "load_or_create_checkpoint_key",
    "load_public_keys_pem",
    "parse_timestamp",
    "public_keys_pem",
    "read_bundle",
    "record_hash",
    "sign_checkpoint",
    "to_json_value",
    "verify_bundle",
    "verify_chain",
    "verify_checkpoint",
]
