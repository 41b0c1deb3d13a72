// The reliability tests' main: gtest's, unless started as the exit worker.
#include <cstring>

#include <gtest/gtest.h>

#include "tests/reliability/exit_worker.h"

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], flashjit::testing::kExitWorkerFlag) == 0)
    return flashjit::testing::run_exit_worker(argv[2], argv[3]);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
