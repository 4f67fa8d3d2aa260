"""Cross-cutting helpers every stage uses the same way: atomic files and JSON output (``io``), progress bars
(``progress``). Nothing here imports torch, nncf or openvino at module level."""
