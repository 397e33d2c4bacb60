//! Shared harness for the cross-crate tests in `tests/tests/`.
