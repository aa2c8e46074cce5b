"""
The benchmark suite of linelogger: see L{benchmarks.run} for how to run it.

    - L{benchmarks.run}: the one entry point; starts each server, drives it,
      checks delivery, writes the report.
    - L{benchmarks.loadgen}: the load generator, run as a separate process.
    - L{benchmarks.procinfo}: what the suite reads from /proc (memory of a
      process tree, connections held, listen drops, the machine).
    - L{benchmarks.report}: the markdown table and the PNG chart.
    - L{benchmarks.framing}: the framers alone, in-process (ns per record
      of each framing on the same lines); not part of the suite's run.
    - C{benchmarks/servers/}: the servers compared, one small script each.
"""
