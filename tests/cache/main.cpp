// The cache tests' main: gtest's, unless started as a worker of the multi-process test.
#include <cstring>

#include <gtest/gtest.h>

#include "tests/cache/cache_worker.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], flashjit::testing::kCacheWorkerFlag) == 0)
    return flashjit::testing::run_cache_worker();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
