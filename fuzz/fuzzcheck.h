#pragma once

#include <cstdio>
#include <cstdlib>

// An invariant a fuzz target checks. A failure aborts, which libFuzzer
// records as a crash and saves the input that caused it.
#define FUZZ_CHECK(condition)                                                                    \
    do {                                                                                         \
        if (!(condition)) {                                                                      \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                        \
        }                                                                                        \
    } while (false)
