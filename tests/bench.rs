//! Integration tests of `vethscope bench` (being written).

mod common;
