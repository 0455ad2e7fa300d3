//! Tests that go through the public entry points: every validation rule,
//! the config files in the repository, codegen and the JSON Schema. Unit
//! tests of single modules live next to them.

mod all_except;
mod audio;
mod boards;
mod codegen;
mod display;
mod explain;
mod files;
mod fixture;
mod rules;
mod schema;
mod touch;
