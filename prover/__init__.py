"""Everything around the machine: models, guest, golden image, chain, CLI."""
