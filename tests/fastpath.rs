//! Integration tests of `vethscope fastpath` (being written).

mod common;
