"""Supply-chain risk around a model: vulnerability DB, feeds, inventory, matching."""
