"""What the tests and benchmarks share: the official layer's computation, the tests' oracle and the
benchmarks' baseline (``official``), official-format checkpoints (``official_format``), a toy
mmengine runner (``toy_runner``) and hooks the tests load into runs (``hooks``). Nothing here is
imported by the plugin itself."""
