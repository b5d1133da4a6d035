// Compiled only to build the precompiled header that the tests of one
// directory share (tests/CMakeLists.txt, distmap_test_pch).
