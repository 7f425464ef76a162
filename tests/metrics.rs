//! Integration tests of `vethscope metrics` (being written).

mod common;
