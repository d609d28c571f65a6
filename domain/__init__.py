"""Pure domain: event contracts, the unit hierarchy, the indicator catalogue. No I/O."""
