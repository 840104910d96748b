// Entry point of the one benchmark binary (all cases side by side in one run).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
