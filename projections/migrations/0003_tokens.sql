-- API tokens, stored as SHA-256 hashes. The latest version of a token id wins.
CREATE TABLE IF NOT EXISTS tokens (
    token_id    String,
    token_hash  String,
    unit_id     String,
    role        LowCardinality(String),
    created_by  String,
    created_at  DateTime64(3, 'UTC'),
    expires_at  Nullable(DateTime64(3, 'UTC')),
    revoked     UInt8,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY token_id;
