"""Networks, one family per file; none of them knows about training, pipelines or the CLI."""
