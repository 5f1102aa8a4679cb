"""The rule catalogue: every check hex can report has one Rule constant here."""
