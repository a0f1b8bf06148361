import QMLSBench

MLSBenchCommand.main()
