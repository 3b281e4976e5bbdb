"""The guest inference program (C sources, linker script, built ELF) and its build."""
