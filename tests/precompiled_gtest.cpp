// The one source of flashjit_test_pch (CMakeLists.txt), the target that precompiles <gtest/gtest.h>
// for every test binary. It is linked into none of them.
