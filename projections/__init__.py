"""The ClickHouse read side: schema migrations, the ledger, projections and queries."""
