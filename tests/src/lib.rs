//! End-to-end tests live in `tests/tests/`; they start once the binaries exist.
