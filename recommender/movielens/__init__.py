"""MovieLens import: layouts (ml-100k, ml-1m, ml-latest / ml-25m) and the bulk import service."""
