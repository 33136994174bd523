"""`python -m xpbank.config`: docs/configuration.md's table."""

from xpbank.config.defaults import markdown_table

print(markdown_table(), end="")
